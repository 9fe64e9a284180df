"""The zonal benchmark runs once at a tiny size, so that it cannot rot (figures: make bench)."""

from __future__ import annotations

from benchmarks.bench_zonal import main


def test_zonal_benchmark_runs_and_every_path_agrees() -> None:
    result = main(["--size", "400", "--polygons", "12", "--chunks", "3"])
    assert result["results_equal"] and result["raster_cells"] == 400 * 400
    assert result["pipeline_overhead_ratio"] > 0 and result["dask_scaling_1_to_2"] > 0
