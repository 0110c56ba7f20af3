"""Self-contained checkpoints (DESIGN §5): saved atomically, loaded without pickle (weights_only=True)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

FORMAT_VERSION = 1
REQUIRED = ("format_version", "model", "features", "window", "instruments", "normalization", "train_config",
            "thresholds", "default_predictor")


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save under a temporary name, then rename: a crash never leaves a half-written checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint file, or `best.pt` in a run folder; refuses files that miss §5's fields."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint (give a run folder with best.pt, or a .pt file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for corrupt or foreign files
        raise ValueError(f"{path}: not a loadable musicid checkpoint ({type(exc).__name__}: {exc})") from exc
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise ValueError(f"{path}: not a musicid checkpoint (missing {', '.join(missing)})")
    if state["format_version"] > FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {state['format_version']} is newer than this musicid "
                         f"({FORMAT_VERSION}); upgrade musicid")
    return state
