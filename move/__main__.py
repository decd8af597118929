"""``python -m move``: the same as the ``move`` command."""

import sys

from move.cli import main

sys.exit(main())
