"""Create a study: pick the base experiment, then a parameter table (fixed or searched per
parameter, pre-filled from the adapter's default ranges and the experiment's config) and the
study settings. The settings come first: an adapter may list twenty parameters, and the
settings must not sit sixty Tabs away. The space is checked by the engine's own validation as
you type; a bad parameter or setting is flagged inline with the reason and nothing is created
until valid."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from adapters.base import ConfigError, Field
from engine.experiments import ConflictError
from engine.studies.space import ParamSpec, SpaceError, default_space, validate_space
from engine.studies.spec import DIRECTIONS, PRUNERS

from ..widgets.study_param_row import ParamRow
from .base import EngineModal

# (key passed to create_study, label, config type); an empty box parses to "not set"
SETTINGS = (("n_trials", "trials", "int"), ("tuner", "tuner", "str"),
            ("search_epochs", "epochs/trial", "int"), ("subset_ratio", "subset ratio", "float"),
            ("pruner", "pruner", "str"), ("direction", "direction", "str"),
            ("objective", "objective", "str"), ("timeout_s", "timeout (s)", "float"),
            ("workers", "workers", "int"))
CHOICES = {"pruner": PRUNERS, "direction": DIRECTIONS}
SPACE_HINT = "no parameter is searched: tick search on at least one parameter"


class ExperimentPicker(EngineModal):
    """Dismisses with the chosen experiment's name (a study's base), or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="study-picker.cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label("New study: pick the base experiment (enter)")
            yield OptionList(id="study-experiments")

    def on_mount(self) -> None:
        self._load()

    @work(exclusive=True, group="study-picker", exit_on_error=False)
    async def _load(self) -> None:
        exps = [e for e in await self.engine.list_experiments()
                if "study-trials" not in e.tags]
        ol = self.query_one(OptionList)
        ol.add_options([Option(f"{e.name}  ({e.adapter})", id=e.name) for e in exps])
        if not exps:
            ol.add_option(Option("no experiments yet: create one in Experiments (E, n)",
                                 disabled=True))
        else:
            ol.highlighted = 0
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


def listed_params(cls: Any, config: dict[str, Any]) -> list[str]:
    """The adapter's searchable defaults, then every scalar value of the config that a study
    could search (numbers, booleans, fields with choices)."""
    ranges = list(cls.get_search_ranges())
    try:
        schema = cls.config_schema()
        fields = {f.name: f for f in schema.fields}
    except Exception:  # noqa: BLE001 - a broken schema lists only the config
        fields = {}
    out = list(ranges)
    for k, v in config.items():
        if k in out:
            continue
        f = fields.get(k)
        if isinstance(v, (int, float)) or (f is not None and f.choices):
            out.append(k)
    return out


