"""What training's validation and evaluation share: a model's predictions over a shard split, and
fitting a calibration on a val split (per-class thresholds, the three biases and the event rules),
so that a calibration means the same whichever command fitted it.

A model is used here through a `Predict` function (normalised windows -> probabilities), whichever
runtime computes it: the trainer's PyTorch network (`musicid.network.predictor`) or a loaded run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicid.errors import InputError
from musicid.events import fit_event_rules, regions
from musicid.features import normalise
from musicid.metrics import calibrate_thresholds
from musicid.run import INFERENCE_BATCH, THRESHOLD, Calibration, ModelCard, Predict
from musicid.shardset import Manifest, loader, log_bad

NOISE_WINDOWS = 32


@dataclass
class Predictions:
    """Every sample of a split: window probabilities and labels, and what the frame level needs."""

    probs: np.ndarray  # [N, C]
    labels: np.ndarray  # [N, C]
    recordings: list[str]
    start_s: np.ndarray  # [N]
    rolls: np.ndarray | None  # [N, C, T] uint8 frame activity, when collected

    def sequences(self, window_s: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per recording, its windows in time order: (probabilities, labels, edges of the regions
        they stand for), as the event rules are fitted on."""
        recs = np.asarray(self.recordings, dtype=object)
        out = []
        for rec in sorted(set(self.recordings)):
            idx = np.flatnonzero(recs == rec)
            idx = idx[np.argsort(self.start_s[idx], kind="stable")]
            starts = self.start_s[idx]
            out.append(
                (
                    self.probs[idx],
                    self.labels[idx],
                    regions(starts, starts + window_s, starts[-1] + window_s),
                )
            )
        return out


def collect_predictions(
    predict: Predict, urls: list[str], card: ModelCard, workers: int = 0, with_roll: bool = False
) -> Predictions:
    """Probabilities and labels of every sample in `urls` (unreadable shards skipped, logged)."""
    probs, labels, infos = [], [], []
    batches = (
        loader(urls, card.mean, card.std, INFERENCE_BATCH, workers, with_roll=with_roll)
        if urls
        else []
    )
    # an empty split (e.g. no val recordings) has no shards: no predictions
    for x, y, info, bad in batches:
        for b in bad:
            log_bad(b)
        if x is None:
            continue
        probs.append(predict(x.numpy()))
        labels.append(y.numpy())
        infos += info
    c = len(card.names)
    return Predictions(
        np.concatenate(probs) if probs else np.zeros((0, c)),
        np.concatenate(labels) if labels else np.zeros((0, c)),
        [i.recording for i in infos],
        np.array([i.start_s for i in infos]),
        np.stack([i.roll for i in infos]) if with_roll and infos else None,
    )


def noise_bias(predict: Predict, card: ModelCard, seed: int = 0) -> np.ndarray:
    """Mean prediction on white noise at several levels, through the same feature function."""
    rng = np.random.default_rng(seed)
    features = card.features
    n = int(card.window.window_s * features.sample_rate)
    specs = [
        normalise(
            features.compute(
                (level * rng.standard_normal(n)).astype(np.float32), features.sample_rate
            )[:, : card.n_frames],
            card.mean,
            card.std,
        )
        for level in np.geomspace(1e-3, 0.3, NOISE_WINDOWS)
    ]
    return predict(np.stack(specs)).mean(axis=0)


def fit_calibration(
    predict: Predict,
    card: ModelCard,
    manifest: Manifest,
    val: Predictions,
    fitted_on: str,
    scored: tuple[np.ndarray, np.ndarray] | None = None,
) -> Calibration:
    """The one place a calibration is fitted (by training and by evaluation), on val predictions:
    thresholds maximising each class's F1, the prior work's biases (train label frequency, mean val
    prediction, mean prediction on white noise), and per class the event rule (musicid.events) that
    makes the best events of the val recordings' windows. `scored`: (probabilities, labels) of the
    rows evaluation scores when they are not the windows (frames): thresholds and the mean
    prediction are fitted on those."""
    if len(val.probs) == 0:
        raise InputError(f"{fitted_on}: no validation samples; fitted predictors need a val split")
    probs, labels = scored or (val.probs, val.labels)
    thresholds, fallback = calibrate_thresholds(probs, labels, THRESHOLD)
    biases = {
        "prior": [float(x) for x in manifest.train_prior()],
        "valmean": probs.mean(axis=0).tolist(),
        "noise": noise_bias(predict, card).tolist(),
    }
    rules = fit_event_rules(val.sequences(card.window.window_s), [float(t) for t in thresholds])
    return Calibration(
        [float(t) for t in thresholds],
        biases,
        fitted_on,
        [card.names[c] for c in fallback],
        events=[r.to_dict() for r in rules],
    )
