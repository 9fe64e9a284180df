"""10,000 facilities × 8,760 hourly activity records → an annual inventory by province × sector
× gas × scope: the Dask runner against single-process pandas, with peak memory.

Both use the same code (``carbon.inventory.account_frame`` then ``rollup``) on the same data:
each facility has one metered activity (diesel in t, natural gas in Nm³ or electricity in MWh)
read every hour of 2023, in one of several counties, cities and provinces. pandas builds all
87.6 million records as one DataFrame in a fresh process and accounts them in one pass; the
Dask runner (a local cluster, one worker process per core) gives each task ``--chunk``
facilities and rolls the gathered rows up. The two inventories are compared.

Run: ``python -m benchmarks.bench_carbon [--facilities 10000 --hours 8760 --chunk 500]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.harness import in_fresh_process, peak_rss, versus
from carbon.inventory import account_frame, rollup

REGIONS = ("110105", "110108", "310101", "440305", "510104", "CN-ZJ", "CN-SD", "CN-XZ")
ACTIVITIES = (("diesel", "t", 0.5), ("natural_gas", "Nm3", 800.0), ("electricity", "MWh", 2.0))
START = pd.Timestamp("2023-01-01", tz="Asia/Shanghai")


def facilities(n: int) -> pd.DataFrame:
    """Facility ``F00000`` … with a region and an IPCC sector each."""
    return pd.DataFrame(
        {
            "id": [f"F{i:05d}" for i in range(n)],
            "region": [REGIONS[i % len(REGIONS)] for i in range(n)],
            "sector": ["1.A.1.a" if i % 2 else "1.A.2" for i in range(n)],
        }
    )


def records(ids: range, hours: int) -> pd.DataFrame:
    """Hourly metered quantities of facilities ``ids`` (deterministic per facility)."""
    times = pd.date_range(START, periods=hours, freq="h")
    n = len(ids) * hours
    names = [f"F{i:05d}" for i in ids]
    activity_of = [ACTIVITIES[i % 3] for i in ids]
    quantity = np.empty(n)
    for k, i in enumerate(ids):
        rng = np.random.default_rng(i)
        quantity[k * hours : (k + 1) * hours] = activity_of[k][2] * rng.gamma(4, 0.25, hours)
    return pd.DataFrame(
        {
            "facility": pd.Categorical(np.repeat(names, hours)),
            # int64 nanoseconds tiled, then one aware index (tiling Timestamps would make objects)
            "start": pd.DatetimeIndex(np.tile(times.as_unit("ns").asi8, len(ids)))
            .tz_localize("UTC")
            .tz_convert(times.tz),
            "activity": pd.Categorical(np.repeat([a[0] for a in activity_of], hours)),
            "quantity": quantity,
            "unit": pd.Categorical(np.repeat([a[1] for a in activity_of], hours)),
        }
    )


def inventory(rows: pd.DataFrame) -> pd.DataFrame:
    out = rollup(rows, "province", by=("sector", "gas", "scope", "year"))
    return out.sort_values(["region", "sector", "gas", "scope", "year"]).reset_index(drop=True)


def _chunk(n_facilities: int, hours: int, ids: range) -> tuple[pd.DataFrame, int]:
    rows, failed = account_frame(records(ids, hours), facilities(n_facilities))
    if not failed.empty:
        raise RuntimeError(str(failed["error"].iloc[0]))
    return rows, peak_rss()


def _single(n: int, hours: int) -> tuple[pd.DataFrame, int]:
    rows, failed = account_frame(records(range(n), hours), facilities(n))
    return inventory(rows), len(failed)


def run_pandas(n: int, hours: int) -> tuple[float, int, pd.DataFrame]:
    seconds, peak, (result, failed) = in_fresh_process(_single, n, hours)
    if failed:
        raise RuntimeError(f"{failed} sums could not be accounted")
    return seconds, peak, result


def run_dask(n: int, hours: int, chunk: int) -> tuple[float, list[int], pd.DataFrame]:
    from pipelines.runner import Runner

    with Runner(None, local="processes") as runner:
        runner.client.run(lambda: None)
        plans = [range(i, min(i + chunk, n)) for i in range(0, n, chunk)]
        start = time.perf_counter()
        parts = []
        for r in runner.map(_chunk, plans, n, hours):
            if isinstance(r, BaseException):
                raise r
            parts.append(r[0])
        result = inventory(pd.concat(parts, ignore_index=True))
        seconds = time.perf_counter() - start
        peaks = runner.client.run(peak_rss)
    return seconds, sorted(peaks.values()), result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facilities", type=int, default=10_000)
    parser.add_argument("--hours", type=int, default=8760)
    parser.add_argument("--chunk", type=int, default=500, help="facilities per Dask task")
    args = parser.parse_args(argv)
    p_seconds, p_peak, p_result = run_pandas(args.facilities, args.hours)
    d_seconds, d_peaks, d_result = run_dask(args.facilities, args.hours, args.chunk)
    pd.testing.assert_frame_equal(p_result, d_result, rtol=1e-9)
    result = {
        "facilities": args.facilities,
        "records": args.facilities * args.hours,
        "inventory_rows": len(p_result),
        "total_co2e_t": round(float(p_result["co2e_t"].sum()), 1),
        **versus(p_seconds, p_peak, d_seconds, d_peaks),
        "results_equal": True,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
