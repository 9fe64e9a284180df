"""Vectorised AQI (``sensors.standards.aqi``) against PyPI ``aqi-hub`` called per value and per row.

Both compute the HJ 633-2026 hourly (real-time) report of the same random hours: six 1-hour
concentrations per row. Baseline: ``aqi_hub.aqi_cn.cal_aqi_cn`` once per row, in the same
process and run; EcoSense: one ``aqi_frame`` call over the whole DataFrame (exact rounding and
breakpoint landing included). Per value: ``iaqi_array`` over each column against
``aqi_hub.aqi_cn.aqi.cal_iaqi_cn`` once per concentration. Also reports how many rows and
values the two disagree on (aqi-hub's known defects: see ``tests/unit/test_aqi.py``).

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

from sensors.standards.aqi import aqi_frame, iaqi_array


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

    # IAQI per value: aqi-hub's cal_iaqi_cn once per concentration vs iaqi_array per column
    from aqi_hub.aqi_cn.aqi import cal_iaqi_cn  # type: ignore[import-untyped]

    columns = {c: frame[c].to_numpy() for c in frame.columns}
    start = time.perf_counter()
    ours_iaqi = {c: iaqi_array(c, v, "HJ633-2026") for c, v in columns.items()}
    vectorised_iaqi = time.perf_counter() - start
    start = time.perf_counter()
    theirs_iaqi = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c, values in columns.items():
            item = c.upper()  # "pm25_1h" → "PM25_1H"
            theirs_iaqi[c] = [cal_iaqi_cn(item, float(x)) for x in values]
    per_value = time.perf_counter() - start
    values_total = sum(len(v) for v in columns.values())
    iaqi_differ = sum(
        int((ours_iaqi[c] != np.array(theirs_iaqi[c], dtype=float)).sum()) for c in columns
    )

    result = {
        "values": values_total,
        "aqi_hub_values_per_s": values_total / per_value,
        "ecosense_values_per_s": values_total / vectorised_iaqi,
        "iaqi_speedup_vs_aqi_hub_per_value": per_value / vectorised_iaqi,
        "values_whose_iaqi_differs": iaqi_differ,
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
