"""``python -m api``: see ``api.serve``."""

import sys

from api.serve import main

sys.exit(main())
