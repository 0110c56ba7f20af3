"""Matplotlib for the PNG outputs, imported when a picture is drawn: a timeline without one starts
faster."""

from __future__ import annotations

from pathlib import Path

from musicid.files import atomic_path


def pyplot():
    """matplotlib.pyplot on the Agg backend (files, no screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Save a figure under a temporary name, then rename it into place."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
