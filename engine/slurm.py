"""Slurm's commands as labdeck uses them: write a job's batch script, submit it, read what
Slurm says of jobs, cancel them.

Only ``sbatch``, ``squeue``, ``scontrol`` and ``scancel`` are used, directly. ``sacct`` is not:
it needs the accounting daemon (slurmdbd), which many small clusters (and the one-node Slurm
of scripts/slurm-local.sh) do not run. That is also why submitit is not used: it reads job
states only through sacct, sees UNKNOWN without it and hangs on a cancelled job. A finished
job stays in ``squeue -t all`` for MinJobAge (300 s by default); after that ``scontrol show
job`` may still know it, and a job neither knows is reported ``GONE``.

Options come from the home's ``home.json`` (``{"slurm": {"partition": "gpu", "time":
"01:00:00", "gpus": 1, "cpus_per_task": 4, "mem": "16G", "account": "lab", "extra":
["#SBATCH --qos=short"]}}``), overridden per launch (``--slurm-opt KEY=VALUE``). Every key
but ``extra`` becomes ``#SBATCH --key-with-dashes=VALUE``; ``extra`` lines are written as
they are.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .home_access import HOME_CONFIG
from .settings import Settings

TIMEOUT_S = 30.0
# states after which the job runs no more (squeue's long names)
ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                   "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED", "GONE"})
_KEY = re.compile(r"^[a-z][a-z0-9_-]*$")


class SlurmError(RuntimeError):
    pass


@dataclass(frozen=True)
class SlurmState:
    state: str  # PENDING, RUNNING, COMPLETED, TIMEOUT, ... or GONE (Slurm forgot it)
    reason: str | None  # why it waits or ended (Priority, Resources, TimeLimit); None: none
    node: str | None

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def text(self) -> str:
        """How labdeck shows it: "PENDING (Resources)", "RUNNING on node1"."""
        out = self.state
        if self.reason:
            out += f" ({self.reason})"
        if self.node and self.state in ("RUNNING", "COMPLETING"):
            out += f" on {self.node}"
        return out


def home_options(home: Path) -> dict[str, Any]:
    """The home's Slurm options: ``home.json``'s "slurm" object (none: {})."""
    try:
        data = json.loads((home / HOME_CONFIG).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{home / HOME_CONFIG}: {exc}") from None
    slurm = data.get("slurm", {}) if isinstance(data, dict) else {}
    if not isinstance(slurm, dict):
        raise ValueError(f'{home / HOME_CONFIG}: "slurm" must be an object of sbatch options')
    return check_options(slurm)


def executor_params(settings: Settings, executor: str,
                    overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a job's params say of where it runs: nothing for ``local`` (as before executors
    existed); for ``slurm`` the executor and its options (the home's, ``overrides`` over them),
    fixed when the job is queued."""
    if executor == "local":
        if overrides:
            raise ValueError("Slurm options are for --executor slurm")
        return {}
    if executor != "slurm":
        raise ValueError(f"unknown executor {executor!r} (local or slurm)")
    return {"executor": "slurm",
            "slurm": {**home_options(settings.home), **check_options(overrides or {})}}


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``["partition=gpu", "time=10", "extra=#SBATCH --qos=x"]`` -> options (``extra`` may
    come several times)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--slurm-opt {pair!r}: expected KEY=VALUE (e.g. partition=gpu)")
        if key == "extra":
            out.setdefault("extra", []).append(value)
        else:
            out[key] = value
    return check_options(out)


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as stored on a job; refuses a key or value that could break the script."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key == "extra":
            lines = [value] if isinstance(value, str) else list(value)
            for line in lines:
                if "\n" in str(line) or not str(line).startswith("#SBATCH "):
                    raise ValueError(f"slurm option extra {line!r}: each line must be one"
                                     " '#SBATCH ...' line")
            out["extra"] = [str(line) for line in lines]
            continue
        if not _KEY.match(str(key)):
            raise ValueError(f"slurm option {key!r}: not an sbatch option name")
        if value is None or value == "":
            continue
        text = str(value)
        if "\n" in text or "\r" in text:
            raise ValueError(f"slurm option {key}: a value has no line breaks")
        out[str(key)] = text
    return out


