"""A real study on the reference adapter (vlm_quantization): each trial trains in the study
worker for search_epochs on a subset, the objective (val/map_64) reaches Optuna per epoch."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.api import Engine

pytest.importorskip("torch")

TINY = {"dataset": "synthetic", "n_train": 256, "n_query": 16, "n_database": 64, "image_size": 16, "epochs": 5,
        "batch_size": 32, "width": 8, "log_every": 2, "num_threads": 1}


@pytest.mark.slow
async def test_vlm_quantization_study(home: Path) -> None:
    import optuna

    async with Engine.session(home) as engine:
        await engine.create_experiment("vlm", "vlm_quantization", TINY)
        study = await engine.create_study(
            "vlm-tpe", "vlm", ["lr", "temperature", "hash_dim=64"], n_trials=4,
            search_epochs=2, subset_ratio=0.5, pruner="median", seed=0,
            pruner_options={"n_startup_trials": 2})
        assert study.settings["objective"] == "val/map_64"
        assert study.settings["direction"] == "maximize"
        job_id = await engine.start_study("vlm-tpe")
        await engine.ensure_scheduler()
        job = await engine.wait_job(job_id, timeout=600)
        assert job.status == "completed", job.error
        study = await engine.get_study("vlm-tpe", refresh=True)
        trials = await engine.study_trials("vlm-tpe")
        assert study.status == "completed" and len(trials) == 4
        assert {t.state for t in trials} <= {"complete", "pruned"}
        complete = [t for t in trials if t.state == "complete"]
        assert study.best_value == max(t.value for t in complete)
        for t in complete:
            run = await engine.get_run(t.run_id)
            # the study's budget overrides the experiment's epochs and subset
            assert run.config["epochs"] == 2 and run.config["subset_ratio"] == 0.5
            assert run.config["hash_dim"] == 64 and run.config["lr"] == t.params["lr"]
            assert len(t.intermediate) == 2  # one objective report per epoch
        ostudy = optuna.load_study(study_name="vlm-tpe", storage=study.storage)
        assert ostudy.best_value == pytest.approx(study.best_value)
        exp = await engine.promote_best("vlm-tpe")
        assert exp.config["epochs"] == 5 and exp.config["lr"] == study.best_params["lr"]
