"""The GPUs area and the GPU bits of other screens, on the fake NVML (tests/fake_nvml): two
devices, one held by a labdeck job, one filled by a foreign process, a job waiting for two;
and a machine without NVML. Snapshots at 80x24 and 120x40, and Pilot tests: enter on a held
GPU opens its job, utilisation moves with no database write, the header counts busy GPUs,
run detail keeps system metrics apart, the experiment form sets a job's GPUs. Update the
snapshots with ``pytest tests/tui/test_gpus.py --snapshot-update``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, SelectionList

from engine.api import Engine
from engine.metric_writer import MetricWriter
from engine.records import HOST
from engine.schema import connect_sync, write_tx
from tui.app import LabdeckApp
from tui.screens.experiment_form import ExperimentForm
from tui.screens.job_detail import JobDetailScreen
from tui.screens.resources import ResourcesScreen
from tui.screens.run_detail import RunDetailScreen
from tui.widgets.header import LabdeckHeader

from .conftest import settle, wait_for
from .seed import FROZEN_NOW

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
FOREIGN_PID = 3_999_999  # above any pid this machine hands out: nobody's process here
HELD_JOB, WAITING_JOB = 3, 5  # the seeded running train job; the baseline run queued below


def devices(util0: int = 63) -> list[dict]:
    return [
        {"uuid": "GPU-0", "name": "Fake A100-SXM4-40GB", "total_mb": 40960, "used_mb": 12288,
         "util": util0, "temp": 64, "power_w": 231},
        {"uuid": "GPU-1", "name": "Fake A100-SXM4-40GB", "total_mb": 40960, "used_mb": 33792,
         "util": 91, "temp": 71, "power_w": 305,
         "processes": [{"pid": FOREIGN_PID, "used_mb": 33500}]},
    ]


async def _queue_baseline(home: Path) -> None:
    async with Engine.session(home) as engine:
        await engine.start_run("baseline", gpus=2)


@pytest.fixture
def gpu_home(seeded: Path, gpu_machine) -> Path:
    """The seeded home on a two-GPU machine: its running train job holds GPU 0 (as the
    scheduler records an assignment), and a baseline run asking for two GPUs waits."""
    gpu_machine(devices())
    asyncio.run(_queue_baseline(seeded))
    conn = connect_sync(seeded / "labdeck.db")
    with write_tx(conn):
        conn.execute("UPDATE jobs SET host=?, gpus=1, devices='[0]', devices_at=? WHERE id=?",
                     (HOST, FROZEN_NOW - 120, HELD_JOB))
        conn.execute("UPDATE jobs SET created=?, resource_note=? WHERE id=?",
                     (FROZEN_NOW - 60, "waiting for 2 free GPUs; 0 free", WAITING_JOB))
    conn.close()
    return seeded


async def _open_gpus(pilot) -> ResourcesScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.ready and getattr(app.screen, "loaded", False))
    await pilot.press("G")
    await wait_for(pilot, lambda: isinstance(app.screen, ResourcesScreen) and app.screen.loaded,
                   what="the GPUs area")
    await settle(pilot)
    return app.screen  # type: ignore[return-value]


def _card_text(screen: ResourcesScreen, index: int) -> str:
    option = screen.query_one("#gpus", OptionList).get_option_at_index(index)
    return "\n".join(line.plain for line in option.prompt.lines(100))


# ---------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", SIZES)
def test_gpus_area_snapshot(size, gpu_home, snap_compare):
    assert snap_compare(LabdeckApp(home=gpu_home, poll_s=60), terminal_size=size,
                        run_before=_open_gpus)


def test_no_gpu_snapshot(seeded, snap_compare):
    asyncio.run(_queue_baseline(seeded))  # the queue still shows on a CPU-only machine
    assert snap_compare(LabdeckApp(home=seeded, poll_s=60), terminal_size=(80, 24),
                        run_before=_open_gpus)


def test_jobs_with_gpus_snapshot(gpu_home, snap_compare):
    async def jobs(pilot):
        await wait_for(pilot, lambda: pilot.app.ready and pilot.app.screen.loaded)
        await pilot.press("J")
        await wait_for(pilot, lambda: pilot.app.current_mode == "jobs"
                       and pilot.app.screen.loaded)
        await settle(pilot)

    assert snap_compare(LabdeckApp(home=gpu_home, poll_s=60), terminal_size=(120, 40),
                        run_before=jobs)


def test_waiting_job_detail_snapshot(gpu_home, snap_compare):
    async def detail(pilot):
        await wait_for(pilot, lambda: pilot.app.ready and pilot.app.screen.loaded)
        pilot.app.push_screen(JobDetailScreen(WAITING_JOB))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, JobDetailScreen)
                       and pilot.app.screen.loaded)
        await settle(pilot)

    assert snap_compare(LabdeckApp(home=gpu_home, poll_s=60), terminal_size=(80, 24),
                        run_before=detail)


# ---------------------------------------------------------------------- Pilot


async def test_cards_header_and_enter_opens_the_holding_job(gpu_home):
    app = LabdeckApp(home=gpu_home, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_gpus(pilot)
        assert "GPUs 1/2 busy" in screen.query_one(LabdeckHeader).render().plain
        held, foreign = _card_text(screen, 0), _card_text(screen, 1)
        assert "job 3" in held and "⚠" not in held and "train  lr-sweep-1e-1 › run 1" in held and "63%" in held
        assert f"pid {FOREIGN_PID}" in foreign and "other processes use 82%" in foreign
        assert [w.job_id for w in screen.resources.waiting] == [WAITING_JOB]

        await pilot.press("down", "enter")  # GPU 1: no labdeck job to open
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("up", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen)
                       and app.screen.loaded, what="job detail of the holder")
        assert app.screen.job_id == HELD_JOB
        assert "got GPU 0" in str(app.screen.query_one("#job-resources").render())


async def test_utilisation_refreshes_without_a_database_write(gpu_home, gpu_machine):
    app = LabdeckApp(home=gpu_home, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_gpus(pilot)
        assert " 63%" in _card_text(screen, 0)
        gpu_machine(devices(util0=7))
        await wait_for(pilot, lambda: "  7%" in _card_text(screen, 0), timeout=15,
                       what="the card to show the new utilisation")


async def test_no_gpu_says_why_and_header_stays_quiet(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_gpus(pilot)
        assert str(screen.query_one("#no-gpu").render()) == (
            "no GPU (NVML library not found): jobs run on the CPU")
        assert not screen.query_one("#gpus").display
        assert "GPU" not in screen.query_one(LabdeckHeader).render().plain.replace("[G]PUs", "")


async def test_run_detail_lists_system_metrics_last_and_unticked(seeded):
    conn = connect_sync(seeded / "labdeck.db")
    writer = MetricWriter(conn, 1)
    for step in range(5):
        writer.log({"sys/cpu_pct": 80.0 + step, "sys/gpu0/util_pct": 50.0}, step=step)
    writer.close()
    conn.close()
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        app.push_screen(RunDetailScreen(1))
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen)
                       and app.screen.loaded)
        metrics = app.screen.query_one("#metrics", SelectionList)
        values = [metrics.get_option_at_index(i).value for i in range(metrics.option_count)]
        assert values[-2:] == ["sys/cpu_pct", "sys/gpu0/util_pct"]
        assert not any(v.startswith("sys/") for v in metrics.selected)
        assert app.screen.chosen == ["val/loss"]
        metrics.select("sys/cpu_pct")  # a system metric charts like any other, after the own
        await wait_for(pilot, lambda: app.screen.chosen == ["val/loss", "sys/cpu_pct"])


async def test_experiment_form_sets_gpus_and_flags_a_bad_count(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        exp = await app.engine.get_experiment("baseline")
        saved: list[str | None] = []
        app.push_screen(ExperimentForm("script", exp), saved.append)
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentForm)
                       and app.screen.query("#f-gpus"))
        form = app.screen
        form.query_one("#f-gpus", Input).value = "two"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: form.query_one("#row-gpus").has_class("invalid"))
        form.query_one("#f-gpus", Input).value = "2"
        form.query_one("#f-gpu_mem_mb", Input).value = "8000"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: saved == ["baseline"], what="the form to save")
        exp = await app.engine.get_experiment("baseline")
        assert (exp.gpus, exp.gpu_mem_mb) == (2, 8000)
