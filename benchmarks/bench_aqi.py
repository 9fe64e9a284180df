"""Vectorised AQI (``sensors.standards.aqi.aqi_frame``) against PyPI ``aqi-hub`` called per row.

Both compute the HJ 633-2026 hourly (real-time) report of the same random hours: six 1-hour
concentrations per row. Baseline: ``aqi_hub.aqi_cn.cal_aqi_cn`` once per row, in the same
process and run; EcoSense: one ``aqi_frame`` call over the whole DataFrame (exact rounding and
breakpoint landing included). Also reports how many rows the two disagree on (aqi-hub's known
defects: see ``tests/unit/test_aqi.py``).

Run: ``python -m benchmarks.bench_aqi [--rows 100000]``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from sensors.standards.aqi import aqi_frame


def _frame(rows: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "pm25_1h": rng.gamma(2.0, 30.0, rows).round(0),
            "pm10_1h": rng.gamma(2.0, 45.0, rows).round(0),
            "so2_1h": rng.gamma(1.5, 10.0, rows).round(0),
            "no2_1h": rng.gamma(2.0, 20.0, rows).round(0),
            "co_1h": rng.gamma(2.0, 0.5, rows).round(1),
            "o3_1h": rng.gamma(2.0, 50.0, rows).round(0),
        }
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    from aqi_hub.aqi_cn import cal_aqi_cn  # type: ignore[import-untyped]

    frame = _frame(args.rows)
    start = time.perf_counter()
    ours = aqi_frame(frame, "hourly")
    vectorised = time.perf_counter() - start

    records = frame.to_numpy()
    theirs = np.empty(len(frame))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (pm25, pm10, so2, no2, co, o3) in enumerate(records):
            value, _ = cal_aqi_cn(pm25, pm10, so2, no2, co, o3, data_type="hourly")
            theirs[i] = np.nan if value is None else value
    per_row = time.perf_counter() - start

    result = {
        "rows": args.rows,
        "aqi_hub_rows_per_s": args.rows / per_row,
        "ecosense_rows_per_s": args.rows / vectorised,
        "speedup_vs_aqi_hub": per_row / vectorised,
        "rows_that_differ": int((ours["aqi"].to_numpy(dtype=float) != theirs).sum()),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
