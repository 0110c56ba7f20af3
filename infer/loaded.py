"""A run read for inference: its checkpoint's model on a device, its card and its calibration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from musicid.errors import InputError
from musicid.network import DEVICE, DROPOUT, InstrumentNet, resolve_device
from musicid.run import Calibration, Checkpoint, ModelCard, checkpoint_file


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
    """A run folder (its best.pt), a shipped model folder or a checkpoint file, its model ready for inference."""
    path = checkpoint_file(Path(run))
    ckpt = Checkpoint.load(path)
    model = InstrumentNet(dropout=ckpt.card.train_config.get("dropout", DROPOUT))
    try:
        model.load_state_dict(ckpt.model)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"{path}: weights do not fit the model ({str(exc).splitlines()[0]})") from exc
    dev = resolve_device(device)
    return LoadedRun(path, ckpt.card, model.to(dev, memory_format=torch.channels_last).eval(), dev,
                     Calibration.load(path))
