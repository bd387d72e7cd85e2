"""A tiny training loop that logs through labdeck's tracking API (used by the demo and tests).

Fits y = 3x + 1 with noise by SGD in pure Python; logs train/loss every step, val/loss every
10 steps, and prints a JSON metrics line for val/acc so both ingestion paths are exercised.
"""

import argparse
import json
import math
import random
import time

from engine import tracking

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.01)
p.add_argument("--steps", type=int, default=200)
p.add_argument("--sleep", type=float, default=0.01)
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()

rng = random.Random(args.seed)
data = [(x / 50.0, 3 * x / 50.0 + 1 + rng.gauss(0, 0.1)) for x in range(-50, 50)]
w, b = 0.0, 0.0
tracking.init()
for step in range(args.steps):
    x, y = data[rng.randrange(len(data))]
    err = w * x + b - y
    w -= args.lr * 2 * err * x
    b -= args.lr * 2 * err
    tracking.log({"train/loss": err * err}, step=step, epoch=step / len(data))
    if step % 10 == 9:
        val = sum((w * x + b - y) ** 2 for x, y in data) / len(data)
        tracking.log({"val/loss": val}, step=step)
        print(json.dumps({"step": step, "val/acc": math.exp(-val)}), flush=True)
    if step % 50 == 0:
        print(f"step {step} w={w:.3f} b={b:.3f}", flush=True)
    time.sleep(args.sleep)
tracking.finish()
print("done", flush=True)
