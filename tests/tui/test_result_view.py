"""Result views: a result that no installed view names is a JSON tree (a train job's result);
views, built-in and third-party alike, come from the ``labdeck.result_views`` entry points."""

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


def test_the_retrieval_view_is_an_installed_entry_point():
    from tui.widgets.result_view import GROUP, result_views
    from tui.widgets.retrieval_table import RetrievalTable

    views = result_views()
    assert views["retrieval_table"].group == GROUP
    assert views["retrieval_table"].load() is RetrievalTable


PLUGIN = '''
from textual.widgets import Static


class SparkView(Static):
    def __init__(self, result):
        super().__init__("spark: " + " ".join(str(v) for v in result["data"]["values"]),
                         id="spark")
'''


async def test_a_third_party_view_is_found_through_its_entry_point(tmp_path, monkeypatch):
    """A package installed beside labdeck (here: a module and its dist-info on sys.path)
    names a view for its own view type; the result shows through it, no labdeck code
    changed."""
    (tmp_path / "labdeck_spark.py").write_text(PLUGIN)
    info = tmp_path / "labdeck_spark-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: labdeck-spark\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[labdeck.result_views]\nspark = labdeck_spark:SparkView\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = _Host({"view_type": "spark", "summary": {}, "data": {"values": [1, 2, 3]}})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert str(app.query_one("#spark").render()) == "spark: 1 2 3"
        assert not app.query("#result-tree")


async def test_a_view_that_declines_its_data_leaves_the_json_tree():
    app = _Host({"view_type": "retrieval_table", "summary": {}, "data": {"rows": "oops"}})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.query("#result-tree") and not app.query("#result-table")
