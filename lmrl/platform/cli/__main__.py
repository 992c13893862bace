"""``python -m lmrl.platform.cli``: the same as ``lmrl``."""

import sys

from lmrl.platform.cli.main import main

sys.exit(main())
