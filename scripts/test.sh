#!/usr/bin/env bash
# The whole test suite: lint, type check, start services, pytest (unit, integration, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

$BIN/ruff check .
$BIN/ruff format --check .
$BIN/mypy

env_file=$(mktemp)
trap 'bash scripts/services.sh stop; rm -f "$env_file"' EXIT
bash scripts/services.sh start > "$env_file"
set -a; . "$env_file"; set +a
cat "$env_file"

$BIN/python -m pytest "$@"
