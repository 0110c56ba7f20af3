"""Evaluation of a trained run on a shard split: predictions, calibration on val, predictors,
metrics at the window or the frame level, per-recording results and bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicid.errors import InputError
from musicid.metrics import score_sets
from musicid.records import differing_fields
from musicid.run import DEFAULT_PREDICTOR, THRESHOLD
from musicid.shardset import Manifest, read_manifest, shard_urls
from musicid.validation import Predictions, collect_predictions, fit_calibration

from .bootstrap import N_BOOT, Resampler, intervals, per_recording
from .frames import Rows, to_frames
from .loaded import LoadedRun
from .predictors import FITTED, MAX_INSTRUMENTS, predict

# what is scored: the shards' windows, or feature frames (windows averaged)
LEVELS = ("window", "frame")


def rows_at(
    pred: Predictions, level: str, frame_rate: float, target_rate: float | None, hop_s: float
) -> Rows:
    """What gets scored: a row per window, or per feature frame (`frame_rate`, resampled to
    `target_rate`)."""
    if level == "frame":
        starts = np.round(pred.start_s * frame_rate).astype(np.int64)
        return to_frames(pred.probs, pred.rolls, pred.recordings, starts, frame_rate, target_rate)
    return Rows(pred.probs, pred.labels, np.asarray(pred.recordings, dtype=object), 1 / hop_s)


@dataclass(frozen=True)
class EvalOptions:
    split: str = "test"
    predictors: tuple[str, ...] = (DEFAULT_PREDICTOR,)
    threshold: float = THRESHOLD
    max_instruments: int = MAX_INSTRUMENTS
    level: str = LEVELS[0]
    frame_rate: float | None = None  # frame level on a coarser grid (frames per second)
    # score these classes only (e.g. a published protocol's)
    instruments: tuple[str, ...] | None = None
    n_boot: int = N_BOOT
    seed: int = 0
    workers: int = 0
    url_template: str | None = None


def check_compatible(run: LoadedRun, manifest: Manifest, shards: Path) -> None:
    """Refuse shards whose features or window length differ from what the model was trained on."""
    ours = {"features": run.card.features.to_dict(), "n_frames": run.card.n_frames}
    theirs = {"features": manifest.features.to_dict(), "n_frames": manifest.n_frames}
    diff = differing_fields(ours, theirs)
    if diff:
        raise InputError(f"{run.path} does not fit the shards in {shards}: " + "; ".join(diff))


def instrument_columns(names: list[str], wanted: tuple[str, ...] | None) -> list[int]:
    if not wanted:
        return list(range(len(names)))
    lower = [n.lower() for n in names]
    unknown = [w for w in wanted if w.lower() not in lower]
    if unknown:
        raise InputError(
            f"--instruments: unknown {', '.join(unknown)}; choose from {', '.join(names)}"
        )
    twice = sorted({w for w in wanted if [x.lower() for x in wanted].count(w.lower()) > 1})
    if twice:
        raise InputError(f"--instruments: {', '.join(twice)} given more than once")
    return [lower.index(w.lower()) for w in wanted]


def evaluate(run: LoadedRun, shards: Path, opts: EvalOptions = EvalOptions()) -> dict:
    """Calibrate on val, predict the split, and score every requested predictor at the requested
    level."""
    manifest = read_manifest(shards)
    check_compatible(run, manifest, shards)
    frame = opts.level == "frame"
    if frame and manifest.window.segmentation != "windows":
        raise InputError(
            f"{shards}: --level frame needs shards of fixed windows, not "
            f"{manifest.window.segmentation}"
        )
    if manifest.splits[opts.split].samples == 0:
        raise InputError(f"{shards}: the {opts.split} split is empty")
    rate, hop = run.card.features.frame_rate, manifest.window.hop_s

    def rows_of(split: str) -> Rows:
        urls = shard_urls(manifest, shards, split, opts.url_template)
        return rows_at(
            collect_predictions(run.predict_proba, urls, run.card, opts.workers, frame),
            opts.level,
            rate,
            opts.frame_rate,
            hop,
        )

    cal = None
    if manifest.splits["val"].samples:
        # refitted on the val split of these shards, at the level scored: it goes into the report
        # only; the run's own calibration (written by training) stays as it is, and the run folder
        # may be read-only
        urls = shard_urls(manifest, shards, "val", opts.url_template)
        val = collect_predictions(run.predict_proba, urls, run.card, opts.workers, frame)
        rows = rows_at(val, opts.level, rate, opts.frame_rate, hop)
        cal = fit_calibration(
            run.predict_proba,
            run.card,
            manifest,
            val,
            f"{shards} val split, {opts.level} level",
            (rows.probs, rows.labels),
        )
    elif fitted := sorted(set(opts.predictors) & set(FITTED)):
        raise InputError(
            f"{shards}: the val split is empty; predictors {', '.join(fitted)} need validation "
            "data for their calibration"
        )
    rows = rows_of(opts.split)
    cols = instrument_columns(run.names, opts.instruments)
    names = [run.names[c] for c in cols]
    sets = {
        n: predict(n, rows.probs, cal, opts.threshold, opts.max_instruments)[:, cols]
        for n in opts.predictors
    }
    scored = Rows(rows.probs[:, cols], rows.labels[:, cols], rows.recordings, rows.rate)
    main = opts.predictors[0]
    return {
        "run": str(run.path),
        "shards": str(shards),
        "split": opts.split,
        "level": opts.level,
        "frame_rate": rows.rate if frame else None,
        "instruments": names,
        "calibration": cal.to_dict() if cal else None,
        "threshold": opts.threshold,
        "max_instruments": opts.max_instruments,
        "results": {n: score_sets(s, scored.probs, scored.labels, names) for n, s in sets.items()},
        "per_recording": per_recording(scored, sets[main], names, manifest.ensembles),
        "intervals": intervals([Resampler(scored, sets[main])], opts.n_boot, opts.seed)[0],
        "rows": scored,
        "sets": sets,
    }
