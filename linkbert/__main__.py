"""``python -m linkbert``: the same command as ``linkbert``."""

import sys

from linkbert.cli import main

if __name__ == "__main__":
    sys.exit(main())
