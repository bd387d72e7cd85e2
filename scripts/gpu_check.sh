#!/usr/bin/env bash
# The GPU check (issue 12), for a machine with an NVIDIA GPU. In a scratch home, through the
# CLI, it trains the default vlm_quantization config on a GPU (`run start --gpus 1 --wait`) and
# on the CPU (`--gpus 0`), prints the speed-up, and checks that
#   - both runs completed, and the GPU run learned about as well as the CPU run;
#   - the GPU run recorded sys/gpu<i>/* metrics for its assigned GPU i, and for no other;
#   - the GPU job saw exactly its assigned device: the worker's log line names GPU i
#     (CUDA_VISIBLE_DEVICES=i), torch in the job saw one CUDA device, and that device's UUID is
#     GPU i's as NVML reports it;
#   - the CPU job ran on the CPU, with no sys/gpu metrics.
# Exits 1 on a failed check, 0 when all pass, and 0 with "no NVIDIA GPU here; nothing to
# check" on a machine without one.
#
#   scripts/gpu_check.sh [--keep] [--set KEY=VALUE ...]
#     --keep   keep the scratch home (its path is printed)
#     --set    config overrides for both runs (e.g. --set epochs=3 for a quicker check)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
keep=0
sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --set) sets+=(--set "$2"); shift ;;
    *) echo "usage: scripts/gpu_check.sh [--keep] [--set KEY=VALUE ...]" >&2; exit 2 ;;
  esac
  shift
done

# -- is there a GPU at all? NVML (what the scheduler uses), with nvidia-smi as a second opinion
nvml="$("$PY" -c 'from engine.resources import probe_gpus
p = probe_gpus(); print(len(p.gpus), p.status)')"
smi=0
if command -v nvidia-smi >/dev/null 2>&1; then
  smi="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
fi
if [ "${nvml%% *}" = 0 ]; then
  if [ "$smi" -gt 0 ]; then
    echo "gpu_check: FAIL: nvidia-smi lists $smi GPU(s) but labdeck's NVML probe sees none" \
         "(${nvml#* }); the scheduler could not assign them" >&2
    exit 1
  fi
  echo "no NVIDIA GPU here; nothing to check (NVML: ${nvml#* })"
  exit 0
fi
echo "== GPUs (NVML): ${nvml%% *}"
if ! "$PY" - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    build = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    sys.exit(f"gpu_check: FAIL: torch {torch.__version__} ({build}) sees no CUDA device, so a"
             " GPU job cannot run here; install a CUDA build of torch into .venv")
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), {torch.cuda.device_count()}"
      " device(s) visible to this shell")
EOF
then
  exit 1
fi

# -- a scratch home and the two runs
scratch="$(mktemp -d "${TMPDIR:-/tmp}/labdeck-gpu-check.XXXXXX")"
export LABDECK_HOME="$scratch/home"
unset LABDECK_GPUS  # every GPU of the machine may be used for the check
cleanup() { if [ "$keep" = 1 ]; then echo "scratch home kept: $LABDECK_HOME"; else rm -rf "$scratch"; fi; }
trap cleanup EXIT
cli() { "$PY" -m cli "$@"; }

cli exp create gpucheck --adapter vlm_quantization ${sets[@]+"${sets[@]}"} >/dev/null
for side in gpu cpu; do
  gpus=1; [ "$side" = cpu ] && gpus=0
  echo "== training the default vlm_quantization config with --gpus $gpus"
  start=$(date +%s.%N)
  if ! cli --json run start gpucheck --gpus "$gpus" --wait > "$scratch/$side-start.json"; then
    echo "gpu_check: FAIL: the $side run did not complete:" >&2
    cat "$scratch/$side-start.json" >&2 || true
    run_id="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' \
              "$scratch/$side-start.json" 2>/dev/null || true)"
    [ -n "$run_id" ] && cli run logs "$run_id" -n 40 >&2 || true
    exit 1
  fi
  end=$(date +%s.%N)
  run_id="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' \
            "$scratch/$side-start.json")"
  echo "$start $end" > "$scratch/$side-wall"
  cli --json run show "$run_id" > "$scratch/$side-show.json"
  cli --json run metrics "$run_id" > "$scratch/$side-metrics.json"
  cli run logs "$run_id" -n 100000 > "$scratch/$side.log"
done

# -- the checks
"$PY" - "$scratch" <<'EOF'
import json
import re
import sys
from pathlib import Path

from engine.resources import probe_gpus

