"""What the benchmarks share: a run in a fresh process with its own peak memory, a worker's
peak, and the figures of a single-process run set against a Dask run."""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Callable, Sequence
from typing import Any


def peak_rss() -> int:
    """This process's peak resident memory so far (bytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed(fn: Callable[..., Any], args: tuple[Any, ...], queue: Any) -> None:
    start = time.perf_counter()
    result = fn(*args)
    queue.put((time.perf_counter() - start, peak_rss(), result))


def in_fresh_process(fn: Callable[..., Any], *args: Any) -> tuple[float, int, Any]:
    """``fn(*args)`` in a new (spawned) process, so that its peak memory is its own: seconds,
    peak RSS (bytes) and the result. ``fn`` must be a module-level function."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_timed, args=(fn, args, queue))
    child.start()
    seconds, peak, result = queue.get()
    child.join()
    return seconds, peak, result


def versus(
    single_s: float, single_peak: int, dask_s: float, dask_peaks: Sequence[int]
) -> dict[str, Any]:
    """The figures of a single-process pandas run against a Dask run (peaks per worker)."""
    return {
        "pandas_s": round(single_s, 2),
        "dask_s": round(dask_s, 2),
        "dask_speedup_vs_pandas": round(single_s / dask_s, 2),
        "pandas_peak_mb": round(single_peak / 2**20),
        "dask_worker_peak_mb": [round(p / 2**20) for p in dask_peaks],
        "dask_peak_ratio_vs_pandas": round(max(dask_peaks) / single_peak, 3),
        "dask_total_peak_ratio_vs_pandas": round(sum(dask_peaks) / single_peak, 3),
    }
