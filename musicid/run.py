"""The run: the artifact `musicid-train` writes and evaluation and prediction read.

A run folder holds `config.json`, `metrics.jsonl` (a line per epoch), `last.pt` and `best.pt` (by
val mAP), beside each checkpoint its calibration (`best.pt` -> `best.calibration.json`), and beside
the run's model its ONNX export (`best.onnx`: the same network for ONNX Runtime, with a copy of the
card and the sha256 of the checkpoint it came from). The shipped model (`musicid/model/` inside the
package) is a run reduced to what using it needs: `model.pt` (fp16 weights with the card),
`model.onnx`, the calibration and `card.json` (data sources with licences, recipe, seed, figures).

Here, in one place: the file names, the `Checkpoint` record (weights, the `ModelCard` with what
using the model needs to know about its data, the training state for resuming, the format version),
the `Calibration` record and where it lives. Checkpoints are read without pickle
(`weights_only=True`) and validated field by field. PyTorch is imported by the functions that read
or write checkpoints only: prediction on ONNX Runtime reads cards and calibrations without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musicid.errors import InputError
from musicid.events import EventRule
from musicid.features import Features, features_from_dict
from musicid.files import atomic_path, read_json, sha256_file, write_json_atomic
from musicid.records import from_fields, require
from musicid.vocab import N_INSTRUMENTS, NAMES
from musicid.windows import WindowConfig

if TYPE_CHECKING:
    from musicid.shardset import Manifest

log = logging.getLogger("musicid")
FORMAT_VERSION = 2
# BEST: the run's model
CONFIG, METRICS, LAST, BEST = "config.json", "metrics.jsonl", "last.pt", "best.pt"
SHIPPED = Path(__file__).resolve().parent / "model"  # inside the package, wherever it is installed
WEIGHTS, CARD = "model.pt", "card.json"  # a shipped model folder's checkpoint and model card
DEFAULT_PREDICTOR = "top3"  # what needs no calibration: a model's default when it has none
CALIBRATED = "calibrated"  # per-class thresholds fitted on val
# the calibrated thresholds with smoothing over time (musicid.events): a timeline's default
EVENTS = "events"
THRESHOLD = 0.5  # the uniform threshold: val macro F1's, and a class's when the val split lacks it
DEVICES = ("auto", "cpu", "cuda")
DEVICE = "auto"  # CUDA when present
# windows per forward pass when a model predicts (validation, evaluation, prediction)
INFERENCE_BATCH = 64
# a model at work: [B, 1, bins, frames] normalised -> [B, C]
Predict = Callable[[np.ndarray], np.ndarray]
BIASES = ("prior", "valmean", "noise")


def calibration_file(checkpoint: Path) -> Path:
    return checkpoint.with_name(f"{checkpoint.stem}.calibration.json")


def onnx_file(checkpoint: Path) -> Path:
    """Where a checkpoint's ONNX export lives: beside it, the same name (`best.pt` ->
    `best.onnx`)."""
    return checkpoint.with_suffix(".onnx")


RUN_FILES = (
    CONFIG,
    METRICS,
    LAST,
    BEST,
    onnx_file(Path(BEST)).name,
    *(calibration_file(Path(n)).name for n in (LAST, BEST)),
)
# an export's metadata keys
ONNX_CARD, ONNX_CHECKPOINT = "musicid.card", "musicid.checkpoint_sha256"


def shipped_model() -> Path:
    """The shipped checkpoint; an InputError saying what to do when this installation has none."""
    path = SHIPPED / WEIGHTS
    if not path.is_file():
        raise InputError(
            f"{path}: this installation ships no model; give --model RUN (train one with make "
            "model)"
        )
    return path


def resolve_model(model: Path | str | None) -> Path:
    """`model` as given, or the shipped model's folder when it is None."""
    if model is None:
        if not (SHIPPED / WEIGHTS).is_file() and not onnx_file(SHIPPED / WEIGHTS).is_file():
            raise InputError(
                f"{SHIPPED}: this installation ships no model; give --model RUN (train one with "
                "make model)"
            )
        return SHIPPED
    return Path(model)


def read_card(folder: Path = SHIPPED) -> dict:
    return read_json(Path(folder) / CARD, "model card")


def verify_shipped(path: Path, sha256: str | None = None) -> None:
    """A shipped model's file whose checksum its model card records (`sha256`: of the card's
    `files`) must match it: bit rot in an installed model is named, not predicted with."""
    card = path.parent / CARD
    if not card.is_file():
        return
    recorded = read_card(path.parent).get("sha256", {})
    if (
        isinstance(recorded, dict)
        and path.name in recorded
        and recorded[path.name] != (sha256 or sha256_file(path))
    ):
        raise InputError(
            f"{path}: does not match the checksum its model card records (a damaged file); "
            "reinstall musicid, or export the model again"
        )


