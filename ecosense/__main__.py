"""``python -m ecosense`` is the ``ecosense`` command."""

import sys

from ecosense.cli import main

sys.exit(main())
