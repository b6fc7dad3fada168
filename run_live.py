"""RealisticHands Live entry point (thin): parse arguments, build the pipeline from config, run."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
