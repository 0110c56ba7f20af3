"""Calibration: what the fitted predictors need (per-class thresholds and biases), fitted in one place on
the validation split only, and kept as its own JSON artifact beside the checkpoint it belongs to.

`runs/x/best.pt` -> `runs/x/best.calibration.json`, holding the checkpoint's sha256: a calibration is used
only with the exact checkpoint it was fitted for. musicid-train writes it with every checkpoint; musicid-eval
refits one on the val split of the shards it evaluates for its report and writes nothing into the run.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from musicid.errors import InputError
from musicid.files import read_json, write_json_atomic
from musicid.pipeline.features import FeatureConfig, log_mel, normalise
from musicid.pipeline.shards import sha256_file
from musicid.pipeline.vocab import N_INSTRUMENTS
from musicid.records import from_fields, require

from .metrics import calibrate_thresholds

log = logging.getLogger("musicid")
NOISE_WINDOWS = 32
DEFAULT_THRESHOLD = 0.5  # for a class the val split lacks: no evidence either way
BIASES = ("prior", "valmean", "noise")


@dataclass
class Calibration:
    thresholds: list[float]
    biases: dict[str, list[float]]  # prior (train label frequency), valmean, noise
    fitted_on: str
    fallback_classes: list[str] = field(default_factory=list)  # absent from val: DEFAULT_THRESHOLD
    checkpoint_sha256: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Calibration:
        """Validated field by field: 11 finite thresholds in [0, 1] and 11 finite values per bias, so that a
        damaged file is named instead of silently predicting nothing (or failing to broadcast)."""
        cal = from_fields(cls, d, f"{where}: not a musicid calibration")
        require(cal.biases, BIASES, f"{where}: biases")
        for name, values, low, high in [("thresholds", cal.thresholds, 0.0, 1.0),
                                        *((f"biases.{b}", cal.biases[b], -1.0, 1.0) for b in BIASES)]:
            try:
                arr = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError):
                arr = np.full(0, np.nan)
            if arr.shape != (N_INSTRUMENTS,) or not np.isfinite(arr).all() or (arr < low).any() or (arr > high).any():
                raise InputError(f"{where}: {name} must be {N_INSTRUMENTS} numbers in [{low:g}, {high:g}], "
                                 f"found {str(values)[:80]}")
        return cal


def calibration_file(checkpoint: Path) -> Path:
    return checkpoint.with_name(f"{checkpoint.stem}.calibration.json")


def fit(probs: np.ndarray, labels: np.ndarray, prior: list[float], noise: np.ndarray, names: list[str],
        fitted_on: str) -> Calibration:
    """Thresholds maximising each class's F1 on validation, and the three biases of the prior work."""
    if len(probs) == 0:
        raise InputError(f"{fitted_on}: no validation samples; fitted predictors need a val split")
    thresholds, fallback = calibrate_thresholds(probs, labels, DEFAULT_THRESHOLD)
    return Calibration([float(t) for t in thresholds],
                       {"prior": [float(x) for x in prior], "valmean": probs.mean(axis=0).tolist(),
                        "noise": noise.tolist()}, fitted_on, [names[c] for c in fallback])


@torch.no_grad()
def noise_bias(model: torch.nn.Module, features: FeatureConfig, window_s: float, n_frames: int,
               mean: np.ndarray, std: np.ndarray, device: torch.device, seed: int = 0) -> np.ndarray:
    """Mean prediction on white noise at several levels, through the same feature function."""
    rng = np.random.default_rng(seed)
    n = int(window_s * features.sample_rate)
    specs = [normalise(log_mel((level * rng.standard_normal(n)).astype(np.float32), features.sample_rate,
                               features)[:, :n_frames], mean, std) for level in np.geomspace(1e-3, 0.3, NOISE_WINDOWS)]
    was_training = model.training
    model.eval()
    probs = model.predict_proba(torch.from_numpy(np.stack(specs)).to(device)).cpu().numpy()
    model.train(was_training)
    return probs.mean(axis=0)


def write_calibration(checkpoint: Path, cal: Calibration) -> Path:
    cal.checkpoint_sha256 = sha256_file(checkpoint)
    path = calibration_file(checkpoint)
    write_json_atomic(path, cal.to_dict())
    return path


def read_calibration(checkpoint: Path) -> Calibration | None:
    """The calibration beside a checkpoint, if there is one fitted for exactly this checkpoint."""
    path = calibration_file(checkpoint)
    if not path.exists():
        return None
    cal = Calibration.from_dict(read_json(path, "calibration"), str(path))
    if cal.checkpoint_sha256 != sha256_file(checkpoint):
        log.warning("warning: %s was fitted for another version of %s; ignored", path, checkpoint.name)
        return None
    return cal
