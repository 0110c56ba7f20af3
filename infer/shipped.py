"""The model that ships inside the package (`musicid/model/`): fp16 weights with the checkpoint's card, its
calibration and a model card (`card.json`: data sources with licences, recipe, seed, figures). Prediction
and evaluation use it when no model is given; `musicid-train --pretrained default` starts from it."""

from __future__ import annotations

from pathlib import Path

import musicid
from musicid.errors import InputError
from musicid.files import read_json

SHIPPED = Path(musicid.__file__).resolve().parent / "model"  # inside the package, wherever it is installed
WEIGHTS = "model.pt"
CARD = "card.json"


def shipped_model() -> Path:
    """The shipped checkpoint; an InputError saying what to do when this installation has none."""
    path = SHIPPED / WEIGHTS
    if not path.is_file():
        raise InputError(f"{path}: this installation ships no model; give --model RUN (train one with make model)")
    return path


def resolve_model(model: Path | str | None) -> Path:
    """`model` as given, or the shipped model when it is None."""
    return shipped_model() if model is None else Path(model)


def read_card(folder: Path = SHIPPED) -> dict:
    return read_json(Path(folder) / CARD, "model card")
