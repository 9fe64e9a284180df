"""Run a Python module as a child of ``ecosense up`` that dies with it.

``python -m ecosense.child MODULE ARGS…`` asks Linux to send this process SIGTERM when its
parent dies (even by SIGKILL), then runs ``python -m MODULE ARGS…`` in the same process; so a
killed ``ecosense up`` leaves no orphaned dashboard holding its port.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys


def die_with_parent() -> None:
    """Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``; elsewhere nothing."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before we asked
            sys.exit(1)


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m ecosense.child MODULE [ARGS...]")
    die_with_parent()
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
