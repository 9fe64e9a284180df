#!/usr/bin/env bash
# The benchmarks (not part of `make test`; the tests run each once at a tiny size).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m benchmarks.bench_store_write
.venv/bin/python -m benchmarks.bench_ingest
.venv/bin/python -m benchmarks.bench_aqi
.venv/bin/python -m benchmarks.bench_pipeline
.venv/bin/python -m benchmarks.bench_carbon
.venv/bin/python -m benchmarks.bench_zonal
