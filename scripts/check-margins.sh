#!/usr/bin/env bash
# Show that the tests' margins hold beyond the one machine they were written on:
#   scripts/check-margins.sh seeds [N...]   learning-sensitive tests (-m learning) once per seed
#                                           (default 1 2 3); the gate itself uses seed 0
#   scripts/check-margins.sh loaded [K]     the whole gate K times (default 1) with one busy
#                                           process per core beside it
#   scripts/check-margins.sh repeat [K]     the whole gate K times in a row (default 3)
# Run after ./dev setup. Exits non-zero on the first failure and says which run it was.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
what="${1:-seeds}"; shift || true

hogs=()
stop_hogs() { for p in "${hogs[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap stop_hogs EXIT

case "$what" in
  seeds)
    seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
    for s in "${seeds[@]}"; do
      echo "== learning-sensitive tests, LABDECK_TEST_SEED=$s"
      LABDECK_TEST_SEED="$s" "$PY" -m pytest -q -p no:cacheprovider -m learning \
        || { echo "margins: seed $s failed" >&2; exit 1; }
    done ;;
  loaded)
    k="${1:-1}"
    for _ in $(seq "$(nproc)"); do "$PY" -c "while True: pass" & hogs+=($!); done
    echo "== $(nproc) busy processes beside the gate"
    for i in $(seq "$k"); do
      echo "== gate under load, run $i/$k"
      bash "$ROOT/gate.sh" || { echo "margins: loaded gate run $i failed" >&2; exit 1; }
    done ;;
  repeat)
    k="${1:-3}"
    for i in $(seq "$k"); do
      echo "== gate run $i/$k"
      bash "$ROOT/gate.sh" || { echo "margins: gate run $i failed" >&2; exit 1; }
    done ;;
  *) echo "usage: scripts/check-margins.sh seeds [N...] | loaded [K] | repeat [K]" >&2; exit 2 ;;
esac
echo "margins: all green"
