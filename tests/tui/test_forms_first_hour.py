"""A new user's first hour with the forms (issue 15): the experiment form takes typing at
once and shows which field has focus without colour; ticks read [x] / [ ]; a bad value says
the type it wanted in words; the study form puts its settings before a long parameter table,
does not cut parameter names, labels the range boxes, and the importance of a few trials
carries a caveat."""

from __future__ import annotations

from textual.widgets import Input, Label, Static

from engine.api import Engine
from tui.app import LabdeckApp
from tui.screens.experiment_form import AdapterPicker, ExperimentForm
from tui.screens.studies import StudiesScreen
from tui.screens.study_detail import StudyDetailScreen
from tui.screens.study_form import StudyForm
from tui.widgets.tick_box import TickBox

from .conftest import settle, wait_for
from .test_studies_snapshots import studies_home  # noqa: F401 - the seeded studies fixture


def plain(widget) -> str:
    return str(getattr(widget.render(), "plain", widget.render())).strip()


async def _new_form(app, pilot, adapter: str) -> ExperimentForm:
    await wait_for(pilot, lambda: app.screen.loaded, what="experiments loaded")
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, AdapterPicker))
    picker = app.screen
    while picker.query_one("OptionList").highlighted_option.id != adapter:
        await pilot.press("down")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ExperimentForm), what="the form")
    await settle(pilot)
    return app.screen


def field_marked(form, name: str) -> bool:
    """Whether the field's row shows focus in ways that need no colour: a bar each side of
    the box and the label in reverse video."""
    box = form.query_one(f"#f-{name}")
    label = form.query_one(f"#row-{name} .field-label", Label)
    return (box.styles.border_left[0] == "outer" and box.styles.border_right[0] == "outer"
            and "reverse" in str(label.styles.text_style))


# ------------------------------------------------------------------ 1: focus on open, a ring

async def test_new_form_takes_typing_at_once_and_marks_the_focused_field(home):
    app = LabdeckApp(home=home)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await _new_form(app, pilot, "script")
        await pilot.press("m", "y", "x")  # no Tab first
        assert form.query_one("#f-name", Input).value == "myx"
        assert app.focused is form.query_one("#f-name")
        assert field_marked(form, "name") and not field_marked(form, "tags")
        await pilot.press("tab")
        await settle(pilot)
        assert app.focused is form.query_one("#f-tags")
        assert field_marked(form, "tags") and not field_marked(form, "name")


async def test_edit_form_takes_typing_at_once(home):
    async with Engine.session(home) as engine:
        await engine.create_experiment("old", "script", {"command": "true"})
    app = LabdeckApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded, what="experiments loaded")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentForm), what="edit form")
        form = app.screen
        await settle(pilot)
        assert app.focused is form.query_one("#f-name")
        await pilot.press("end", "2")
        assert form.query_one("#f-name", Input).value == "old2"


# ------------------------------------------------------------------ 6: errors name the type

async def test_int_field_error_names_the_type_in_words(home):
    app = LabdeckApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await _new_form(app, pilot, "vlm_quantization")
        form.query_one("#f-name", Input).value = "x"
        form.query_one("#f-epochs", Input).value = "lots"
        form.query_one("#f-lr", Input).value = "fast"
        await pilot.press("ctrl+s")
        err = form.query_one("#err-epochs", Static)
        await wait_for(pilot, lambda: "expected a whole number (int), got 'lots'" in plain(err),
                       what="the int field's error")
        assert "could not convert" not in plain(err)
        assert "expected a number, got 'fast'" in plain(form.query_one("#err-lr", Static))


# ------------------------------------------------------------------ 8: ticks without colour

async def test_bool_field_reads_ticked_or_not_without_colour(home):
    app = LabdeckApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await _new_form(app, pilot, "vlm_quantization")
        box = form.query_one("#f-freeze_backbone", TickBox)
        on = plain(box)
        box.focus()
        await pilot.press("space")
        await settle(pilot)
        off = plain(box)
        assert {on, off} == {"[x] true", "[ ] false"}, (on, off)


# ------------------------------------------------------------------ 12: the study form

async def _study_form(home, pilot, app) -> StudyForm:
    async with Engine.session(home) as engine:
        await engine.create_experiment("vlm", "vlm_quantization", {"dataset": "synthetic"})
    await wait_for(pilot, lambda: app.screen.loaded, what="experiments loaded")
    await pilot.press("T")
    await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.loaded)
    app.push_screen(StudyForm("vlm"))
    await wait_for(pilot, lambda: isinstance(app.screen, StudyForm) and app.screen.ready,
                   what="study form")
    await settle(pilot)
    return app.screen


async def test_study_settings_come_before_the_parameters(home):
    app = LabdeckApp(home=home)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await _study_form(home, pilot, app)
        assert len(form.rows) >= 19
        assert app.focused is form.query_one("#study-name")
        seen = []
        for _ in range(9):
            await pilot.press("tab")
            seen.append(app.focused.id)
        assert seen == [f"set-{k}" for k in ("n_trials", "tuner", "search_epochs",
                                             "subset_ratio", "pruner", "direction",
                                             "objective", "timeout_s", "workers")]
        await pilot.press("tab")
        assert app.focused.has_class("p-search")  # then the parameter table


async def test_study_parameter_names_whole_and_range_boxes_labelled(home):
    app = LabdeckApp(home=home)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await _study_form(home, pilot, app)
        for row in form.rows:
            name = row.query_one(".pname", Label)
            assert name.size.width > len(row.param), (row.param, name.size.width)
        lr = next(r for r in form.rows if r.param == "lr")
        assert [plain(b) for b in lr.query(".p-bound") if b.display] == ["min", "max"]
        log = lr.query_one(".p-log", TickBox)
        # the whole row fits at 80 columns: log's box is on screen, not clipped
        assert log.region.right <= lr.query_one(".pline").region.right
        assert plain(log) == "[x] log"
        log.value = False
        await settle(pilot)
        assert plain(log) == "[ ] log" and lr.spec()[0].log is False


async def test_study_setting_and_bound_errors_name_the_type(home):
    from textual.widgets import Select

    app = LabdeckApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await _study_form(home, pilot, app)
        form.query_one("#set-n_trials", Input).value = "lots"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "expected a whole number (int), got 'lots'"
                       in plain(form.query_one("#err-n_trials")), what="n_trials error")
        lr = next(r for r in form.rows if r.param == "lr")
        lr.query_one(".p-min", Input).value = "tiny"
        assert lr.spec() == (None, "min: expected a number, got 'tiny'")
        width = next(r for r in form.rows if r.param == "width")
        width.query_one(".p-search", TickBox).value = True
        width.query_one(".p-kind", Select).value = "int"
        width.query_one(".p-max", Input).value = "2.5"
        await settle(pilot)
        assert width.spec() == (None, "max: expected a whole number (int), got '2.5'")


async def test_importance_of_few_trials_carries_a_caveat(studies_home):  # noqa: F811
    app = LabdeckApp(home=studies_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.loaded)
        app.screen.open_study("lr-search")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyDetailScreen)
                       and app.screen.loaded and app.screen.query("#importance"))
        await settle(pilot)
        text = plain(app.screen.query_one("#importance", Static))
        assert "9 complete trials" in text and "unreliable" in text
        assert "lr" in text  # the bars are still there


def test_importance_caveat_goes_with_enough_trials():
    from tui.screens.study_detail import RELIABLE_IMPORTANCE_TRIALS, importance_caveat

    assert "unreliable" in importance_caveat(3).plain
    assert importance_caveat(RELIABLE_IMPORTANCE_TRIALS) is None
