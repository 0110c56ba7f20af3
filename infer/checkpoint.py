"""Self-contained checkpoints: saved atomically by training only, loaded without pickle and validated.

A checkpoint holds what prediction needs (weights, feature config, window, vocabulary, normalisation,
training config, default predictor, format version) and, for resuming, the optimizer's and scheduler's
state. `load_run` gives a model ready for inference with its calibration, if one was fitted for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musicid.errors import InputError
from musicid.files import atomic_path
from musicid.pipeline.features import FeatureConfig
from musicid.pipeline.vocab import NAMES
from musicid.pipeline.windows import WindowConfig
from musicid.records import require

from .calibration import Calibration, read_calibration
from .model import DEVICE, DROPOUT, InstrumentNet, load_torch_file, resolve_device
from .shipped import WEIGHTS

FORMAT_VERSION = 2
BEST = "best.pt"  # the checkpoint a run folder stands for (by val mAP)
REQUIRED = ("format_version", "model", "features", "window", "instruments", "normalization", "train_config",
            "default_predictor")


def checkpoint_file(run: Path) -> Path:
    """A run folder's `best.pt` (a shipped model's folder: its `model.pt`), or the checkpoint file itself."""
    run = Path(run)
    if not run.is_dir():
        return run
    shipped = run / WEIGHTS
    return shipped if shipped.is_file() and not (run / BEST).exists() else run / BEST


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict:
    """A validated checkpoint dict; any file that is not one is an InputError naming what is wrong."""
    path = checkpoint_file(path)
    state = load_torch_file(path, "no checkpoint (give a run folder with best.pt, or a .pt file)",
                            "not a loadable musicid checkpoint")
    require(state, REQUIRED, f"{path}: not a musicid checkpoint")
    if state["format_version"] != FORMAT_VERSION:
        raise InputError(f"{path}: checkpoint format {state['format_version']!r}, this musicid reads "
                         f"{FORMAT_VERSION}")
    return state


@dataclass
class ModelCard:
    """What using a model needs to know about the data it was trained on."""

    features: FeatureConfig
    window: WindowConfig
    n_frames: int
    names: list[str]
    mean: np.ndarray
    std: np.ndarray
    train_config: dict
    default_predictor: str

    @classmethod
    def from_state(cls, state: dict, where: str) -> ModelCard:
        norm = require(state["normalization"], ("mean", "std"), f"{where}: normalization")
        names = [i.get("name") for i in state["instruments"]]
        if names != list(NAMES):
            raise InputError(f"{where}: trained for other instruments ({names})")
        card = cls(FeatureConfig.from_dict(state["features"]), WindowConfig.from_dict(state["window"]),
                   int(require(state["window"], ("n_frames",), f"{where}: window")["n_frames"]), names,
                   np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32),
                   dict(state["train_config"]), str(state["default_predictor"]))
        if not len(card.mean) == len(card.std) == card.features.n_mels:
            raise InputError(f"{where}: normalization has {len(card.mean)} bins, features {card.features.n_mels}")
        return card


@dataclass
class LoadedRun:
    path: Path  # the checkpoint file
    card: ModelCard
    model: InstrumentNet
    device: torch.device
    calibration: Calibration | None

    @property
    def names(self) -> list[str]:
        return self.card.names


def load_run(run: Path | str, device: str = DEVICE) -> LoadedRun:
    """A run folder (its best.pt) or a checkpoint file, with its model ready for inference."""
    path = checkpoint_file(Path(run))
    state = load_checkpoint(path)
    card = ModelCard.from_state(state, str(path))
    model = InstrumentNet(dropout=card.train_config.get("dropout", DROPOUT))
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"{path}: weights do not fit the model ({str(exc).splitlines()[0]})") from exc
    dev = resolve_device(device)
    return LoadedRun(path, card, model.to(dev, memory_format=torch.channels_last).eval(), dev, read_calibration(path))
