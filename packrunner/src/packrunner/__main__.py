"""``python -m packrunner``: see :mod:`packrunner.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
