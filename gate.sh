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
"$PY" -m pytest -q -p no:cacheprovider "$@"

echo "== smoke: headless loop"
bash "$ROOT/scripts/smoke.sh"
echo "gate: all green"
