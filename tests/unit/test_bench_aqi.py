"""The AQI benchmark runs once at a tiny size, so that it cannot rot (figures: make bench)."""

from __future__ import annotations

from benchmarks.bench_aqi import main


def test_aqi_benchmark_runs() -> None:
    result = main(["--rows", "200"])
    assert result["rows"] == 200
    assert result["speedup_vs_aqi_hub"] > 0
    assert 0 <= result["rows_that_differ"] <= 200
    assert result["values"] == 6 * 200 and result["iaqi_speedup_vs_aqi_hub_per_value"] > 0
    assert 0 <= result["values_whose_iaqi_differs"] <= 6 * 200
