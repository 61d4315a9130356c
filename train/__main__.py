"""``python -m train`` / ``deepspeed -m train``: the same command as ``linkbert train``."""

import sys

from linkbert.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
