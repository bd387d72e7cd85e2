"""Create / edit an experiment: an adapter picker, then a form generated from the adapter's
config schema. Every field is checked by the adapter's own validation; a bad field is flagged
inline with the reason and nothing is saved until all are valid."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from adapters.base import ConfigError
from engine.experiments import ConflictError

from ..widgets.tick_box import TickBox
from .base import EngineModal

META = ("name", "tags", "gpus", "gpu_mem_mb", "extra")


class AdapterPicker(EngineModal):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="picker.cancel")]

    def __init__(self, adapters: list[str]) -> None:
        super().__init__()
        self.adapters = adapters

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label("New experiment: pick an adapter (enter)")
            yield OptionList(*[Option(self._line(a), id=a) for a in self.adapters])

    def _line(self, name: str) -> str:
        try:
            return f"{name}  — {self.engine.adapter_class(name).description}"
        except Exception as exc:  # a broken third-party adapter must not block the picker
            return f"{name}  (unavailable: {exc})"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class ExperimentForm(EngineModal):
    """Dismisses with the saved experiment's name, or None when cancelled."""

    BINDINGS = [Binding("ctrl+s", "save", "Save", id="form.save"),
                Binding("escape", "dismiss(None)", "Cancel", id="form.cancel")]

    def __init__(self, adapter: str, existing: Any = None) -> None:
        super().__init__()
        self.adapter = adapter
        self.existing = existing
        self.cls = self.engine.adapter_class(adapter)
        self.schema = self.cls.config_schema()

    def _initial(self) -> dict[str, Any]:
        return dict(self.existing.config) if self.existing else self.schema.defaults()

    def compose(self) -> ComposeResult:
        title = f"Edit {self.existing.name}" if self.existing else f"New {self.adapter} experiment"
        values = self._initial()
        with Vertical(classes="dialog form"):
            yield Label(f"{title}   ctrl+s save  esc cancel", classes="title")
            with VerticalScroll():
                yield from self._row("name", "name", Input(
                    self.existing.name if self.existing else "", compact=True, id="f-name"))
                yield from self._row("tags", "tags (space-separated)", Input(
                    " ".join(self.existing.tags) if self.existing else "", compact=True,
                    id="f-tags"))
                yield from self._row("gpus", "gpus per job (0 = CPU)", Input(
                    str(self.existing.gpus if self.existing else 0), compact=True,
                    id="f-gpus"), "how many GPUs each of its jobs gets; 0 runs on the CPU")
                mem = self.existing.gpu_mem_mb if self.existing else None
                yield from self._row("gpu_mem_mb", "GPU free memory (MB)", Input(
                    str(mem or ""), compact=True, id="f-gpu_mem_mb"),
                    "the free memory each of its GPUs must have; empty: any")
                for f in self.schema.fields:
                    value = values.get(f.name, f.default)
                    if f.type == "bool":
                        widget: Any = TickBox(value=bool(value), states=("false", "true"),
                                              compact=True, id=f"f-{f.name}")
                    elif f.choices:
                        widget = Select([(str(c), c) for c in f.choices], value=value,
                                        allow_blank=False, compact=True, id=f"f-{f.name}")
                    else:
                        widget = Input("" if value is None else str(value), compact=True,
                                       id=f"f-{f.name}")
                    yield from self._row(f.name, f"{f.name} ({f.type})", widget, f.help)
                known = set(self.schema.names())
                extra = " ".join(f"{k}={v}" for k, v in values.items() if k not in known)
                yield from self._row("extra", "extra key=value settings", Input(
                    extra, compact=True, id="f-extra"), "e.g. command placeholders: lr=0.01 steps=200")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", compact=True, id="save")
                yield Button("Cancel (esc)", compact=True, id="cancel")

    def on_mount(self) -> None:
        # typing starts at once: the name (the first editable field), never nowhere
        self.query_one("#f-name", Input).focus()

    def _row(self, name: str, label: str, widget: Any, help_text: str = "") -> ComposeResult:
        if help_text:
            widget.tooltip = help_text
        with Vertical(classes="field", id=f"row-{name}"):
            with Horizontal(classes="field-line"):
                yield Label(label, classes="field-label")
                yield widget
            yield Static("", classes="field-error", id=f"err-{name}")

    # ------------------------------------------------------------------ collect and check

    def _collect(self) -> tuple[dict[str, Any], dict[str, str]]:
        config: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for f in self.schema.fields:
            widget = self.query_one(f"#f-{f.name}")
            if isinstance(widget, TickBox):
                config[f.name] = widget.value
            elif isinstance(widget, Select):
                config[f.name] = widget.value
            else:
                text = widget.value  # type: ignore[attr-defined]
                if text.strip() == "" and f.type != "str":
                    config[f.name] = None
                    continue
                try:
                    config[f.name] = f.parse(text)
                except ValueError as exc:
                    errors[f.name] = str(exc)
        extra = self.query_one("#f-extra", Input).value.split()
        if extra:
            try:
                config.update(self.cls.parse_assignments(extra))
            except ConfigError as exc:
                errors["extra"] = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
        if not self.query_one("#f-name", Input).value.strip():
            errors["name"] = "must not be empty"
        return config, errors

    def _resources(self, errors: dict[str, str]) -> tuple[int, int]:
        """(gpus, gpu_mem_mb) from the form; a bad one goes into ``errors``. An empty memory
        field is 0: no minimum."""
        out = []
        for name in ("gpus", "gpu_mem_mb"):
            text = self.query_one(f"#f-{name}", Input).value.strip() or "0"
            try:
                out.append(int(text))
            except ValueError:
                errors[name] = f"must be a whole number, got {text!r}"
                out.append(0)
        return out[0], out[1]

    def _show_errors(self, errors: dict[str, str]) -> None:
        fields = set(self.schema.names()) | set(META)
        routed: dict[str, list[str]] = {}
        for key, reason in errors.items():
            target = key if key in fields else "extra"
            routed.setdefault(target, []).append(reason if target == key else f"{key}: {reason}")
        for row in self.query(".field"):
            name = (row.id or "")[4:]
            err = self.query_one(f"#err-{name}", Static)
            msg = "; ".join(routed.get(name, []))
            err.update(f"✗ {msg}" if msg else "")
            row.set_class(bool(msg), "invalid")
        if errors:
            first = next(iter(routed))
            self.query_one(f"#row-{first}").scroll_visible()

    def action_save(self) -> None:
        self._save()

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self._save()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, group="form", exit_on_error=False)
    async def _save(self) -> None:
        config, errors = self._collect()
        gpus, gpu_mem_mb = self._resources(errors)
        try:
            self.engine.validate_experiment(
                self.adapter, {k: v for k, v in config.items() if k not in errors})
        except ConfigError as exc:
            for key, reason in exc.errors.items():
                errors.setdefault(key, reason)
        self._show_errors(errors)
        if errors:
            self.notify(f"{len(errors)} field(s) need fixing", severity="warning")
            return
        name = self.query_one("#f-name", Input).value.strip()
        tags = self.query_one("#f-tags", Input).value.split()
        try:
            if self.existing:
                exp = await self.engine.update_experiment(
                    self.existing.id, name=name, config=config, tags=tags, gpus=gpus,
                    gpu_mem_mb=gpu_mem_mb)
            else:
                exp = await self.engine.create_experiment(
                    name, self.adapter, config, tags=tags, gpus=gpus, gpu_mem_mb=gpu_mem_mb)
        except ConflictError as exc:
            self._show_errors({"name": str(exc)})
            return
        except ConfigError as exc:
            self._show_errors(exc.errors)
            return
        self.dismiss(exp.name)
