"""``python -m visdeploy``: the same as the ``visdeploy`` console script."""

import sys

from visdeploy.cli import main

if __name__ == "__main__":
    sys.exit(main())
