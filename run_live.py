"""RealisticHands Live entry point (thin): parse arguments, build the pipeline from config, run."""

import os
import sys

# Before numpy loads: the pipeline already runs its stages in parallel threads, and OpenBLAS' own worker threads
# only spin against them on small matrices (a 4x4 inverse cost 1.4 ms instead of 0.2; docs/PERFORMANCE.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from app.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