def check_finite(weights: dict, where: Path) -> dict:
    """Weights (a state dict of tensors) without NaN or infinity, or an InputError naming the
    tensor."""
    bad = [
        k
        for k, v in weights.items()
        if hasattr(v, "is_floating_point")
        and v.is_floating_point()
        and not bool(v.isfinite().all())
    ]
    if bad:
        raise InputError(
            f"{where}: damaged weights: {bad[0]} holds NaN or infinite values ({len(bad)} "
            "tensor(s)); "
            "retrain or reinstall the model"
        )
    return weights


def checkpoint_file(run: Path) -> Path:
    """A run folder's `best.pt` (a shipped model's folder: its `model.pt`), or the checkpoint a file
    names (an ONNX export: the checkpoint beside it, which may be absent)."""
    run = Path(run)
    if not run.is_dir():
        return run.with_suffix(".pt") if run.suffix == ".onnx" else run
    shipped = run / WEIGHTS
    is_shipped = (shipped.is_file() or onnx_file(shipped).is_file()) and not (run / BEST).exists()
    return shipped if is_shipped else run / BEST


def load_torch_file(path: Path, missing: str, foreign: str) -> object:
    """`torch.load` without pickle (`weights_only=True`); a missing or foreign file is an
    InputError."""
    import torch

    if not path.is_file():
        raise InputError(f"{path}: {missing}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        # torch raises many types for files that are not its own
        raise InputError(f"{path}: {foreign} ({type(exc).__name__})") from exc


@dataclass
class ModelCard:
    """What using a model needs to know about the data it was trained on (the manifest's part of a
    checkpoint)."""

    features: Features
    window: WindowConfig
    n_frames: int
    instruments: list[dict]
    # per-mel-bin mean and std (dB) of the train split, as the manifest holds them
    normalization: dict
    train_config: dict
    default_predictor: str

    @cached_property
    def mean(self) -> np.ndarray:
        return np.asarray(self.normalization["mean"], np.float32)

    @cached_property
    def std(self) -> np.ndarray:
        return np.asarray(self.normalization["std"], np.float32)

    @property
    def names(self) -> list[str]:
        return [i["name"] for i in self.instruments]

    @classmethod
    def from_manifest(cls, manifest: Manifest, train_config: dict) -> ModelCard:
        """A training run's card: the shards' features, window, vocabulary and statistics; its
        default predictor is the events one (calibrated thresholds, smoothed over time) when there
        is a val split to fit a calibration on."""
        has_val = manifest.splits["val"].samples > 0
        return cls(
            manifest.features,
            manifest.window,
            manifest.n_frames,
            manifest.instruments,
            {k: manifest.normalization[k] for k in ("mean", "std")},
            train_config,
            EVENTS if has_val else DEFAULT_PREDICTOR,
        )

    def to_dict(self) -> dict:
        return {
            "features": self.features.to_dict(),
            "window": {**self.window.to_dict(), "n_frames": self.n_frames},
            "instruments": self.instruments,
            "normalization": self.normalization,
            "train_config": self.train_config,
            "default_predictor": self.default_predictor,
        }

    @classmethod
    def from_dict(cls, d: dict, where: str) -> ModelCard:
        norm = require(d["normalization"], ("mean", "std"), f"{where}: normalization")
        names = [i.get("name") if isinstance(i, dict) else i for i in d["instruments"]]
        if names != list(NAMES):
            raise InputError(f"{where}: trained for other instruments ({names})")
        card = cls(
            features_from_dict(d["features"]),
            WindowConfig.from_dict(d["window"]),
            int(require(d["window"], ("n_frames",), f"{where}: window")["n_frames"]),
            d["instruments"],
            norm,
            dict(d["train_config"]),
            str(d["default_predictor"]),
        )
        if not len(card.mean) == len(card.std) == card.features.n_bins:
            raise InputError(
                f"{where}: normalization has {len(card.mean)} bins, features {card.features.n_bins}"
            )
        return card


CARD_FIELDS = (
    "features",
    "window",
    "instruments",
    "normalization",
    "train_config",
    "default_predictor",
)
TRAINING_FIELDS = ("optimizer", "scheduler", "epoch", "step", "best_map", "val_metrics")


@dataclass
class Checkpoint:
    """Weights and card (all that prediction needs), and for resuming the training state (absent
    from a shipped model)."""

    model: dict  # the InstrumentNet state dict
    card: ModelCard
    # TRAINING_FIELDS: optimizer and scheduler state, epoch, step, best val mAP
    training: dict | None = None
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        training = {k: self.training[k] for k in TRAINING_FIELDS} if self.training else {}
        return {
            "format_version": self.format_version,
            "model": self.model,
            **training,
            **self.card.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: object, where: str) -> Checkpoint:
        d = require(
            d, ("format_version", "model", *CARD_FIELDS), f"{where}: not a musicid checkpoint"
        )
        if d["format_version"] != FORMAT_VERSION:
            raise InputError(
                f"{where}: checkpoint format {d['format_version']!r}, this musicid reads "
                f"{FORMAT_VERSION}"
            )
        training = (
            {k: d[k] for k in TRAINING_FIELDS} if all(k in d for k in TRAINING_FIELDS) else None
        )
        return cls(d["model"], ModelCard.from_dict(d, where), training)

    def save(self, path: Path) -> None:
        """Atomically; through a file object, so the archive's inner name does not depend on the
        temporary file's name (the same state gives the same bytes)."""
        import torch

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            torch.save(self.to_dict(), fh)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        """A run folder's best.pt, a shipped model folder's model.pt, or a checkpoint file,
        validated."""
        path = checkpoint_file(path)
        verify_shipped(path)
        state = load_torch_file(
            path,
            "no checkpoint (give a run folder with best.pt, or a .pt file)",
            "not a loadable musicid checkpoint",
        )
        ckpt = cls.from_dict(state, str(path))
        check_finite(ckpt.model, path)
        return ckpt


# 2 added the event rules; format 1 files load with EventRule.plain per class
CALIBRATION_FORMAT = 2


@dataclass
class Calibration:
    """What the fitted predictors need (per-class thresholds, biases and event rules), fitted on a
    val split for exactly one checkpoint (its sha256), and kept as JSON beside it."""

    thresholds: list[float]
    biases: dict[str, list[float]]  # prior (train label frequency), valmean, noise
    fitted_on: str
    # absent from val: the uniform threshold
    fallback_classes: list[str] = field(default_factory=list)
    checkpoint_sha256: str = ""
    # per class, an EventRule (musicid.events); None: the plain rule
    events: list[dict] | None = None
    format: int = CALIBRATION_FORMAT

    def to_dict(self) -> dict:
        return asdict(self)

    def event_rules(self) -> list[EventRule]:
        """Per class, how its probabilities over time become events (a format-1 calibration: its
        threshold)."""
        if self.events is None:
            return [EventRule.plain(t) for t in self.thresholds]
        return [EventRule.from_dict(e, "events") for e in self.events]

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Calibration:
        """Validated field by field: 11 finite thresholds in [0, 1], 11 finite values per bias, and
        11 event rules, so that a damaged file is named instead of silently predicting nothing (or
        failing to broadcast). A format-1 file (no event rules) still loads."""
        if isinstance(d, dict) and "format" not in d:  # format 1 predates the event rules
            d = {**d, "format": 1, "events": None}
        cal = from_fields(cls, d, f"{where}: not a musicid calibration")
        if cal.format not in (1, CALIBRATION_FORMAT):
            raise InputError(
                f"{where}: calibration format {cal.format!r}, this musicid reads 1 and "
                f"{CALIBRATION_FORMAT}"
            )
        require(cal.biases, BIASES, f"{where}: biases")
        for name, values, low, high in [
            ("thresholds", cal.thresholds, 0.0, 1.0),
            *((f"biases.{b}", cal.biases[b], -1.0, 1.0) for b in BIASES),
        ]:
            try:
                arr = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError):
                arr = np.full(0, np.nan)
            if (
                arr.shape != (N_INSTRUMENTS,)
                or not np.isfinite(arr).all()
                or (arr < low).any()
                or (arr > high).any()
            ):
                raise InputError(
                    f"{where}: {name} must be {N_INSTRUMENTS} numbers in [{low:g}, {high:g}], "
                    f"found {str(values)[:80]}"
                )
        if cal.events is not None:
            if not isinstance(cal.events, list) or len(cal.events) != N_INSTRUMENTS:
                raise InputError(
                    f"{where}: events must be {N_INSTRUMENTS} rules, found {str(cal.events)[:80]}"
                )
            for name, rule in zip(NAMES, cal.events, strict=True):
                EventRule.from_dict(rule, f"{where}: events of {name}")
        return cal

    def save(self, checkpoint: Path) -> Path:
        """Beside `checkpoint`, bound to its current bytes."""
        self.checkpoint_sha256 = sha256_file(checkpoint)
        path = calibration_file(checkpoint)
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, checkpoint: Path, sha256: str | None = None) -> Calibration | None:
        """The calibration beside a checkpoint, if there is one fitted for exactly this checkpoint
        (`sha256`: the checkpoint's, when known without the file, as an ONNX export records it)."""
        path = calibration_file(checkpoint)
        if not path.exists():
            return None
        cal = cls.from_dict(read_json(path, "calibration"), str(path))
        if cal.checkpoint_sha256 != (sha256 or sha256_file(checkpoint)):
            log.warning(
                "warning: %s was fitted for another version of %s; ignored", path, checkpoint.name
            )
            return None
        return cal
