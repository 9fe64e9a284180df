"""The ``ecosense`` command: ``python -m ecosense`` and the installed ``ecosense`` script.

This module imports nothing but :mod:`sys` before it guards the import of the command itself,
so a Ctrl-C while the command is still loading (its imports take about a second) exits 130
with one line, never a traceback.
"""

import sys


def run() -> int:
    """Load and run the command; 130 when interrupted while loading."""
    try:
        from ecosense.cli import main
    except KeyboardInterrupt:  # a Ctrl-C while the command is still loading
        print("ecosense: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
