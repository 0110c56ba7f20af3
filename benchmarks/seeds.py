"""How far two trainings of the same recipe differ on real recordings, and what averaging several
trained models (an ensemble: the mean of their probabilities) buys there.

MODELS are trained models (shipped model folders or run folders), e.g. the shipped model (seed 0)
and the recipe's training command again with another seed, or with more epochs:

  musicid-train --shards SHARDS --out runs/seed1 --epochs 4 --lr 2e-3 --conditions 0.5 --seed 1

Every model alone, and every ensemble asked for, gets the same calibration procedure (as `python
-m musicid.recipes.calibrate` fits it: thresholds, biases but the training prior, event rules, on
the val split of --calibration) and is read off: window mAP on --shards' test split (rendered
music), then on real recordings it never saw, solo top-1 / top-3 (`musicid-eval clips`) and, on
real mixtures with the events predictor (`musicid-eval events`), segment-based and event-based
micro F1, segment mAP, instruments named per file that never play, the share of outsiders-only time
named as one of the 11. Nothing is fitted to the real sets. An ensemble's rendered predictions are
the mean of its members' (each model predicts each split once); on the real sets it predicts as one
model whose windows go through every member.
Usage: python benchmarks/seeds.py MODEL MODEL [...] --calibration SHARDS --shards SHARDS
    --clips REALDEV --mixtures REALMIX [--ensemble 0,1 ...]   (about 3 min per model on 2 cores)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from clis import REAL_HEADS, print_table, real_row, real_set_options

from musicid.infer.clips import score_clips
from musicid.infer.evaluate import check_compatible
from musicid.infer.loaded import LoadedRun, load_run
from musicid.infer.sed import evaluate_folder
from musicid.metrics import per_class_ap
from musicid.recipes.calibrate import refit
from musicid.run import EVENTS
from musicid.shardset import Manifest, read_manifest, shard_urls
from musicid.validation import Predictions, collect_predictions


@dataclass
class Read:
    """A model and its predictions on the calibration data's val split and the rendered test."""

    run: LoadedRun
    val: Predictions
    test: Predictions


def read(model: Path, cal: tuple[Path, Manifest], test: tuple[Path, Manifest]) -> Read:
    """`cal`, `test`: shard folders with their manifests, read once for every model."""
    run = load_run(model)
    splits = []
    for (shards, manifest), split in ((cal, "val"), (test, "test")):
        check_compatible(run, manifest, shards)
        urls = shard_urls(manifest, shards, split)
        splits.append(collect_predictions(run.predict_proba, urls, run.card))
    return Read(run, *splits)


def ensemble(members: list[Read]) -> Read:
    """The members as one model: the mean of their probabilities (windows normalised by the first
    member's card: members trained on one shard set share it)."""

    def predict(x: np.ndarray) -> np.ndarray:
        return np.mean([m.run.predict_proba(x) for m in members], axis=0)

    def mean(split: str) -> Predictions:
        first = getattr(members[0], split)
        return replace(first, probs=np.mean([getattr(m, split).probs for m in members], axis=0))

    return Read(replace(members[0].run, predict_proba=predict), mean("val"), mean("test"))


def row(label: str, r: Read, cal: Manifest, cal_shards: Path, clips: Path, mixtures: Path) -> dict:
    run = replace(r.run, calibration=refit(r.run, cal, r.val, cal_shards))
    present = r.test.labels.any(axis=0)
    test_map = float(np.mean(per_class_ap(r.test.probs[:, present], r.test.labels[:, present])))
    out = {
        "test": test_map,
        **real_row(score_clips(run, clips), evaluate_folder(run, mixtures, EVENTS)),
    }
    print(f"{label}: " + ", ".join(f"{k} {v:.3f}" for k, v in out.items()), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", type=Path, nargs="+", help="Trained models (run or model folders).")
    ap.add_argument(
        "--calibration", type=Path, required=True, help="Shards whose val split calibrates."
    )
    ap.add_argument(
        "--shards", type=Path, required=True, help="Shards whose test split is the rendered test."
    )
    ap.add_argument(
        "--ensemble",
        action="append",
        default=None,
        help="Members of one ensemble, by position in MODELS, comma-separated (repeatable; "
        "default: all MODELS).",
    )
    real_set_options(ap)
    args = ap.parse_args()
    positions = [str(i) for i in range(len(args.models))]
    groups = [g.split(",") for g in args.ensemble or [",".join(positions)]]
    if any(i not in positions for g in groups for i in g):
        ap.error(f"--ensemble: positions in MODELS are {', '.join(positions)}")
    cal = read_manifest(args.calibration)
    test = (args.shards, read_manifest(args.shards))
    reads = [read(m, (args.calibration, cal), test) for m in args.models]
    models = {str(m): r for m, r in zip(args.models, reads, strict=True)}
    for g in groups:
        label = "mean of " + " + ".join(str(args.models[int(i)]) for i in g)
        models[label] = ensemble([reads[int(i)] for i in g])
    rows = {
        label: row(label, r, cal, args.calibration, args.clips, args.mixtures)
        for label, r in models.items()
    }
    singles = np.array([list(rows[str(m)].values()) for m in args.models])
    rows["spread of the single models (max - min)"] = dict(
        zip(rows[str(args.models[0])], singles.max(axis=0) - singles.min(axis=0), strict=True)
    )
    print(
        f"\ncalibration: {args.calibration} (val); rendered test: {args.shards} (test); real: "
        f"{args.clips.name} (solo), {args.mixtures.name} (mixtures, events predictor)"
    )
    print_table(["rendered test mAP", *REAL_HEADS], rows)


if __name__ == "__main__":
    main()
