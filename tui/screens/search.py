"""Search area (placeholder). The search issue replaces this module with the retrieval demo:
pick a run's checkpoint and index, type a text query or open an image, see ranked hits with
thumbnails. Keep the class name ``SearchScreen``; the app mounts it as the "search" mode."""

from __future__ import annotations

from .placeholder import PlaceholderScreen


class SearchScreen(PlaceholderScreen):
    AREA = "search"
    TEXT = ("Search\n\nThe retrieval demo will live here: choose a run, checkpoint and index, "
            "query by text or image, browse ranked results with thumbnails.\n\n"
            "(Placeholder: the search team replaces tui/screens/search.py.)")
