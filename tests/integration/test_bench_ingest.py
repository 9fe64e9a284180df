"""The ingest benchmark runs once at a tiny size, so that it cannot rot (figures: make bench)."""

from __future__ import annotations

import pytest

from benchmarks.bench_ingest import main

pytestmark = pytest.mark.integration


def test_ingest_benchmark_runs() -> None:
    tiny = ["--rows", "800", "--batch", "100", "--lines", "20", "--clients", "2"]
    result = main([*tiny, "--devices", "20", "--seconds", "2"])
    for key in (
        "copy_rows_per_s",
        "http_json_ratio_to_copy",
        "line_protocol_ratio_to_copy",
        "hj212_ratio_to_copy",
        "hj212_p50_ms",
        "hj212_p99_ms",
    ):
        assert result[key] > 0
    assert result["hj212_packets"] == 20 * (2 + 1)  # each device: a first packet, then 2 s


def test_scaleout_benchmark_runs() -> None:
    """Gateways 1 → 2, the jobs on 1 → 2 workers, the database's size (issue 15, item 5)."""
    import os

    from benchmarks.bench_scaleout import main as scaleout
    from tests.conftest import require_service

    admin = os.environ.get("ECOSENSE_TEST_TIMESCALE_URL", "")
    require_service("PostgreSQL 15 with TimescaleDB", bool(admin))
    tiny = ["--rows", "600", "--batch", "100", "--clients", "2", "--stations", "4", "--step", "60"]
    tiny += ["--devices", "4"]
    result = scaleout(["--database-url", admin, *tiny])
    for n in ("1_gateway", "2_gateways"):
        for path in ("http_json", "line_protocol", "hj212"):
            figures = result["gateways"][f"{path}_{n}"]
            assert figures["ratio_to_copy"] > 0 and figures["gateway_cpu_us_per_reading"] > 0
    assert result["day"]["readings"] == 4 * 6 * 24
    jobs = result["jobs"]
    assert jobs["1_worker"]["rows_written"] == jobs["2_workers"]["rows_written"] > 0
    assert result["database"]["bytes_per_reading"] > 0
