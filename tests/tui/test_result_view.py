"""A job result that no adapter view names is shown as a JSON tree (a train job's result)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Tree

from tui.widgets.result_view import ResultView


class _Host(App):
    def __init__(self, result) -> None:
        super().__init__()
        self.result = result

    def compose(self) -> ComposeResult:
        yield ResultView(self.result)


async def test_generic_result_is_a_json_tree():
    app = _Host({"exit_code": 0, "ingested_points": 30, "nested": {"a": [1, 2]}})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tree = app.query_one("#result-tree", Tree)
        labels = [str(n.label) for n in tree.root.children]
        assert len(labels) == 3 and any("exit_code" in label for label in labels)


async def test_missing_result_says_so():
    app = _Host(None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tree = app.query_one("#result-tree", Tree)
        assert [str(n.label) for n in tree.root.children] == ["(no result)"]
