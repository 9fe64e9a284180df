"""The carbon benchmark runs once at a tiny size, so that it cannot rot (figures: make bench)."""

from __future__ import annotations

from benchmarks.bench_carbon import main


def test_carbon_benchmark_runs_and_both_paths_agree() -> None:
    result = main(["--facilities", "12", "--hours", "48", "--chunk", "5"])
    assert result["results_equal"] and result["records"] == 12 * 48
    assert result["total_co2e_t"] > 0 and result["inventory_rows"] > 0
