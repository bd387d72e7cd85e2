"""Area keys as a new user meets them (issue 15 item 4): E inside the Experiments area
(run detail, experiment detail) goes to the experiments list, as J, C, S and T go to their
areas from there; and `p` (promote the best trial) opens the new experiment in the
Experiments area, so the header, the stack and esc agree."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from tui.app import LabdeckApp
from tui.screens.experiment_detail import ExperimentDetailScreen
from tui.screens.experiments import ExperimentsScreen
from tui.screens.jobs import JobsScreen
from tui.screens.run_detail import RunDetailScreen
from tui.screens.studies import StudiesScreen
from tui.screens.study_detail import StudyDetailScreen
from tui.widgets.header import LabdeckHeader

from .conftest import settle, wait_for
from .test_studies_snapshots import seed_studies


@pytest.fixture
def studies_home(home, frozen_clock):
    return seed_studies(home)


def header_area(app) -> str:
    return app.screen.query_one(LabdeckHeader).area


async def test_E_from_run_detail_goes_to_the_experiments_list(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        # experiment detail, then its run: two screens on the Experiments stack
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentDetailScreen)
                       and app.screen.loaded)
        app.push_screen(RunDetailScreen(1))
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen)
                       and app.screen.loaded)
        # another area's key leaves the Experiments stack as it is; E comes back to it
        await pilot.press("J")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen))
        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        # E inside the area: to the experiments list
        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentsScreen),
                       what="E from run detail opens the experiments list")
        assert len(app.screen_stack) == 1 and app.current_mode == "experiments"
        await settle(pilot)
        assert app.screen.query_one("#experiments", DataTable).row_count == 4
        # and again on the list: nothing to go back to, nothing happens
        await pilot.press("E")
        await settle(pilot)
        assert isinstance(app.screen, ExperimentsScreen)


async def test_promote_opens_the_experiment_in_the_experiments_area(studies_home):
    app = LabdeckApp(home=studies_home, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.loaded)
        app.screen.open_study("lr-search")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyDetailScreen)
                       and app.screen.loaded)
        study_detail = app.screen
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentDetailScreen)
                       and app.screen.loaded, what="promoted experiment opened")
        assert app.screen.exp_name == "lr-search-best"
        # the header and the stack agree: the Experiments area
        assert app.current_mode == "experiments" and header_area(app) == "experiments"
        assert isinstance(app.screen_stack[0], ExperimentsScreen)
        # esc: the experiments list, which shows the new experiment
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentsScreen)
                       and any(e.name == "lr-search-best" for e in app.screen.experiments))
        # the Studies area is where it was left
        await pilot.press("T")
        await wait_for(pilot, lambda: app.screen is study_detail)