def batch_script(job_id: int, spool_dir: Path, log: Path, options: Mapping[str, Any],
                 repo: Path, env: Mapping[str, str]) -> str:
    """The batch script: Slurm's options, then the worker in spool mode (this interpreter,
    run from labdeck's own source tree) in place of the shell, so Slurm's signals reach it."""
    lines = ["#!/bin/bash", f"#SBATCH --job-name=labdeck-{job_id}",
             f"#SBATCH --output={log}", "#SBATCH --open-mode=append"]
    for key, value in options.items():
        if key != "extra":
            lines.append(f"#SBATCH --{key.replace('_', '-')}={value}")
    lines += list(options.get("extra", []))
    lines.append(f"cd {shlex.quote(str(repo))}")
    for name, value in env.items():
        lines.append(f"export {name}={shlex.quote(value)}")
    # the GPUs Slurm gave the job are the ones labdeck's device check sees
    lines.append('export LABDECK_GPU_INDICES="${CUDA_VISIBLE_DEVICES:-}"')
    lines.append(f"exec {shlex.quote(sys.executable)} -m engine.worker"
                 f" --spool {shlex.quote(str(spool_dir))} {int(job_id)}")
    return "\n".join(lines) + "\n"


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise SlurmError(f"{args[0]} not found: is Slurm installed on this machine?") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{args[0]} did not answer in {TIMEOUT_S:g} s") from None


def submit(script: Path) -> str:
    """``sbatch --parsable``; the Slurm job id."""
    proc = _run(["sbatch", "--parsable", str(script)])
    if proc.returncode != 0:
        raise SlurmError(f"sbatch failed: {(proc.stderr or proc.stdout).strip()}")
    slurm_id = proc.stdout.strip().split(";")[0]
    if not slurm_id.isdigit():
        raise SlurmError(f"sbatch said {proc.stdout.strip()!r}, not a job id")
    return slurm_id


def query(slurm_ids: Iterable[str]) -> dict[str, SlurmState]:
    """What Slurm says of each job: one squeue for all, ``scontrol show job`` for those squeue
    no longer lists, GONE for those neither knows."""
    ids = sorted(set(slurm_ids), key=int)
    if not ids:
        return {}
    proc = _run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T|%r|%N"])
    out: dict[str, SlurmState] = {}
    if proc.returncode == 0:
        for line in proc.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 4 and parts[0] in ids:
                out[parts[0]] = SlurmState(parts[1], _reason(parts[2]), parts[3] or None)
    for slurm_id in ids:
        if slurm_id not in out:
            out[slurm_id] = _scontrol(slurm_id)
    return out


def _reason(text: str | None) -> str | None:
    return None if not text or text in ("None", "(null)") else text


def _scontrol(slurm_id: str) -> SlurmState:
    proc = _run(["scontrol", "-o", "show", "job", slurm_id])
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return SlurmState("GONE", "no longer known to Slurm", None)
        raise SlurmError(f"scontrol show job {slurm_id}: {proc.stderr.strip()}")
    fields = dict(f.split("=", 1) for f in proc.stdout.split() if "=" in f)
    node = fields.get("NodeList")
    return SlurmState(fields.get("JobState", "UNKNOWN"), _reason(fields.get("Reason")),
                      None if node in (None, "(null)") else node)


def cancel(slurm_id: str, term: bool = False) -> None:
    """``scancel``: with ``term`` SIGTERM to the batch script (the worker) and its steps,
    else the job ends (SIGKILL after Slurm's KillWait)."""
    args = ["scancel"] + (["--full", "--signal=TERM"] if term else []) + [slurm_id]
    proc = _run(args)
    if proc.returncode != 0 and "already completing" not in proc.stderr:
        raise SlurmError(f"scancel {slurm_id}: {proc.stderr.strip()}")


def cancel_named(name: str) -> None:
    """Cancel the jobs called ``name`` (a submission whose id was never recorded)."""
    _run(["scancel", f"--name={name}"])
