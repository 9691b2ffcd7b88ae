"""Run diffaug's benchmark suite: ``python benchmarks/run.py --help``.

The suite itself lives in :mod:`diffaug.bench` so that the installed ``diffaug bench`` command
and this script run the same code; this file is the entry point from a checkout.
"""

import sys
from pathlib import Path

# From a checkout without an install, import the package next to this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diffaug.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
