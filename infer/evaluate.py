"""Evaluation of a trained run on a shard split: predictions, calibration on val, predictors, metrics at the
window or the frame level, per-recording results and bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader

from musicid.errors import InputError
from musicid.pipeline.manifest import Manifest, differing_fields, read_manifest
from musicid.pipeline.shards import collate, log_bad, read_stages, shard_urls

from . import calibration
from .bootstrap import N_BOOT, Resampler, intervals, per_recording
from .checkpoint import LoadedRun, ModelCard
from .frames import Rows, to_frames
from .metrics import score_sets
from .predictors import DEFAULT, FITTED, MAX_INSTRUMENTS, THRESHOLD, predict

LEVELS = ("window", "frame")  # what is scored: the shards' windows, or feature frames (windows averaged)



@dataclass
class Predictions:
    """Every sample of a split: window probabilities and labels, and what the frame level needs."""

    probs: np.ndarray  # [N, C]
    labels: np.ndarray  # [N, C]
    recordings: list[str]
    start_s: np.ndarray  # [N]
    rolls: np.ndarray | None  # [N, C, T] uint8 frame activity, when collected

    def rows(self, level: str, frame_rate: float, target_rate: float | None, hop_s: float) -> Rows:
        if level == "frame":
            starts = np.round(self.start_s * frame_rate).astype(np.int64)
            return to_frames(self.probs, self.rolls, self.recordings, starts, frame_rate, target_rate)
        return Rows(self.probs, self.labels, np.asarray(self.recordings, dtype=object), 1 / hop_s)


@dataclass(frozen=True)
class EvalOptions:
    split: str = "test"
    predictors: tuple[str, ...] = (DEFAULT,)
    threshold: float = THRESHOLD
    max_instruments: int = MAX_INSTRUMENTS
    level: str = LEVELS[0]
    frame_rate: float | None = None  # frame level on a coarser grid (frames per second)
    instruments: tuple[str, ...] | None = None  # score these classes only (e.g. a published protocol's)
    n_boot: int = N_BOOT
    seed: int = 0
    workers: int = 0
    url_template: str | None = None


def split_loader(urls: list[str], mean, std, batch_size: int = 64, workers: int = 0,
                 with_roll: bool = False) -> DataLoader:
    """Every sample of the given shards once, in order, in batches (the last one partial)."""
    pipeline = wds.DataPipeline(wds.SimpleShardList(urls), wds.split_by_worker, *read_stages(mean, std, with_roll),
                                wds.batched(batch_size, collation_fn=collate, partial=True))
    return DataLoader(pipeline, batch_size=None, num_workers=min(workers, len(urls)),
                      multiprocessing_context="fork" if workers else None)


@torch.no_grad()
def collect_predictions(model: torch.nn.Module, urls: list[str], card: ModelCard, device: torch.device,
                        workers: int = 0, with_roll: bool = False) -> Predictions:
    """Probabilities and labels of every sample in `urls` (unreadable shards skipped, logged)."""
    was_training = model.training
    model.eval()
    probs, labels, infos = [], [], []
    batches = split_loader(urls, card.mean, card.std, workers=workers, with_roll=with_roll) if urls else []
    for x, y, info, bad in batches:  # an empty split (e.g. no val recordings) has no shards: no predictions
        for b in bad:
            log_bad(b)
        if x is None:
            continue
        probs.append(model.predict_proba(x.to(device)).cpu().numpy())
        labels.append(y.numpy())
        infos += info
    model.train(was_training)
    c = len(card.names)
    return Predictions(np.concatenate(probs) if probs else np.zeros((0, c)),
                       np.concatenate(labels) if labels else np.zeros((0, c)), [i.recording for i in infos],
                       np.array([i.start_s for i in infos]),
                       np.stack([i.roll for i in infos]) if with_roll and infos else None)


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


def fit_on(model: torch.nn.Module, card: ModelCard, device: torch.device, manifest: Manifest, rows: Rows,
           fitted_on: str) -> calibration.Calibration:
    """The one place a calibration is fitted (by training and by evaluation): val rows, the train prior, noise."""
    noise = calibration.noise_bias(model, card.features, card.window.window_s, card.n_frames, card.mean, card.std,
                                   device)
    return calibration.fit(rows.probs, rows.labels, train_prior(manifest, card.names), noise, card.names, fitted_on)


def instrument_columns(names: list[str], wanted: tuple[str, ...] | None) -> list[int]:
    if not wanted:
        return list(range(len(names)))
    lower = [n.lower() for n in names]
    unknown = [w for w in wanted if w.lower() not in lower]
    if unknown:
        raise InputError(f"--instruments: unknown {', '.join(unknown)}; choose from {', '.join(names)}")
    twice = sorted({w for w in wanted if [x.lower() for x in wanted].count(w.lower()) > 1})
    if twice:
        raise InputError(f"--instruments: {', '.join(twice)} given more than once")
    return [lower.index(w.lower()) for w in wanted]


def evaluate(run: LoadedRun, shards: Path, opts: EvalOptions = EvalOptions()) -> dict:
    """Calibrate on val, predict the split, and score every requested predictor at the requested level."""
    manifest = read_manifest(shards)
    check_compatible(run, manifest, shards)
    frame = opts.level == "frame"
    if frame and manifest.window.segmentation != "windows":
        raise InputError(f"{shards}: --level frame needs shards of fixed windows, not {manifest.window.segmentation}")
    if manifest.splits[opts.split].samples == 0:
        raise InputError(f"{shards}: the {opts.split} split is empty")
    rate, hop = run.card.features.frame_rate, manifest.window.hop_s

    def rows_of(split: str) -> Rows:
        urls = shard_urls(manifest, shards, split, opts.url_template)
        return collect_predictions(run.model, urls, run.card, run.device, opts.workers, frame).rows(
            opts.level, rate, opts.frame_rate, hop)

    cal = None
    if manifest.splits["val"].samples:
        # refitted on the val split of these shards, at the level scored: it goes into the report only; the
        # run's own calibration (written by training) stays as it is, and the run folder may be read-only
        cal = fit_on(run.model, run.card, run.device, manifest, rows_of("val"),
                     f"{shards} val split, {opts.level} level")
    elif fitted := sorted(set(opts.predictors) & set(FITTED)):
        raise InputError(f"{shards}: the val split is empty; predictors {', '.join(fitted)} need validation "
                         "data for their calibration")
    rows = rows_of(opts.split)
    cols = instrument_columns(run.names, opts.instruments)
    names = [run.names[c] for c in cols]
    sets = {n: predict(n, rows.probs, cal, opts.threshold, opts.max_instruments)[:, cols] for n in opts.predictors}
    scored = Rows(rows.probs[:, cols], rows.labels[:, cols], rows.recordings, rows.rate)
    main = opts.predictors[0]
    return {"run": str(run.path), "shards": str(shards), "split": opts.split, "level": opts.level,
            "frame_rate": rows.rate if frame else None, "instruments": names,
            "calibration": cal.to_dict() if cal else None, "threshold": opts.threshold,
            "max_instruments": opts.max_instruments,
            "results": {n: score_sets(s, scored.probs, scored.labels, names) for n, s in sets.items()},
            "per_recording": per_recording(scored, sets[main], names, manifest.ensembles),
            "intervals": intervals([Resampler(scored, sets[main])], opts.n_boot, opts.seed)[0],
            "rows": scored, "sets": sets}
