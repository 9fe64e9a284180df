"""Dask preload for the worker processes of a local cluster (:data:`pipelines.runner.PRELOAD`).

A local cluster's nannies run inside the process that started it (``ecosense up`` or
``ecosense jobs run``); each starts one worker process, a child of that process. Each worker:

- asks Linux to send it SIGTERM when its parent dies (:func:`ecosense.child.die_with_parent`),
  so that a killed ``ecosense up`` leaves no worker behind;
- ignores SIGINT: a terminal's Ctrl-C reaches the whole foreground process group, and the
  parent, which handles it, closes the cluster (a worker interrupted on its own would print a
  traceback and be restarted by its nanny);
- writes a native crash's traceback on stderr (:mod:`faulthandler`).
"""

from __future__ import annotations

import faulthandler
import signal

from ecosense.child import die_with_parent


def dask_setup(_worker: object) -> None:
    """Called by Dask in each worker process as it starts."""
    faulthandler.enable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
