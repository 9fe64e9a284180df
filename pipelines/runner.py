"""The Dask runner: a local cluster by default, an existing scheduler by address.

``ECOSENSE_DASK_SCHEDULER`` (e.g. ``tcp://10.0.0.5:8786``) sends the same work to a cluster
whose workers have EcoSense installed and can reach the database URL. Without it a
``LocalCluster`` is started: worker processes (one per core, at most 4) for ``ecosense jobs
run`` and the scheduler inside ``ecosense up``, or threads where asked for (tests).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from distributed import Client, LocalCluster, as_completed

logger = logging.getLogger(__name__)

#: The local cluster's preload (:mod:`pipelines.worker_setup`).
PRELOAD = "pipelines.worker_setup"

T = TypeVar("T")
P = TypeVar("P")
#: ``progress(done, total)`` after each task.
Progress = Callable[[int, int], None]


class Runner:
    """A Dask client for the lifetime of a ``with`` block (or until :meth:`close`).

    Parameters
    ----------
    scheduler:
        the address of an existing scheduler, or ``None`` for a local cluster.
    local:
        ``"processes"`` (one single-threaded worker process per core, at most ``workers``) or
        ``"threads"`` (one in-process worker with ``workers`` threads).
    host:
        the address every listener of the local cluster binds (scheduler, workers and their
        HTTP servers; ``ecosense up --host``); Dask's own default for a worker's HTTP server
        is every interface.
    """

    def __init__(
        self,
        scheduler: str | None = None,
        *,
        local: Literal["processes", "threads"] = "processes",
        workers: int | None = None,
        memory_limit: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.scheduler = scheduler
        self._cluster: LocalCluster | None = None
        n = workers or max(1, min(os.cpu_count() or 1, 4))
        bind = f"[{host}]" if ":" in host else host
        # Dask's own messages (a worker's heartbeat failing while the cluster closes, a nanny
        # killing a worker slow to stop) are noise to a user: a task's failure reaches the
        # caller through its future. Shown only when the caller lowered the level of
        # "distributed" below WARNING (``ecosense -v``).
        quiet = logging.getLogger("distributed").getEffectiveLevel() >= logging.WARNING
        silence = logging.CRITICAL if quiet else logging.INFO
        if scheduler:
            self.client = Client(scheduler, timeout=30)  # type: ignore[no-untyped-call]
        else:
            if local == "processes":
                self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    host=host,
                    dashboard_address=f"{bind}:0",  # its HTTP routes on any free port
                    worker_dashboard_address=f"{bind}:0",  # the workers' too (default: all)
                    scheduler_kwargs={"dashboard": False},
                    silence_logs=silence,
                    preload=[PRELOAD],  # the workers die with this process
                    **({"memory_limit": memory_limit} if memory_limit else {}),
                )
            else:
                self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=1,
                    threads_per_worker=n,
                    processes=False,
                    dashboard_address=f"{bind}:0",  # its HTTP routes on any free port
                    worker_dashboard_address=f"{bind}:0",  # the workers' too (default: all)
                    scheduler_kwargs={"dashboard": False},
                    silence_logs=silence,
                )
            self.client = Client(self._cluster)  # type: ignore[no-untyped-call]

    @property
    def description(self) -> str:
        """Where the work runs (for logs and the CLI)."""
        workers = len(self.client.scheduler_info().get("workers", {}))
        where = self.scheduler or "local cluster"
        return f"{where}, {workers} worker{'s' if workers != 1 else ''}"

    def map(
        self,
        fn: Callable[..., T],
        plans: Sequence[P],
        *args: Any,
        progress: Progress | None = None,
    ) -> list[T | BaseException]:
        """``fn(*args, plan)`` for every plan, in parallel; results in the plans' order, an
        exception in place of the result of a task that raised (the others still run)."""
        if not plans:
            return []
        futures = [self.client.submit(fn, *args, plan, pure=False) for plan in plans]
        index = {f.key: i for i, f in enumerate(futures)}
        out: list[T | BaseException] = [RuntimeError("not run")] * len(plans)
        for done, future in enumerate(as_completed(futures), 1):  # type: ignore[no-untyped-call]
            i = index[future.key]
            if future.status == "error":
                exc = future.exception()
                out[i] = exc if isinstance(exc, BaseException) else RuntimeError(str(exc))
                logger.warning("task %s failed: %s", i, exc)
            else:
                out[i] = future.result()
            future.release()
            if progress is not None:
                progress(done, len(plans))
        return out

    def close(self) -> None:
        """Close the client (and the local cluster, if this runner started one)."""
        self.client.close()  # type: ignore[no-untyped-call]
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
