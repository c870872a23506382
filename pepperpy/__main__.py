"""``python -m pepperpy``: the ``pepperpy`` command."""

import sys

from pepperpy.cli import main

if __name__ == "__main__":
    sys.exit(main())
