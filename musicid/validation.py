"""What training's validation and evaluation share: a model's predictions over a shard split, and fitting a
calibration on a val split (per-class thresholds and the three biases), so that a calibration means the same
whichever command fitted it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from musicid.errors import InputError
from musicid.features import normalise
from musicid.metrics import calibrate_thresholds
from musicid.run import INFERENCE_BATCH, Calibration, ModelCard
from musicid.shardset import Manifest, loader, log_bad

THRESHOLD = 0.5  # the uniform threshold: val macro F1's, and a class's when the val split lacks it
NOISE_WINDOWS = 32


@dataclass
class Predictions:
    """Every sample of a split: window probabilities and labels, and what the frame level needs."""

    probs: np.ndarray  # [N, C]
    labels: np.ndarray  # [N, C]
    recordings: list[str]
    start_s: np.ndarray  # [N]
    rolls: np.ndarray | None  # [N, C, T] uint8 frame activity, when collected


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """The model in eval mode (no dropout, fixed batch norm) for the block, then back in the mode it was in:
    training's validation runs between its steps."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def collect_predictions(model: torch.nn.Module, urls: list[str], card: ModelCard, device: torch.device,
                        workers: int = 0, with_roll: bool = False) -> Predictions:
    """Probabilities and labels of every sample in `urls` (unreadable shards skipped, logged)."""
    probs, labels, infos = [], [], []
    batches = loader(urls, card.mean, card.std, INFERENCE_BATCH, workers, with_roll=with_roll) if urls else []
    with eval_mode(model):
        for x, y, info, bad in batches:  # an empty split (e.g. no val recordings) has no shards: no predictions
            for b in bad:
                log_bad(b)
            if x is None:
                continue
            probs.append(model.predict_proba(x.to(device)).cpu().numpy())
            labels.append(y.numpy())
            infos += info
    c = len(card.names)
    return Predictions(np.concatenate(probs) if probs else np.zeros((0, c)),
                       np.concatenate(labels) if labels else np.zeros((0, c)), [i.recording for i in infos],
                       np.array([i.start_s for i in infos]),
                       np.stack([i.roll for i in infos]) if with_roll and infos else None)


@torch.no_grad()
def noise_bias(model: torch.nn.Module, card: ModelCard, device: torch.device, seed: int = 0) -> np.ndarray:
    """Mean prediction on white noise at several levels, through the same feature function."""
    rng = np.random.default_rng(seed)
    features = card.features
    n = int(card.window.window_s * features.sample_rate)
    specs = [normalise(features.compute((level * rng.standard_normal(n)).astype(np.float32),
                                        features.sample_rate)[:, :card.n_frames], card.mean, card.std)
             for level in np.geomspace(1e-3, 0.3, NOISE_WINDOWS)]
    with eval_mode(model):
        probs = model.predict_proba(torch.from_numpy(np.stack(specs)).to(device)).cpu().numpy()
    return probs.mean(axis=0)


def fit_calibration(model: torch.nn.Module, card: ModelCard, device: torch.device, manifest: Manifest,
                    probs: np.ndarray, labels: np.ndarray, fitted_on: str) -> Calibration:
    """The one place a calibration is fitted (by training and by evaluation), on val predictions: thresholds
    maximising each class's F1, and the prior work's biases (train label frequency, mean val prediction, mean
    prediction on white noise)."""
    if len(probs) == 0:
        raise InputError(f"{fitted_on}: no validation samples; fitted predictors need a val split")
    thresholds, fallback = calibrate_thresholds(probs, labels, THRESHOLD)
    biases = {"prior": [float(x) for x in manifest.train_prior()], "valmean": probs.mean(axis=0).tolist(),
              "noise": noise_bias(model, card, device).tolist()}
    return Calibration([float(t) for t in thresholds], biases, fitted_on, [card.names[c] for c in fallback])