class StudyForm(EngineModal):
    """Dismisses with the created study's name, or None when cancelled."""

    CSS_PATH = "studies.tcss"
    BINDINGS = [Binding("ctrl+s", "save", "Create", id="study-form.save"),
                Binding("escape", "dismiss(None)", "Cancel", id="study-form.cancel")]

    def __init__(self, experiment: str) -> None:
        super().__init__()
        self.experiment = experiment
        self.exp: Any = None
        self.cls: Any = None
        self.rows: list[ParamRow] = []
        self.ready = False
        self.touched = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form", id="study-form"):
            yield Label(f"New study from {self.experiment}   ctrl+s create  esc cancel",
                        classes="title")
            with VerticalScroll():
                with Horizontal(classes="sline", id="s-name"):
                    yield Label("study name", classes="slabel")
                    yield Input(f"{self.experiment}-study", compact=True, id="study-name")
                yield Static("", classes="serror", id="err-name")
                yield Label("settings", classes="section")
                yield Grid(id="study-settings")
                yield Label("parameters  ([x] searched, [ ] fixed at its value; space toggles)",
                            classes="section", markup=False)
                with Horizontal(classes="pline", id="param-head"):
                    yield Label("parameter", classes="pname")
                    yield Label("search", classes="p-search")
                    yield Label("kind, or the fixed value")
                yield Vertical(id="param-rows")
                yield Static("", classes="serror", id="err-space")
            with Horizontal(classes="buttons"):
                yield Button("Create (ctrl+s)", variant="primary", id="create")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#study-name", Input).focus()  # typing starts at once
        self._load()

    @work(exclusive=True, group="study-form-load", exit_on_error=False)
    async def _load(self) -> None:
        self.exp = exp = await self.engine.get_experiment(self.experiment)
        self.cls = cls = self.engine.adapter_class(exp.adapter)
        defaults = default_space(cls)
        try:
            fields = {f.name: f for f in cls.config_schema().fields}
        except Exception:  # noqa: BLE001
            fields = {}
        values = {**{k: f.default for k, f in fields.items()}, **exp.config}
        self.base = values
        objective = exp.objective or (cls.default_objective[0] if cls.default_objective else "")
        direction = exp.direction or (cls.default_objective[1] if cls.default_objective
                                      else "minimize")
        tuners = self.engine.tuner_names()
        initial = {"n_trials": "20", "tuner": "optuna" if "optuna" in tuners else tuners[0],
                   "search_epochs": "1" if cls.epochs_key else "", "subset_ratio": "",
                   "pruner": "none", "direction": direction, "objective": objective or "",
                   "timeout_s": "", "workers": "1"}
        cells = []
        for key, label, _ in SETTINGS:
            choices = tuners if key == "tuner" else CHOICES.get(key)
            if choices:
                widget: Any = Select([(c, c) for c in choices], value=initial[key],
                                     allow_blank=False, compact=True, id=f"set-{key}")
            else:
                widget = Input(initial[key], compact=True, id=f"set-{key}")
            widget.disabled = (key == "search_epochs" and not cls.epochs_key) or (
                key == "subset_ratio" and not cls.subset_key)
            cells.append(Vertical(Horizontal(Label(label, classes="slabel"), widget,
                                             classes="sline"),
                                  Static("", classes="serror", id=f"err-{key}"),
                                  classes="scell", id=f"s-{key}"))
        await self.query_one("#study-settings").mount_all(cells)
        self.rows = [ParamRow(k, values.get(k), defaults.get(k), fields.get(k))
                     for k in listed_params(cls, values)]
        # the name column fits the longest name (quantization_weight, not quantization_w)
        await self.query_one("#param-rows").mount_all(self.rows)
        width = max([len("parameter"), *(len(r.param) for r in self.rows)]) + 1
        for label in self.query(".pname"):
            label.styles.width = width
        self.ready = True
        self._check_space()

    # ------------------------------------------------------------------ collect and check

    def _space(self) -> tuple[dict[str, ParamSpec], dict[str, str]]:
        space: dict[str, ParamSpec] = {}
        errors: dict[str, str] = {}
        for row in self.rows:
            spec, err = row.spec()
            if err:
                errors[row.param] = err
            elif spec is not None and row.changed():
                space[row.param] = spec
        return space, errors

    def _reserved(self, settings: dict[str, Any]) -> dict[str, str]:
        out = {}
        if self.cls.epochs_key and settings.get("search_epochs") is not None:
            out[self.cls.epochs_key] = "search_epochs"
        if self.cls.subset_key and settings.get("subset_ratio") is not None:
            out[self.cls.subset_key] = "subset_ratio"
        return out

    def _settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        out: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for key, _, kind in SETTINGS:
            widget = self.query_one(f"#set-{key}")
            if widget.disabled:
                continue
            text = str(widget.value).strip()  # type: ignore[attr-defined]
            if text == "":
                out[key] = None
                continue
            try:  # the config schema's parsing: the reason names the type in words
                out[key] = Field(key, kind).parse(text)
            except ValueError as exc:
                errors[key] = str(exc)
        if "search_epochs" not in out:
            out["search_epochs"] = None
        return out, errors

    def _check_space(self) -> dict[str, str]:
        """Parse and validate the space with the engine's rules; show errors inline."""
        if not self.ready:
            return {}
        space, errors = self._space()
        settings, _ = self._settings()
        if not errors:
            try:
                validate_space(space, self.cls, self.exp.config, self._reserved(settings))
            except SpaceError as exc:
                errors = dict(exc.errors)
        if not self.touched:  # "nothing searched yet" is the starting point, not a mistake
            errors.pop("space", None)
        self._show(errors, settings_too=False)
        return errors

    def _show(self, errors: dict[str, str], settings_too: bool = True) -> None:
        rows = {r.param: r for r in self.rows}
        for name, row in rows.items():
            row.show_error(errors.get(name))
        other = {k: v for k, v in errors.items() if k not in rows
                 and k not in dict((s[0], s) for s in SETTINGS) and k != "name"}
        space_err = self.query_one("#err-space", Static)
        space_err.set_class(bool(other), "shown")
        space_err.update(
            "\n".join(f"✗ {k}: {v}" if k != "space" else f"✗ {SPACE_HINT}"
                      for k, v in other.items()))
        if settings_too:
            for key in ("name", *(s[0] for s in SETTINGS)):
                msg = errors.get(key)
                self.query_one(f"#err-{key}", Static).update(f"✗ {msg}" if msg else "")
                self.query_one(f"#s-{key}").set_class(bool(msg), "invalid")
                self.query_one(f"#err-{key}").set_class(bool(msg), "shown")
        if errors:
            first = next((rows[k] for k in errors if k in rows), None)
            if first is not None:
                first.scroll_visible()

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed)
    def _edited(self, event: Any) -> None:
        for row in self.rows:
            if event.control in row.query("*"):
                row.sync()
                if event.control.has_class("p-search"):
                    self.touched = True
        self._check_space()

    # ------------------------------------------------------------------ create

    def action_save(self) -> None:
        self._save()

    @on(Button.Pressed, "#create")
    def _create_pressed(self) -> None:
        self._save()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, group="study-form", exit_on_error=False)
    async def _save(self) -> None:
        if not self.ready:
            return
        self.touched = True
        space, errors = self._space()
        settings, set_errors = self._settings()
        errors.update(set_errors)
        name = self.query_one("#study-name", Input).value.strip()
        if not name:
            errors["name"] = "a study needs a name"
        if not errors:
            try:
                validate_space(space, self.cls, self.exp.config, self._reserved(settings))
            except SpaceError as exc:
                errors.update(exc.errors)
        if not errors:
            try:
                study = await self.engine.create_study(
                    name, self.experiment, space,
                    **{k: v for k, v in settings.items() if v is not None
                       or k == "search_epochs"})
            except ConflictError as exc:
                errors["name"] = str(exc)
            except ConfigError as exc:
                errors.update(exc.errors)
        self._show(errors)
        if errors:
            self.notify(f"{len(errors)} problem(s) to fix before the study is created",
                        severity="warning")
            return
        self.dismiss(study.name)
