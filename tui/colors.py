"""One stable colour per run for a whole session: every chart and table asks here."""

from __future__ import annotations

PALETTE: tuple[tuple[int, int, int], ...] = (
    (66, 165, 245), (255, 167, 38), (102, 187, 106), (239, 83, 80), (171, 71, 188),
    (38, 198, 218), (255, 238, 88), (141, 110, 99), (236, 64, 122), (120, 144, 156),
)

_assigned: dict[int, tuple[int, int, int]] = {}


def run_rgb(run_id: int) -> tuple[int, int, int]:
    """The run's colour: the next unused palette entry the first time a run is seen."""
    if run_id not in _assigned:
        _assigned[run_id] = PALETTE[len(_assigned) % len(PALETTE)]
    return _assigned[run_id]


def run_hex(run_id: int) -> str:
    r, g, b = run_rgb(run_id)
    return f"#{r:02x}{g:02x}{b:02x}"


def reset() -> None:
    """Forget assignments (tests and snapshot runs start from the first colour)."""
    _assigned.clear()
