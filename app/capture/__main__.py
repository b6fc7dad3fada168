"""``python -m app.capture info SOURCE --json PATH`` (see app/capture/info.py)."""

import sys

from app.capture.info import main

sys.exit(main())
