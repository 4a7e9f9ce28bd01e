"""``python -m app`` runs the ``lynkr`` command."""

import sys

from app.cli import main

sys.exit(main())
