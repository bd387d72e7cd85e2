#!/usr/bin/env bash
# Headless smoke of the whole loop on a throwaway home, through the real CLI:
# create -> run --wait -> show/metrics/compare -> (reference adapter: eval, index, search)
# -> study, when those features are installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
L="$ROOT/.venv/bin/labdeck"
HOME_DIR="$(mktemp -d)"
trap 'rm -rf "$HOME_DIR"' EXIT
export LABDECK_HOME="$HOME_DIR"
cd "$ROOT"

# a waiting command that fails shows what it printed and the jobs' state, so a failure in CI
# (seen once under load, not reproduced since) says why
waited() {
  local out
  if ! out="$("$L" "$@" 2>&1)"; then
    echo "smoke: FAILED: labdeck $*" >&2
    echo "$out" >&2
    "$L" jobs list >&2 || true
    for id in $("$L" jobs list --json | "$ROOT/.venv/bin/python" -c \
        'import json,sys; print(" ".join(str(j["id"]) for j in json.load(sys.stdin)))'); do
      "$L" jobs show "$id" >&2 || true
    done
    exit 1
  fi
}

CMD="python -m engine.examples.toy_train --lr {lr} --steps 60 --sleep 0"
"$L" exp create smoke-a --adapter script --set "command=$CMD" --set lr=0.01 --objective val/loss >/dev/null
"$L" exp create smoke-b --adapter script --set "command=$CMD" --set lr=0.05 --objective val/loss >/dev/null
waited run start smoke-a --wait
"$L" run start smoke-b --wait --json | "$ROOT/.venv/bin/python" -c \
  'import json,sys; d=json.load(sys.stdin); assert d["status"]=="completed", d'
"$L" run show smoke-a/1 >/dev/null
"$L" run metrics smoke-b/1 --key val/loss --json >/dev/null
"$L" compare smoke-a smoke-b | grep -q "★"
echo "smoke: script adapter loop ok"

if "$L" exp adapters --json | grep -q '"vlm_quantization"'; then
  "$L" exp create smoke-vlm --adapter vlm_quantization --set dataset=synthetic --set epochs=1 --set n_train=400 >/dev/null
  waited run start smoke-vlm --wait
  waited eval smoke-vlm/1 --wait
  waited index build smoke-vlm/1 --wait
  "$L" search text "a red circle" --run smoke-vlm/1 --k 3 --json >/dev/null
  echo "smoke: reference adapter train/eval/index/search ok"
fi

if "$L" study --help >/dev/null 2>&1; then
  "$L" study create smoke-study --from smoke-a --param lr=0.001:0.1:log --n-trials 3 \
      --engine random >/dev/null
  waited study start smoke-study --wait
  "$L" study show smoke-study --json >/dev/null
  echo "smoke: study ok"
fi
echo "smoke: ok"
