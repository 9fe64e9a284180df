"""Each benchmark runs once at a tiny size, so that it cannot rot (figures: `make bench`)."""

from __future__ import annotations

import pytest

from benchmarks.bench_store_write import run

pytestmark = pytest.mark.integration


def test_store_write_benchmark_runs(database_url: str) -> None:
    result = run(database_url, rows=600, batch=100, stations=5, rounds=1)
    assert result["rows"] == 600
    for key in (
        "copy_rows_per_s",
        "ecosense_rows_per_s",
        "resend_rows_per_s",
        "ratio_ecosense_to_copy",
        "ratio_resend_to_copy",
        "correct_rows_per_s",
        "ratio_correct_to_copy",
    ):
        assert result[key] > 0


def test_download_benchmark_runs(database_url: str) -> None:
    from benchmarks.bench_download import run as run_download

    result = run_download(database_url, rows=2000, stations=2)
    assert result["rows"] == 2000
    assert result["csv_rows"] == result["parquet_rows"] == 2000
    for key in ("copy_rows_per_s", "csv_rows_per_s", "parquet_rows_per_s"):
        assert result[key] > 0
