#!/usr/bin/env bash
# The gate: lint, import contracts, types, the whole test suite (slow tests included), and a
# headless smoke of the full loop. Run through `./dev gate` (which sets up .venv first).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
export PYTHONDONTWRITEBYTECODE=1

echo "== ruff"
"$PY" -m ruff check .

echo "== import contracts (pyproject [tool.importlinter])"
"$(dirname "$PY")/lint-imports" --no-cache

echo "== types (mypy over engine/, adapters/, cli/)"
"$PY" -m mypy

echo "== tests"
# two workers (pytest-xdist), a test module per worker at a time: the suite waits on real
# subprocesses about half of its time, so two halve its wall time on 2 cores without
# oversubscribing torch (four did: OpenMP threads spinning against each other, 2.5x the CPU);
# modules in collection order, where tests/conftest.py puts the longest training test first.
# LABDECK_TEST_WORKERS=0 runs it in one process.
"$PY" -m pytest -q -p no:cacheprovider -n "${LABDECK_TEST_WORKERS:-2}" --dist loadscope --no-loadscope-reorder "$@"

echo "== smoke: headless loop"
bash "$ROOT/scripts/smoke.sh"
echo "gate: all green"
