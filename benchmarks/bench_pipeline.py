"""A year of hourly data for 1,000 stations → daily means with validity and the daily AQI:
the Dask runner against single-process pandas, with peak memory.

Both compute the same thing with the same code (``pipelines.aggregate.daily_many``,
``o3_daily_max_8h_many`` and ``sensors.standards.aqi.aqi_frame``) on the same data: six
pollutants per station, hourly, with missing hours (5 %) and hours failing QC (3 %), made
deterministically per station.

- **pandas**: one process builds the whole year for every station as one long DataFrame and
  computes in one pass (vectorised; what an analyst would write). Run in a child process so
  that its peak RSS is its own.
- **Dask**: :class:`pipelines.runner.Runner` — a local cluster of worker processes (one per
  core) — each task builds and computes ``--chunk`` stations; the results are gathered. Peak
  memory is each worker's peak RSS (and their sum), read from the workers.

The two results are compared row by row. Run: ``python -m benchmarks.bench_pipeline
[--stations 1000 --days 365 --chunk 50]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.harness import in_fresh_process, peak_rss, versus
from pipelines.aggregate import daily_many, o3_daily_max_8h_many
from sensors.standards.aqi import aqi_frame

POLLUTANTS = ("so2", "no2", "co", "pm10", "pm25", "o3")
#: typical level and spread per pollutant (µg/m³; CO mg/m³)
LEVELS = {"so2": 10.0, "no2": 35.0, "co": 0.8, "pm10": 70.0, "pm25": 40.0, "o3": 80.0}
START = pd.Timestamp("2025-12-31 16:00", tz="UTC")  # 2026-01-01 00:00 China Standard Time


def hourly(stations: range, days: int) -> pd.DataFrame:
    """Complete hourly grids for ``stations`` (ids ``S0000`` …), deterministic per station."""
    hours = pd.date_range(START, periods=24 * days, freq="h")
    n = len(hours)
    parts = []
    for s in stations:
        rng = np.random.default_rng(s)
        diurnal = np.sin(np.arange(n) * 2 * np.pi / 24)
        for j, p in enumerate(POLLUTANTS):
            level = LEVELS[p] * (0.5 + rng.random())
            value = level * (1 + 0.3 * diurnal * (1 if p == "o3" else -1)) * rng.gamma(8, 1 / 8, n)
            value[rng.random(n) < 0.05] = np.nan
            parts.append(
                pd.DataFrame(
                    {
                        "station": np.full(n, s, dtype=np.int32),
                        "parameter": np.full(n, j, dtype=np.int8),
                        "start": hours,
                        "value": value.round(1 if p == "co" else 0),
                        "valid": rng.random(n) >= 0.03,
                    }
                )
            )
    frame = pd.concat(parts, ignore_index=True)
    frame["parameter"] = pd.Categorical.from_codes(
        frame["parameter"].to_numpy(), categories=pd.Index(list(POLLUTANTS))
    )
    return frame


def daily_report(frame: pd.DataFrame, tz: str = "Asia/Shanghai") -> pd.DataFrame:
    """Daily means (validity included) and the HJ 633-2026 daily AQI per station and day."""
    days = daily_many(frame[frame["parameter"] != "o3"], tz)
    o3 = o3_daily_max_8h_many(frame[frame["parameter"] == "o3"], tz)
    valid = days[days["valid"]]
    wide = valid.pivot_table(
        index=["station", "start"], columns="parameter", values="value", observed=True
    )
    wide.columns = [f"{c}_24h" for c in wide.columns]
    wide["o3_8h"] = o3[o3["valid"]].set_index(["station", "start"])["value"]
    scores = aqi_frame(wide, "daily")
    return pd.concat([wide, scores[["aqi", "level", "primary"]]], axis=1).sort_index()


def _chunk(days: int, stations: range) -> tuple[pd.DataFrame, int]:
    report = daily_report(hourly(stations, days))
    return report, peak_rss()


def _single(stations: int, days: int) -> pd.DataFrame:
    return daily_report(hourly(range(stations), days))


def run_pandas(stations: int, days: int) -> tuple[float, int, pd.DataFrame]:
    """Seconds, peak RSS (bytes) and result of the single-process run, in a fresh process."""
    seconds, peak, report = in_fresh_process(_single, stations, days)
    return seconds, peak, report


def run_dask(stations: int, days: int, chunk: int) -> tuple[float, list[int], pd.DataFrame]:
    """Seconds, each worker's peak RSS (bytes) and the gathered result on the Dask runner."""
    from pipelines.runner import Runner

    with Runner(None, local="processes") as runner:
        runner.client.run(lambda: None)  # workers up before the clock starts
        plans = [range(i, min(i + chunk, stations)) for i in range(0, stations, chunk)]
        start = time.perf_counter()
        results = runner.map(_chunk, plans, days)
        parts = []
        for r in results:
            if isinstance(r, BaseException):
                raise r
            parts.append(r[0])
        report = pd.concat(parts).sort_index()
        seconds = time.perf_counter() - start
        peaks = runner.client.run(peak_rss)
    return seconds, sorted(peaks.values()), report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--chunk", type=int, default=50, help="stations per Dask task")
    args = parser.parse_args(argv)

    p_seconds, p_peak, p_report = run_pandas(args.stations, args.days)
    d_seconds, d_peaks, d_report = run_dask(args.stations, args.days, args.chunk)
    pd.testing.assert_frame_equal(p_report, d_report)
    hourly_rows = args.stations * args.days * 24 * len(POLLUTANTS)
    result = {
        "stations": args.stations,
        "days": args.days,
        "hourly_values": hourly_rows,
        "station_days": len(p_report),
        "days_with_aqi": int(p_report["aqi"].notna().sum()),
        **versus(p_seconds, p_peak, d_seconds, d_peaks),
        "results_equal": True,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
