"""Run diffaug's benchmark suite from a checkout: ``python benchmarks/run.py --help``.

The suite is ``benchmarks/suite.py``; ``diffaug bench`` runs the same file.
"""

import sys
from pathlib import Path

# The package next to this folder, whether or not it is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite import main  # noqa: E402  (this folder is on sys.path when run as a script)

if __name__ == "__main__":
    sys.exit(main())
