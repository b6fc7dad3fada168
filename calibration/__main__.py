"""``python -m calibration calibrate | show | import`` (see calibration/cli.py)."""

import sys

from calibration.cli import main

sys.exit(main())
