"""musicid-eval at the frame level on a test split of MusicNet's size: 10 recordings, 25 minutes of
audio.

Synthetic data (10 test recordings of 150 s, 10 train, some of them val); an untrained ResNet18 in a
complete checkpoint (inference cost does not depend on the weights). Times `evaluate` at the window
level (the baseline) and at the frame level with the 7-instrument subset, both with calibration on
val and 1,000 bootstrap resamples, in the same run; medians of --repeats.
Usage: python benchmarks/eval_frames.py [--seconds 150]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from predict_speed import write_checkpoint

from musicid.infer.evaluate import EvalOptions, evaluate
from musicid.infer.loaded import load_run
from musicid.pipeline.build import BuildConfig, build_shards
from musicid.pipeline.synth import synthesize

SEVEN = ("piano", "violin", "viola", "cello", "clarinet", "bassoon", "horn")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--seconds", type=float, default=150.0, help="length of each of the 10 test recordings"
    )
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        ids = synthesize(root, recordings=20, seconds=args.seconds, seed=0)
        base = root / "musicnet" / "musicnet"
        # synth's test recordings + moved ones: MusicNet's 10
        for rid in ids["train"][-(10 - len(ids["test"])) :]:
            for kind, ext in (("data", "wav"), ("labels", "csv")):
                shutil.move(
                    base / f"train_{kind}" / f"{rid}.{ext}", base / f"test_{kind}" / f"{rid}.{ext}"
                )
        manifest = build_shards(
            root, Path(tmp) / "shards", BuildConfig(val_fraction=0.3, shards_per_split=4)
        ).manifest
        write_checkpoint(Path(tmp) / "model.pt")
        run = load_run(Path(tmp) / "model.pt", "cpu")
        timings = {}
        for level in ("window", "frame"):
            opts = EvalOptions(
                predictors=("top3", "calibrated"),
                level=level,
                instruments=SEVEN if level == "frame" else None,
            )
            runs = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                report = evaluate(run, Path(tmp) / "shards", opts)
                runs.append(time.perf_counter() - t)
            timings[level] = (runs, report["results"]["top3"]["samples"])
    test = manifest.splits["test"]
    print(
        f"test split: {len(test.recordings)} recordings, {test.seconds / 60:.1f} min, "
        f"{test.samples} windows; "
        f"CPU {torch.get_num_threads()} threads; median of {args.repeats}; includes val "
        "calibration and "
        "1,000 bootstrap resamples"
    )
    for level, (runs, rows) in timings.items():
        print(
            f"{level:<7} level: {statistics.median(runs):6.1f} s ({rows} rows scored; runs "
            f"{[round(r, 1) for r in runs]})"
        )


if __name__ == "__main__":
    main()
