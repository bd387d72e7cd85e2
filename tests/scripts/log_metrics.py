"""Test training script: logs 3 metrics per step through the tracking API (or JSON lines),
optionally sleeping, spawning a child that must die with it, or emitting NaN/inf."""

import argparse
import json
import math
import os
import subprocess
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=100)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--mode", choices=["tracking", "json"], default="tracking")
p.add_argument("--child", action="store_true", help="spawn a sleeping grandchild")
p.add_argument("--special", action="store_true", help="log NaN and +-inf values")
p.add_argument("--fail-at", type=int, default=-1)
args = p.parse_args()

if args.child:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(f"CHILD_PID={child.pid}", flush=True)
print(f"SCRIPT_PID={os.getpid()}", flush=True)

if args.mode == "tracking":
    from engine import tracking

    tracking.init()
for step in range(args.steps):
    if step == args.fail_at:
        raise SystemExit(3)
    metrics = {"train/loss": 1.0 / (step + 1), "train/acc": step / args.steps,
               "val/score": float(step % 7)}
    if args.special and step == 5:
        metrics = {"train/loss": math.nan, "train/acc": math.inf, "val/score": -math.inf}
    if args.mode == "tracking":
        tracking.log(metrics, step=step)
    else:
        print(json.dumps({"step": step, **metrics}), flush=True)
    if args.sleep:
        time.sleep(args.sleep)
if args.mode == "tracking":
    tracking.finish()
