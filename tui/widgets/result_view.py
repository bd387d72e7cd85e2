"""A job or eval result, shown by the view its ``view_type`` names, else as a JSON tree.

Views are plugins: the ``labdeck.result_views`` entry-point group maps a view type to a
widget class built as ``View(result)`` (``result``: a dict with ``view_type``, ``summary``,
``data``); an optional ``accepts(result)`` lets a view decline data it cannot show. The
built-in views register there too (pyproject.toml), so every process finds the same views.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Tree

GROUP = "labdeck.result_views"


def result_views() -> dict[str, EntryPoint]:
    """View type -> entry point, as installed now (loading a view imports its module)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def view_for(result: Any) -> type[Widget] | None:
    """The installed view for ``result``, or None (no view type, none installed, the view
    fails to load or declines the data): then the JSON tree shows it."""
    if not isinstance(result, dict) or not isinstance(result.get("view_type"), str):
        return None
    ep = result_views().get(result["view_type"])
    if ep is None:
        return None
    try:
        view = ep.load()
    except Exception:  # a broken plugin must not hide the result
        return None
    accepts = getattr(view, "accepts", None)
    if accepts is not None and not accepts(result):
        return None
    return view


class ResultView(Vertical):
    def __init__(self, result: Any, **kw) -> None:
        super().__init__(**kw)
        self.result = result

    def compose(self) -> ComposeResult:
        view = view_for(self.result)
        if view is not None:
            yield view(self.result)
            return
        tree: Tree = Tree("result", id="result-tree")
        if self.result is None:
            tree.root.add_leaf("(no result)")
        else:
            tree.add_json(self.result)  # Tree.add_json; TreeNode has no such method
        tree.root.expand_all()
        yield tree
