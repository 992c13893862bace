"""``python -m lmrl.platform.cli``: the same as ``lmrl``."""

import sys

from lmrl.platform.cli.app import main

sys.exit(main())
