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

CMD="python -m engine.examples.toy_train --lr {lr} --steps 60 --sleep 0"
"$L" exp create smoke-a --adapter script --set "command=$CMD" --set lr=0.01 --objective val/loss >/dev/null
"$L" exp create smoke-b --adapter script --set "command=$CMD" --set lr=0.05 --objective val/loss >/dev/null
"$L" run start smoke-a --wait >/dev/null
"$L" run start smoke-b --wait --json | "$ROOT/.venv/bin/python" -c \
  'import json,sys; d=json.load(sys.stdin); assert d["status"]=="completed", d'
"$L" run show smoke-a/1 >/dev/null
"$L" run metrics smoke-b/1 --key val/loss --json >/dev/null
"$L" compare smoke-a smoke-b | grep -q "★"
echo "smoke: script adapter loop ok"

if "$L" exp adapters --json | grep -q '"vlm_quantization"'; then
  "$L" exp create smoke-vlm --adapter vlm_quantization --set epochs=1 --set n_train=400 >/dev/null
  "$L" run start smoke-vlm --wait >/dev/null
  "$L" eval smoke-vlm/1 --wait >/dev/null
  "$L" index build smoke-vlm/1 --wait >/dev/null
  "$L" search text "a red circle" --run smoke-vlm/1 --k 3 --json >/dev/null
  echo "smoke: reference adapter train/eval/index/search ok"
fi

if "$L" study --help >/dev/null 2>&1; then
  "$L" study create smoke-study --from smoke-a --param lr=0.001:0.1:log --n-trials 3 \
      --engine random >/dev/null
  "$L" study start smoke-study --wait >/dev/null
  "$L" study show smoke-study --json >/dev/null
  echo "smoke: study ok"
fi
echo "smoke: ok"
