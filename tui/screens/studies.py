"""Studies area (placeholder). The studies issue replaces this module: study list, progress,
objective chart, trial table, best params, "create experiment from best trial". Keep the
class name ``StudiesScreen``; the app mounts it as the "studies" mode."""

from __future__ import annotations

from .placeholder import PlaceholderScreen


class StudiesScreen(PlaceholderScreen):
    AREA = "studies"
    TEXT = ("Studies\n\nHyperparameter studies will live here: list, trial progress, objective "
            "chart, trial table, best parameters.\n\n"
            "(Placeholder: the studies team replaces tui/screens/studies.py.)")
