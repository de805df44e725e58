"""``python -m qhpo.runner SETTINGS_JSON INDEX``: one worker process of ``qhpo run --workers N``."""

import sys

from qhpo.runner._worker import main

sys.exit(main())
