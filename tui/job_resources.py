"""How a job's resources read in the jobs table and the job detail (in the words of
``labdeck jobs list``): the GPUs it asks for, the devices it was given, and while queued why
it waits. On a CPU-only machine none of it shows."""

from __future__ import annotations

from rich.text import Text


def devices_cell(job) -> Text:
    """As ``labdeck jobs list`` says it: ``gpu 0,1`` (the devices it holds or held), while
    queued ``needs 2``, ``cpu`` for a job placed on the CPU of a machine with GPUs, else
    ``-``; a job on Slurm: ``slurm 123``."""
    if job.slurm_id:
        return Text(f"slurm {job.slurm_id}", "magenta")
    if job.devices:
        return Text("gpu " + ",".join(str(d) for d in job.devices), "cyan")
    if job.status == "queued" and job.gpus:
        return Text(f"needs {job.gpus}", "yellow")
    if job.devices is not None or job.status == "queued":
        return Text("cpu", "dim")
    return Text("-", "dim")


def message_cell(job) -> Text:
    """The wait reason of a queued job, else its error or progress message; a running job on
    Slurm says what Slurm says first ("slurm 123 RUNNING on node1 · step 40")."""
    if job.wait_reason:
        return Text(job.wait_reason, "yellow")
    text = job.error or job.message or ""
    if job.status == "running" and job.slurm_id and not text.startswith("slurm "):
        text = f"slurm {job.slurm_id} {job.slurm_state or ''} · {text}"
    return Text(text)


def resources_line(job) -> str:
    """One line for the job detail, "GPUs: asks 2 GPUs (>= 8000 MB free each) · got GPU 0,1 ·
    <note>", or "" for a CPU job with nothing to say."""
    parts = []
    if job.gpus:
        mem = f" (>= {job.gpu_mem_mb} MB free each)" if job.gpu_mem_mb else ""
        parts.append(f"asks {job.gpus} GPU{'s' * (job.gpus != 1)}{mem}")
    if job.devices:
        parts.append("got GPU " + ",".join(str(d) for d in job.devices))
    elif job.devices is not None and job.gpus:
        parts.append("got the CPU")
    if job.resource_note:
        parts.append(job.resource_note)
    return "GPUs: " + " · ".join(parts) if parts else ""
