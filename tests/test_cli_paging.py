"""Long lists (issue 14): `exp list`, `run list` and `jobs list` page with --limit/--offset
and stream --json/--jsonl, on a real SQLite home of 2,000 runs seeded through the data layer,
through real CLI processes; the engine's keyset iterators underneath, page by page."""

import asyncio
import json
import math
import re
import subprocess
import sys
import time

import pytest
from helpers import labdeck_env

from engine.api import Engine
from engine.data import experiments, jobs, runs
from engine.schema import connect_sync, write_tx

ALPHA, BETA, EXTRA = 1500, 500, 12  # runs of alpha (tracking), of beta (queued jobs); spare exps
CANCELLED = range(0, BETA, 5)  # every 5th beta job (100)
EVALS = 40  # eval jobs on alpha runs


def seed(home) -> None:
    """2,000 runs: 1,500 finished tracking runs of "alpha" (in batches of 500, one transaction
    each), 500 queued training runs of "beta" (a run and its job each) of which 100 are
    cancelled, 40 eval jobs; 12 more experiments with no runs, several changed at one
    instant (ties in the list order)."""
    asyncio.run(_create(home))
    conn = connect_sync(home / "labdeck.db")
    try:
        alpha = experiments.get_or_create(conn, "alpha")
        for start in range(0, ALPHA, 500):
            with write_tx(conn):
                for i in range(start, start + 500):
                    run_id, _ = runs.insert_run(conn, alpha, {"i": i}, "running", "tracking")
                    runs.finish_run(conn, run_id, "completed", tx=False)
        beta = experiments.get_or_create(conn, "beta")
        job_ids = [jobs.queue_training(conn, beta, "beta", {"i": i}, {})[1] for i in range(BETA)]
        for i in CANCELLED:
            job = jobs.get_job(conn, job_ids[i])
            assert job is not None
            jobs.request_cancel(conn, job)
        for run_id in range(1, EVALS + 1):
            jobs.submit(conn, "eval", run_id, {"checkpoint": "last.pt"}, f"alpha › run {run_id}")
        extra = [experiments.get_or_create(conn, f"extra-{n:02d}") for n in range(EXTRA)]
        t = time.time() - 3600
        with write_tx(conn):
            for n, exp_id in enumerate(extra):
                experiments.touch(conn, exp_id, t + n // 4)  # groups of 4 share a time
    finally:
        conn.close()


async def _create(home) -> None:
    async with Engine.session(home):
        pass


@pytest.fixture(scope="module")
def big_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("paging") / "home"
    seed(home)
    return home


def cli(home, *args, code=0):
    res = subprocess.run([sys.executable, "-m", "cli", *args], env=labdeck_env(home),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == code, (args, res.stdout[-2000:], res.stderr)
    return res.stdout


def as_json(home, *args):
    return json.loads(cli(home, *args, "--json"))


def test_run_pages_are_disjoint_and_cover_every_run_in_order(big_home):
    everything = as_json(big_home, "run", "list")
    ids = [r["id"] for r in everything]
    assert len(ids) == ALPHA + BETA and ids == sorted(ids, reverse=True)
    pages = [as_json(big_home, "run", "list", "--limit", "300", "--offset", str(offset))
             for offset in range(0, ALPHA + BETA, 300)]
    assert [len(p) for p in pages] == [300] * 6 + [200]
    seen = [r["id"] for page in pages for r in page]
    assert len(set(seen)) == len(seen)  # disjoint
    assert seen == ids  # and together: every run, in order
    # --json is the pages' concatenation, whole rows and all
    assert [r for page in pages for r in page] == everything


def test_json_keeps_its_shape_and_jsonl_has_the_same_rows(big_home):
    text = cli(big_home, "run", "list", "--json")
    rows = json.loads(text)
    assert text == json.dumps(rows, indent=2) + "\n"  # byte for byte what one dump writes
    assert set(rows[0]) >= {"id", "experiment", "number", "status", "config", "stalled_s"}
    lines = cli(big_home, "run", "list", "--jsonl").splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert cli(big_home, "run", "list", "--json", "--offset", "5000") == "[]\n"
    exps = as_json(big_home, "exp", "list")
    assert len(exps) == 2 + EXTRA and {"alpha", "beta"} <= {e["name"] for e in exps}
    assert next(e for e in exps if e["name"] == "alpha")["runs"] == ALPHA


def test_text_says_how_many_were_shown_and_how_to_see_more(big_home):
    lines = cli(big_home, "run", "list", "--limit", "50").splitlines()
    assert lines[0].split() == ["id", "run", "status", "steps", "duration"]
    assert len(lines) == 2 + 50 + 1
    assert lines[2].startswith(str(ALPHA + BETA)) and lines[-2].startswith(str(ALPHA + BETA - 49))
    assert lines[-1] == "showing 50 of 2,000 runs: --offset 50 for more"
    lines = cli(big_home, "run", "list", "--limit", "50", "--offset", "1990").splitlines()
    assert len(lines) == 2 + 10 + 1 and lines[-2].split()[0] == "1"
    assert lines[-1] == "showing 10 of 2,000 runs (1,991-2,000)"
    lines = cli(big_home, "run", "list").splitlines()
    assert len(lines) == 2 + 2000 + 1 and lines[-1] == "2,000 runs"
    # the columns fit the header and the first rows (held back); a longer cell later
    # (alpha's labels after beta's) widens its column from there on: one step, no jitter
    status_at = [re.match(r"\d+ +\w+ › run \d+ +", line).end() for line in lines[2:-1]]
    assert status_at[0] == lines[0].index("status")
    assert sorted(status_at) == status_at and len(set(status_at)) == 2
    lines = cli(big_home, "exp", "list", "--limit", "3", "--offset", "3").splitlines()
    assert lines[-1] == f"showing 3 of {2 + EXTRA} experiments (4-6): --offset 6 for more"
    assert cli(big_home, "jobs", "list", "--offset", "9999").splitlines()[-1] == (
        f"showing 0 of {BETA + EVALS:,} jobs (--offset 9,999 is past the last)")


def test_filters_keep_working_with_paging(big_home):
    beta = as_json(big_home, "run", "list", "--experiment", "beta")
    assert [r["number"] for r in beta] == list(range(BETA, 0, -1))
    page = as_json(big_home, "run", "list", "--experiment", "beta", "--limit", "100",
                   "--offset", "450")
    assert page == beta[450:]
    last = cli(big_home, "run", "list", "--experiment", "beta", "--limit", "100").splitlines()[-1]
    assert last == "showing 100 of 500 runs: --offset 100 for more"
    cancelled = as_json(big_home, "jobs", "list", "--status", "cancelled")
    assert len(cancelled) == len(CANCELLED)
    assert {j["status"] for j in cancelled} == {"cancelled"}
    page = as_json(big_home, "jobs", "list", "--status", "cancelled", "--limit", "30",
                   "--offset", "90")
    assert page == cancelled[90:]
    evals = as_json(big_home, "jobs", "list", "--type", "eval", "--status", "queued",
                    "--limit", "15", "--offset", "10")
    assert [j["run_id"] for j in evals] == list(range(EVALS - 10, EVALS - 25, -1))
    last = cli(big_home, "jobs", "list", "--type", "train", "--limit", "7").splitlines()[-1]
    assert last == f"showing 7 of {BETA} jobs: --offset 7 for more"
    # no more silent cap of 500: every job comes out
    assert len(as_json(big_home, "jobs", "list")) == BETA + EVALS


def test_paging_options_are_checked(big_home):
    for bad in (["--limit", "0"], ["--limit", "x"], ["--offset", "-1"]):
        cli(big_home, "run", "list", *bad, code=2)


async def test_keyset_pages_match_the_whole_list(big_home):
    async with Engine.session(big_home) as engine:
        whole = await engine.list_runs()
        for size in (7, 500, 2000):
            assert [r.id async for r in engine.iter_runs(page_size=size)] == [r.id for r in whole]
        window = [r.id async for r in engine.iter_runs(offset=123, limit=456, page_size=50)]
        assert window == [r.id for r in whole[123:123 + 456]]
        beta = await engine.list_runs("beta")
        assert [r.id async for r in engine.iter_runs("beta", offset=3, page_size=9)] == [
            r.id for r in beta[3:]]
        assert await engine.count_runs() == ALPHA + BETA and await engine.count_runs("beta") == BETA
        # experiments: the latest changed first, ties (same instant) newest first, across pages
        exps = sorted(await engine.list_experiments(), key=lambda e: (e.updated, e.id),
                      reverse=True)
        for size in (1, 3, 4, 100):
            assert [e.id async for e in engine.iter_experiments(page_size=size)] == [
                e.id for e in exps]
        assert [e.id async for e in engine.iter_experiments(offset=5, limit=6, page_size=4)] == [
            e.id for e in exps[5:11]]
        every_job = await engine.list_jobs(limit=10**6)
        assert [j.id async for j in engine.iter_jobs(page_size=64)] == [j.id for j in every_job]
        queued = await engine.list_jobs(status="queued", type="train", limit=10**6)
        assert [j.id async for j in engine.iter_jobs("queued", "train", offset=17, page_size=33)
                ] == [j.id for j in queued[17:]]
        assert await engine.count_jobs("cancelled") == len(CANCELLED)


async def test_runs_added_while_listing_neither_repeat_nor_shift_it(home):
    async with Engine.session(home) as engine:
        exp = await engine.create_experiment("meanwhile", "script", {"command": "true"})
        for _ in range(300):
            await engine.start_run(exp.name)
        before = [r.id for r in await engine.list_runs()]
        listed = []
        async for run in engine.iter_runs(page_size=100):
            listed.append(run.id)
            if len(listed) == 150:  # mid-page: new runs land above the cursor
                for _ in range(20):
                    await engine.start_run(exp.name)
        assert listed == before  # an offset-paged read would repeat 20 runs here


def test_streamed_output_is_what_the_whole_list_prints(capsys):
    from cli.output import JsonStream, TableStream, emit_json, table

    items = [{"a": math.nan, "b": [1, math.inf, {"c": -math.inf}], "d": "x\ny"},
             {"e": 1.5, "f": None, "g": {}, "h": []}]
    emit_json(items)
    whole = capsys.readouterr().out
    out = JsonStream()
    for item in items:
        out.write(item)
    out.close()
    assert capsys.readouterr().out == whole
    JsonStream().close()
    assert capsys.readouterr().out == "[]\n"
    rows = [["1", "alpha \x1b[2J", 0.5], ["22", "b", None]]
    shown = TableStream(["id", "name", "value"])
    for row in rows:
        shown.add(row)
    shown.close()
    assert capsys.readouterr().out == table(["id", "name", "value"], rows) + "\n"
