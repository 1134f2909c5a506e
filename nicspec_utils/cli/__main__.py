"""``python -m nicspec_utils.cli`` is the ``nicspec`` command."""

import sys

from .main import main

sys.exit(main())