d = Path(sys.argv[1])
failures = []


def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        failures.append(what)


def load(side):
    show = json.loads((d / f"{side}-show.json").read_text())
    metrics = json.loads((d / f"{side}-metrics.json").read_text())["metrics"]
    start, end = map(float, (d / f"{side}-wall").read_text().split())
    return show, metrics, (d / f"{side}.log").read_text(), end - start


gpu, gpu_metrics, gpu_log, gpu_wall = load("gpu")
cpu, cpu_metrics, cpu_log, cpu_wall = load("cpu")
uuids = {g.index: g.uuid for g in probe_gpus().gpus}

print("== the GPU run")
check(gpu["status"] == "completed",
      f"run {gpu['experiment']}/{gpu['number']} completed ({gpu['status']})")
m = re.search(r"labdeck: job \d+ device cuda: GPUs ([\d,]+) \(CUDA_VISIBLE_DEVICES=([^)]*)\)",
              gpu_log)
check(m is not None, "the worker says which GPUs the job was given")
given = [int(i) for i in m.group(1).split(",")] if m else []
check(len(given) == 1, f"one GPU was given: {given}")
if gpu.get("devices") is not None:
    check(gpu["devices"] == given, f"the job record says the same devices: {gpu['devices']}")
index = given[0] if given else -1
check(m is not None and m.group(2) == str(index),
      f"CUDA_VISIBLE_DEVICES of the job is that GPU ({m.group(2) if m else None!r})")
t = re.search(r"device cuda:0: (.*?)(?: \(((?:GPU|MIG)-[^)]*)\))?; (\d+) visible CUDA device",
              gpu_log)
check(t is not None, "the adapter trained on cuda:0")
if t:
    check(t.group(3) == "1", f"torch in the job saw exactly one CUDA device ({t.group(3)})")
    if t.group(2):
        check(t.group(2) == uuids.get(index),
              f"... and it is GPU {index} ({t.group(2)} vs NVML {uuids.get(index)})")
    else:
        print("  note  this torch does not report device UUIDs; the count check stands")
    print(f"        {t.group(0)}")
sys_gpu = sorted(k for k in gpu_metrics if k.startswith("sys/gpu"))
own = [k for k in sys_gpu if k.startswith(f"sys/gpu{index}/")]
check({f"sys/gpu{index}/util_pct", f"sys/gpu{index}/mem_mb"} <= set(own)
      and all(gpu_metrics[k] for k in own), f"sys/gpu{index}/* recorded: {own}")
check(own == sys_gpu, f"no other GPU's metrics: {sorted(set(sys_gpu) - set(own))}")
check(bool(gpu_metrics.get("sys/cpu_pct")) and bool(gpu_metrics.get("sys/rss_mb")),
      "sys/cpu_pct and sys/rss_mb recorded")
for k in own:
    values = [v for _, v in gpu_metrics[k] if v is not None]
    if values:
        print(f"        {k}: {len(values)} samples, max {max(values):.1f}")

print("== the CPU run")
check(cpu["status"] == "completed",
      f"run {cpu['experiment']}/{cpu['number']} completed ({cpu['status']})")
check("device cpu" in cpu_log and "device cuda" not in cpu_log, "it trained on the CPU")
check(not any(k.startswith("sys/gpu") for k in cpu_metrics), "no sys/gpu metrics")
if cpu.get("devices") is not None:
    check(cpu["devices"] == [], f"the job record gives it no GPU: {cpu['devices']}")


def best_map(show):
    return (show.get("summary") or {}).get("val/map_64", {}).get("best")


g_map, c_map = best_map(gpu), best_map(cpu)
check(g_map is not None and c_map is not None and g_map >= 0.5 * c_map,
      f"the GPU run (mixed precision) learned like the CPU run: val/map_64 {g_map} vs {c_map}")

print("== speed")
g_s, c_s = gpu.get("duration"), cpu.get("duration")
print(f"  run duration   gpu {g_s:.1f} s   cpu {c_s:.1f} s   speed-up {c_s / g_s:.2f}x"
      if g_s and c_s else f"  run duration   gpu {g_s}   cpu {c_s}")
print(f"  CLI wall       gpu {gpu_wall:.1f} s   cpu {cpu_wall:.1f} s   speed-up"
      f" {cpu_wall / gpu_wall:.2f}x")
if failures:
    print(f"gpu_check: {len(failures)} check(s) failed")
    sys.exit(1)
print("gpu_check: all checks passed")
EOF
