"""Evaluation of a trained run on a shard split: predictions, calibration on val, predictors, metrics."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader

from musicid.errors import InputError
from musicid.pipeline.manifest import Manifest, differing_fields, read_manifest
from musicid.pipeline.shards import collate, log_bad, read_stages, shard_urls

from . import calibration
from .checkpoint import LoadedRun, ModelCard
from .metrics import score_sets
from .predictors import FITTED, predict

log = logging.getLogger("musicid")


def split_loader(urls: list[str], mean, std, batch_size: int = 64, workers: int = 0) -> DataLoader:
    """Every sample of the given shards once, in order, in batches (the last one partial)."""
    pipeline = wds.DataPipeline(wds.SimpleShardList(urls), wds.split_by_worker, *read_stages(mean, std),
                                wds.batched(batch_size, collation_fn=collate, partial=True))
    return DataLoader(pipeline, batch_size=None, num_workers=min(workers, len(urls)),
                      multiprocessing_context="fork" if workers else None)


@torch.no_grad()
def collect_predictions(model: torch.nn.Module, urls: list[str], card: ModelCard, device: torch.device,
                        workers: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Probabilities, labels and recording ids of every sample in `urls` (unreadable shards skipped, logged)."""
    was_training = model.training
    model.eval()
    probs, labels, recs = [], [], []
    for x, y, r, bad in split_loader(urls, card.mean, card.std, workers=workers):
        for b in bad:
            log_bad(b)
        if x is None:
            continue
        probs.append(torch.sigmoid(model(x.to(device)).float()).cpu().numpy())
        labels.append(y.numpy())
        recs += r
    model.train(was_training)
    if not probs:
        return np.zeros((0, len(card.names))), np.zeros((0, len(card.names))), []
    return np.concatenate(probs), np.concatenate(labels), recs


def check_compatible(run: LoadedRun, manifest: Manifest, shards: Path) -> None:
    """Refuse shards whose features or window length differ from what the model was trained on."""
    ours = {"features": run.card.features.to_dict(), "n_frames": run.card.n_frames}
    theirs = {"features": manifest.features.to_dict(), "n_frames": manifest.n_frames}
    diff = differing_fields(ours, theirs)
    if diff:
        raise InputError(f"{run.path} does not fit the shards in {shards}: " + "; ".join(diff))


def train_prior(manifest: Manifest, names: list[str]) -> list[float]:
    """Label frequency per class in the train split: the `prior` bias."""
    train = manifest.splits["train"]
    return [train.instrument_positives[n] / max(train.samples, 1) for n in names]


def fit_calibration(run: LoadedRun, manifest: Manifest, shards: Path, url_template: str | None = None,
                    workers: int = 0) -> calibration.Calibration:
    """Thresholds and biases from the train manifest and the val split only, never the test split."""
    probs, labels, _ = collect_predictions(run.model, shard_urls(manifest, shards, "val", url_template), run.card,
                                           run.device, workers)
    noise = calibration.noise_bias(run.model, run.card.features, run.card.window.window_s, run.card.n_frames,
                                   run.card.mean, run.card.std, run.device)
    return calibration.fit(probs, labels, train_prior(manifest, run.names), noise, run.names,
                           f"{shards} val split")


def evaluate(run: LoadedRun, shards: Path, split: str = "test", predictors: tuple[str, ...] = ("top3",),
             threshold: float = 0.5, max_instruments: int = 3, workers: int = 0,
             url_template: str | None = None) -> dict:
    """Calibrate on val (stored beside the checkpoint), predict `split`, and score every requested predictor."""
    manifest = read_manifest(shards)
    check_compatible(run, manifest, shards)
    if manifest.splits[split].samples == 0:
        raise InputError(f"{shards}: the {split} split is empty")
    if manifest.splits["val"].samples:
        run.calibration = fit_calibration(run, manifest, shards, url_template, workers)
        calibration.write_calibration(run.path, run.calibration)
    elif fitted := sorted(set(predictors) & set(FITTED)):
        raise InputError(f"{shards}: the val split is empty; predictors {', '.join(fitted)} need validation "
                         "data for their calibration")
    probs, labels, _ = collect_predictions(run.model, shard_urls(manifest, shards, split, url_template), run.card,
                                           run.device, workers)
    results = {name: score_sets(predict(name, probs, run.calibration, threshold, max_instruments), probs, labels,
                                run.names) for name in predictors}
    return {"run": str(run.path), "shards": str(shards), "split": split,
            "calibration": run.calibration.to_dict() if run.calibration else None, "threshold": threshold,
            "max_instruments": max_instruments, "results": results, "probs": probs, "labels": labels}
