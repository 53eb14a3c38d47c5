"""``python -m churndesk`` runs the command line."""

import sys

from churndesk.cli import main

sys.exit(main())
