"""Test job for GPU placement: prints the devices it was given (CUDA_VISIBLE_DEVICES,
CUDA_DEVICE_ORDER, LABDECK_GPU_INDICES; <unset> when absent) and its pid, logs one metric,
then waits until a file named after its job appears in the directory given as argument."""

import json
import os
import sys
import time

for name in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "LABDECK_GPU_INDICES"):
    print(f"{name}={os.environ.get(name, '<unset>')}", flush=True)
print(f"SCRIPT_PID={os.getpid()}", flush=True)
print(json.dumps({"step": 0, "seen": 1.0}), flush=True)
release = os.path.join(sys.argv[1], os.environ.get("LABDECK_JOB_ID", "none"))
deadline = time.monotonic() + 120
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.05)
