"""``python -m ecosense`` is the ``ecosense`` command."""

import sys

try:
    from ecosense.cli import main
except KeyboardInterrupt:  # a Ctrl-C while the command is still loading
    sys.exit(130)

sys.exit(main())
