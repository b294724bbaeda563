"""``python -m signrt.cli``: the ``signrt`` command."""

import sys

from . import main

sys.exit(main())
