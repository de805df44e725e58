import sys

from qhpo.cli import main

sys.exit(main())
