"""`labdeck study ...` commands (hyperparameter studies); every one takes --json."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from engine.api import Engine

from .job_control import kick, wait_jobs
from .output import clean, emit_json, fmt_duration, fmt_num, say, table


def add_parsers(sub, add) -> None:
    study = add(sub, "study", "hyperparameter studies").add_subparsers(
        dest="sub", metavar="ACTION", required=True)
    p = add(study, "create", "define a study over an experiment's config")
    p.add_argument("name")
    p.add_argument("--from", dest="experiment", required=True, metavar="EXP",
                   help="experiment whose adapter and config are the base")
    p.add_argument("--param", action="append", default=[], metavar="SPEC",
                   help="NAME=MIN:MAX[:log] (range), NAME=a,b,c (choices), NAME=V (fixed)"
                        " or NAME (the adapter's default range); repeatable. Without any"
                        " --param every adapter default range is searched")
    p.add_argument("--n-trials", type=int)
    p.add_argument("--search-epochs", type=int, help="epochs per trial (adapter's epochs_key)")
    p.add_argument("--subset-ratio", type=float,
                   help="fraction of the training data per trial (adapter's subset_key)")
    p.add_argument("--pruner", choices=["none", "median", "hyperband"])
    p.add_argument("--pruner-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="pruner argument, e.g. n_startup_trials=2")
    p.add_argument("--direction", choices=["minimize", "maximize"])
    p.add_argument("--tuner", help="the study's search back end: optuna, random, or one an"
                                   " installed package declares (labdeck.tuners entry points)")
    p.add_argument("--engine", dest="tuner", help=argparse.SUPPRESS)  # deprecated: --tuner
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite under the home)")
    p.add_argument("--objective", help="metric to optimise (default: the experiment's)")
    p.add_argument("--timeout", type=float, metavar="S", help="stop starting trials after S s")
    p.add_argument("--workers", type=int, help="parallel worker processes")
    p.add_argument("--seed", type=int)
    p.set_defaults(func=study_create)
    p = add(study, "start", "run (or resume) a study as a job")
    p.add_argument("name")
    p.add_argument("--n-trials", type=int, help="raise the study's total number of trials")
    p.add_argument("--wait", action="store_true", help="wait for the end; exit 1 unless completed")
    p.set_defaults(func=study_start)
    p = add(study, "show", "state, settings, storage, trials, best trial and importance")
    p.add_argument("name")
    p.set_defaults(func=study_show)
    p = add(study, "list", "list studies")
    p.set_defaults(func=study_list)
    p = add(study, "cancel", "stop a study (finished trials are kept)")
    p.add_argument("name")
    p.set_defaults(func=study_cancel)
    p = add(study, "worker",
            "join a study from this process (any machine that reaches its storage)")
    p.add_argument("name")
    p.add_argument("--storage", help="join a study that this home does not know yet")
    p.set_defaults(func=study_worker)
    p = add(study, "promote", "new experiment from the study's best params")
    p.add_argument("name")
    p.add_argument("--as", dest="new_name", metavar="EXP", help="name of the new experiment")
    p.set_defaults(func=study_promote)
    p = add(study, "delete", "delete a study's labdeck records and trial runs")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true")
    p.set_defaults(func=study_delete)


def _kv(items: list[str]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--pruner-opt expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(text)
        except ValueError:
            out[key.strip()] = text
    return out


def study_json(study, trials=None) -> dict[str, Any]:
    d = study.to_json()
    # the keys' names before the tuner had its own (deprecated; scripts may still read them)
    d["engine"], d["engine_study"] = d["tuner"], d["tuner_study"]
    if trials is not None:
        d["trials"] = [t.to_json() for t in trials]
    return d


async def study_create(args) -> int:
    opts = {"n_trials": args.n_trials, "search_epochs": args.search_epochs,
            "subset_ratio": args.subset_ratio, "pruner": args.pruner,
            "direction": args.direction, "tuner": args.tuner, "storage": args.storage,
            "objective": args.objective, "timeout_s": args.timeout, "workers": args.workers,
            "seed": args.seed}
    opts = {k: v for k, v in opts.items() if v is not None}
    if args.pruner_opt:
        opts["pruner_options"] = _kv(args.pruner_opt)
    async with Engine.session(args.home) as engine:
        study = await engine.create_study(args.name, args.experiment, args.param or None, **opts)
    if args.json:
        emit_json(study_json(study))
    else:
        say(f"study {study.name} created ({study.tuner}, {study.n_trials} trials,"
            f" {study.settings['direction']} {study.settings['objective']})")
        _print_space(study)
        say(f"storage {study.storage}  study_name {study.tuner_study}")
    return 0


async def study_start(args) -> int:
    async with Engine.session(args.home) as engine:
        job_id = await engine.start_study(args.name, n_trials=args.n_trials)
        if not args.wait:
            await kick(engine)
            if args.json:
                emit_json({"study": args.name, "job_id": job_id, "status": "queued"})
            else:
                say(f"study {args.name} job {job_id} queued")
            return 0
        if not args.json:
            say(f"study {args.name} job {job_id} started; waiting", file=sys.stderr)
        (job,) = await wait_jobs(engine, [job_id], quiet=args.json)
        study = await engine.get_study(args.name, refresh=True)
    if args.json:
        emit_json({"study": args.name, "job_id": job_id, "job_status": job.status,
                   "error": job.error, **study_json(study)})
    else:
        say(f"study {args.name}: job {job.status}" + (f": {job.error}" if job.error else ""))
        _print_best(study)
    return 0 if job.status == "completed" else 1


async def study_show(args) -> int:
    async with Engine.session(args.home) as engine:
        study = await engine.get_study(args.name, refresh=True)
        trials = await engine.study_trials(args.name)
        if study.importance is None and study.counts.get("complete", 0) >= 2:
            study.importance = await engine.importance(args.name)
    if args.json:
        emit_json(study_json(study, trials))
        return 0
    s = study.settings
    say(f"study {study.name}  {study.status}  tuner {study.tuner}  adapter {study.adapter}"
        f"  from {study.experiment}")
    say(f"storage {study.storage}  study_name {study.tuner_study}")
    say(f"{s['direction']} {s['objective']}  n_trials {s['n_trials']}  search_epochs"
        f" {fmt_num(s['search_epochs'])}  subset_ratio {fmt_num(s['subset_ratio'])}  pruner"
        f" {s['pruner']}  workers {s['workers']}  timeout {fmt_num(s['timeout_s'])}")
    c = study.counts
    say(f"trials: {c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed,"
        f" {c['cancelled']} cancelled,"
        f" {c['running']} running, {c['left']} left")
    _print_space(study)
    if trials:
        names = [k for k, p in study.space.items() if p["kind"] != "fixed"]
        rows = [[str(t.number), t.state, fmt_num(t.value),
                 *[fmt_num(t.params.get(n)) for n in names], fmt_duration(t.duration),
                 str(t.run_id or "-"), (t.error or "")[:40]] for t in trials]
        say(table(["#", "state", "value", *names, "time", "run", "note"], rows))
    _print_best(study)
    if study.importance:
        say("importance: " + "  ".join(f"{clean(k)} {v:.2f}" for k, v in study.importance.items()))
    return 0


def _print_space(study) -> None:
    from engine.studies.space import ParamSpec

    for name, p in study.space.items():
        say(f"  {clean(name)}: {clean(ParamSpec.from_json(p).describe())}")


def _print_best(study) -> None:
    if study.best_trial is not None:
        say(f"best: trial {study.best_trial} {study.settings['objective']}="
            f"{fmt_num(study.best_value)} params {study.best_params}")


async def study_list(args) -> int:
    async with Engine.session(args.home) as engine:
        studies = await engine.list_studies()
    if args.json:
        emit_json([study_json(s) for s in studies])
    else:
        say(table(["name", "status", "tuner", "adapter", "trials", "best", "objective"],
                  [[s.name, s.status, s.tuner, s.adapter,
                    f"{s.n_trials - s.counts['left'] - s.counts['running']}/{s.n_trials}",
                    fmt_num(s.best_value), s.settings["objective"]] for s in studies]))
    return 0


async def study_cancel(args) -> int:
    from engine.jobs import FINAL

    async with Engine.session(args.home) as engine:
        study = await engine.cancel_study(args.name)
        if study.job_id:
            job = await engine.get_job(study.job_id)
            if job.status not in FINAL:
                await engine.ensure_scheduler()  # applies SIGTERM / grace / SIGKILL
                await engine.wait_job(study.job_id, timeout=120)
        study = await engine.get_study(args.name, refresh=True)
    if args.json:
        emit_json(study_json(study))
    else:
        say(f"study {study.name}: {study.status}")
    return 0


async def study_worker(args) -> int:
    from engine.settings import load_settings
    from engine.studies.worker_process import run_worker

    settings = load_settings(args.home)
    if args.storage:
        async with Engine.session(args.home) as engine:
            await engine.join_study(args.name, args.storage)
    index = os.getpid()  # seeded samplers: each worker draws its own numbers
    # in the main thread, so SIGTERM / Ctrl-C stop the running trial cleanly; with --json the
    # trials' log lines go to stderr and stdout holds only the result
    import contextlib

    redirect = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with redirect:
        out = run_worker(settings, args.name, index)
    if args.json:
        emit_json(out)
    else:
        say(f"study {args.name}: ran trials {out['trials_run']}; study {out['status']}")
    return 0


async def study_promote(args) -> int:
    async with Engine.session(args.home) as engine:
        exp = await engine.promote_best(args.name, args.new_name)
    if args.json:
        emit_json(exp.to_json())
    else:
        say(f"experiment {exp.name} created ({exp.origin})")
        for k, v in sorted(exp.config.items()):
            say(f"  {clean(k)} = {v!r}")
    return 0


async def study_delete(args) -> int:
    if not args.yes and not args.json:
        if not sys.stdin.isatty() or input(f"delete study {args.name}? [y/N] ").lower() != "y":
            say("not deleted")
            return 1
    async with Engine.session(args.home) as engine:
        await engine.delete_study(args.name)
    if args.json:
        emit_json({"deleted": args.name})
    else:
        say(f"study {args.name} deleted")
    return 0
