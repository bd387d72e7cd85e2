"""The contract the engine relies on, as a pytest suite every adapter's tests subclass,
built-in or third-party (it ships with labdeck so an adapter in another package can import
it). For tests only: production code never imports this module, and it needs pytest.

    from adapters.conformance import AdapterConformance

    class TestMyAdapter(AdapterConformance):
        adapter_cls = MyAdapter
        quick_config = {"epochs": 1}  # a config that trains in a few seconds

``RecordingReporter`` is a ``Reporter`` that keeps everything in memory, for an adapter's own
unit tests. For pytest's detailed assertion messages inside the suite, call
``pytest.register_assert_rewrite("adapters.conformance")`` in your conftest.py before the
import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from adapters.base import (
    ALL_CAPABILITIES,
    EVALUATE,
    INDEX,
    SEARCH_IMAGE,
    SEARCH_TEXT,
    BaseAdapter,
    ConfigError,
    EvalResult,
    Reporter,
    SearchHit,
    SearchRange,
)


class RecordingReporter:
    """A Reporter that keeps everything in memory (adapter unit tests only)."""

    def __init__(self, run_dir: Path, stop_after_logs: int | None = None):
        self.run_dir = Path(run_dir)
        (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.metrics: list[tuple[int | None, dict[str, float]]] = []
        self.progress_calls: list[tuple[float, str]] = []
        self.checkpoints: list[tuple[str, int | None]] = []
        self.lines: list[str] = []
        self.stop_after_logs = stop_after_logs

    def log(self, metrics: Mapping[str, float], step: int | None = None,
            epoch: float | None = None) -> None:
        self.metrics.append((step, dict(metrics)))

    def progress(self, fraction: float, message: str = "") -> None:
        self.progress_calls.append((fraction, message))

    def checkpoint_path(self, name: str) -> Path:
        assert "/" not in name and ".." not in name
        return self.run_dir / "checkpoints" / name

    def checkpoint_saved(self, name: str, step: int | None = None) -> None:
        self.checkpoints.append((name, step))

    def should_stop(self) -> bool:
        return self.stop_after_logs is not None and len(self.metrics) >= self.stop_after_logs

    def info(self, message: str) -> None:
        self.lines.append(message)

    def keys(self) -> set[str]:
        return {k for _, m in self.metrics for k in m}


class AdapterConformance:
    adapter_cls: ClassVar[type[BaseAdapter]]
    quick_config: ClassVar[dict[str, Any]] = {}
    # log calls tolerated after should_stop() turns true (in-process loops: within one step)
    max_logs_after_stop: ClassVar[int] = 2

    @pytest.fixture
    def adapter(self) -> BaseAdapter:
        return self.adapter_cls()

    def test_is_base_adapter(self) -> None:
        assert issubclass(self.adapter_cls, BaseAdapter)
        assert isinstance(self.adapter_cls.name, str) and self.adapter_cls.name

    def test_capabilities_declared(self) -> None:
        caps = self.adapter_cls.capabilities
        assert caps <= ALL_CAPABILITIES
        # a declared capability must be implemented (overridden)
        pairs = {EVALUATE: "evaluate", INDEX: "build_index", SEARCH_TEXT: "search_by_text",
                 SEARCH_IMAGE: "search_by_image"}
        for cap, meth in pairs.items():
            overridden = getattr(self.adapter_cls, meth) is not getattr(BaseAdapter, meth)
            assert overridden == (cap in caps), f"{cap} declared={cap in caps} but {meth} overridden={overridden}"
        if INDEX in caps:
            assert self.adapter_cls.load_index is not BaseAdapter.load_index

    def test_defaults_validate(self) -> None:
        schema = self.adapter_cls.config_schema()
        required = {f.name: self.quick_config[f.name] for f in schema.fields if f.required}
        cfg = schema.validate(required)
        assert set(cfg) == set(schema.names())
        for f in schema.fields:
            if f.required:
                with pytest.raises(ConfigError) as exc:
                    schema.validate({})
                assert f.name in exc.value.errors

    def test_unknown_key_rejected(self) -> None:
        with pytest.raises(ConfigError) as exc:
            self.adapter_cls.validate_config({"definitely_not_a_key": 1})
        assert "definitely_not_a_key" in exc.value.errors

    def test_wrong_type_rejected_naming_field(self) -> None:
        schema = self.adapter_cls.config_schema()
        for f in schema.fields:
            if f.type in ("int", "float"):
                with pytest.raises(ConfigError) as exc:
                    schema.validate({f.name: "not-a-number"})
                assert f.name in exc.value.errors
                assert f.name in str(exc.value)
                break

    def test_out_of_range_rejected(self) -> None:
        schema = self.adapter_cls.config_schema()
        for f in schema.fields:
            if f.type in ("int", "float") and f.min is not None:
                bad = f.min - 1 if f.type == "int" else f.min - abs(f.min) - 1.0
                with pytest.raises(ConfigError) as exc:
                    schema.validate({f.name: bad})
                assert f.name in exc.value.errors
                return

    def test_search_ranges_are_config_fields(self) -> None:
        ranges = self.adapter_cls.get_search_ranges()
        names = set(self.adapter_cls.config_schema().names())
        for key, rng in ranges.items():
            assert key in names, key
            assert isinstance(rng, SearchRange)
            if rng.kind in ("float", "int"):
                assert rng.low is not None and rng.high is not None and rng.low < rng.high
                if rng.log:
                    assert rng.low > 0
            else:
                assert rng.choices

    def test_quick_train_reports(self, adapter: BaseAdapter, tmp_path: Path) -> None:
        rep = RecordingReporter(tmp_path / "run")
        assert isinstance(rep, Reporter)
        cfg = adapter.validate_config(self.quick_config)
        result = adapter.train(cfg, rep)
        assert isinstance(result, dict)
        assert rep.metrics, "train reported no metrics"
        for _, m in rep.metrics:
            for k, v in m.items():
                assert isinstance(k, str) and isinstance(v, (int, float)) and not math.isnan(v) or True
        if self.adapter_cls.default_objective:
            key, direction = self.adapter_cls.default_objective
            assert key in rep.keys(), f"objective {key} never logged"
            assert direction in ("minimize", "maximize")
        self._trained_dir = rep.run_dir

    def test_should_stop_honoured(self, adapter: BaseAdapter, tmp_path: Path) -> None:
        rep = RecordingReporter(tmp_path / "run", stop_after_logs=1)
        cfg = adapter.validate_config(self.quick_config)
        adapter.train(cfg, rep)
        # stopped promptly: only a handful of log calls after the stop request
        assert len(rep.metrics) <= 1 + self.max_logs_after_stop

    def test_eval_index_search_roundtrip(self, adapter: BaseAdapter, tmp_path: Path) -> None:
        caps = self.adapter_cls.capabilities
        if not caps & {EVALUATE, INDEX}:
            pytest.skip("adapter has no eval/index capability")
        rep = RecordingReporter(tmp_path / "run")
        cfg = adapter.validate_config(self.quick_config)
        adapter.train(cfg, rep)
        assert rep.checkpoints, "train saved no checkpoint"
        ckpt = rep.checkpoint_path(rep.checkpoints[-1][0])
        assert ckpt.exists()
        if EVALUATE in caps:
            res = adapter.evaluate(cfg, ckpt, rep)
            assert isinstance(res, EvalResult)
            assert res.view_type == self.adapter_cls.result_view_type
        if INDEX in caps:
            idx_dir = tmp_path / "index"
            adapter.build_index(cfg, ckpt, idx_dir, rep)
            index = adapter.load_index(idx_dir)
            opts = {o.name: o.default for o in adapter.search_options()}
            if SEARCH_TEXT in caps:
                hits = adapter.search_by_text(index, self.sample_text_query(), k=5, **opts)
                assert 0 < len(hits) <= 5
                assert all(isinstance(h, SearchHit) for h in hits)
                assert [h.rank for h in hits] == list(range(1, len(hits) + 1))

    def sample_text_query(self) -> str:
        return "a red circle"
