"""The pipeline benchmark runs once at a tiny size, so that it cannot rot (figures: make bench)."""

from __future__ import annotations

from benchmarks.bench_pipeline import main


def test_pipeline_benchmark_runs_and_both_paths_agree() -> None:
    result = main(["--stations", "4", "--days", "10", "--chunk", "2"])
    assert result["results_equal"] and result["station_days"] == 4 * 10
    assert result["days_with_aqi"] > 0
    assert result["pandas_peak_mb"] > 0 and len(result["dask_worker_peak_mb"]) >= 1
