#!/usr/bin/env bash
# The README's OpenMoji figures, reproducible: the default config's quality table (quality
# script: Hamming and cosine mAP, P@10, random init, chance, wall time), then a study on the
# real set whose best trial is promoted, trained at the default epochs and evaluated through
# the CLI like any run. Everything lands in $OUT (default ./openmoji-figures).
#   scripts/openmoji_figures.sh [TRIALS] [SEARCH_EPOCHS] [WORKERS]  (SKIP_QUALITY=1: study only)
# Trials train at the full 40 epochs by default: a 10-epoch search ranked batch size 64 first,
# and it overfit at 40 (README). WORKERS trials train at once, one CPU thread each.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$PWD/openmoji-figures}"
TRIALS="${1:-6}"
SEARCH_EPOCHS="${2:-40}"
WORKERS="${3:-2}"
mkdir -p "$OUT"
export LABDECK_HOME="$OUT/home"
L="$ROOT/.venv/bin/labdeck"
t() { local s; s=$(date +%s); "$@"; echo "TIME $(( $(date +%s) - s ))s: $*" >> "$OUT/times.txt"; }
cd "$ROOT"
if [ -z "${SKIP_QUALITY:-}" ]; then
  t .venv/bin/python -m adapters.vlm_quantization.quality > "$OUT/quality_default.txt"
fi
"$L" exp create emoji-default --adapter vlm_quantization --set num_threads=1
"$L" study create emoji-study --from emoji-default --n-trials "$TRIALS" --workers "$WORKERS" \
  --search-epochs "$SEARCH_EPOCHS" --param weight_decay=1e-4:0.3:log --param augment=0:0.3 \
  --param lr=1e-3:4e-3:log --pruner none --seed 0
t "$L" study start emoji-study --wait
"$L" study show emoji-study > "$OUT/study_show.txt"
"$L" study promote emoji-study --as emoji-best
t "$L" run start emoji-best --wait
t "$L" eval emoji-best/1 --wait --json > "$OUT/eval_best.json"
echo "done: $OUT" >&2
