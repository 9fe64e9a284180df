"""The ingest benchmark runs once at a tiny size, so that it cannot rot (figures: make bench)."""

from __future__ import annotations

import pytest

from benchmarks.bench_ingest import main

pytestmark = pytest.mark.integration


def test_ingest_benchmark_runs() -> None:
    result = main(
        ["--rows", "800", "--batch", "100", "--clients", "2", "--devices", "20", "--seconds", "2"]
    )
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
