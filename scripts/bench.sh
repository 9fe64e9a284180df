#!/usr/bin/env bash
# The benchmarks (not part of `make test`; the tests run each once at a tiny size).
# bench_scaleout needs PostgreSQL with TimescaleDB: the test services provide it.
set -euo pipefail
cd "$(dirname "$0")/.."
env_file=$(mktemp)
trap 'bash scripts/services.sh stop; rm -f "$env_file"' EXIT
bash scripts/services.sh start > "$env_file"
set -a; . "$env_file"; set +a
.venv/bin/python -m benchmarks.bench_store_write
.venv/bin/python -m benchmarks.bench_ingest
.venv/bin/python -m benchmarks.bench_aqi
.venv/bin/python -m benchmarks.bench_pipeline
.venv/bin/python -m benchmarks.bench_carbon
.venv/bin/python -m benchmarks.bench_zonal
.venv/bin/python -m benchmarks.bench_audit
.venv/bin/python -m benchmarks.bench_download
.venv/bin/python -m benchmarks.bench_scaleout
