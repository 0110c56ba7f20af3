"""More temporal context: windows of 2 s instead of 1 s (the hop stays 0.5 s, so the timeline keeps
its resolution and a recording gives as many windows), at the same optimiser steps of 32 windows
(a 2-s window costs twice the frames), read off on real recordings no model here ever sees.

Each variant trains on the same generated recordings (arranged as real ensembles; the data of
benchmarks/held_out.py's "all players" row, reused with the same --out) cut into its windows, and
is calibrated on the same 20-s generated mixtures cut the same way. Read off: val mAP (its own val
split), window mAP on those mixtures' test split (its own windows), and the real sets as
benchmarks/ensembles.py reads them. Nothing is fitted to the real sets.
Usage: python benchmarks/context.py --library build/model/instruments --clips ../shared/realdev
    --mixtures ../shared/realmix-dev [--windows 1,2] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from clis import (
    ARRANGED,
    REAL_HEADS,
    calibrated,
    equal_compute_options,
    generated,
    print_table,
    read_off,
    real_set_options,
    shard_set,
    train_steps,
)
from held_out import CAL_RECORDINGS, CAL_SECONDS, CAL_SEED

HOP = "0.5"


def main() -> None:
    ap = argparse.ArgumentParser()
    real_set_options(ap)
    ap.add_argument("--windows", default="1,2", help="Window lengths in seconds, comma-separated.")
    equal_compute_options(ap)
    ap.set_defaults(epochs=6, epoch_steps=200)  # 2-s windows of 5-s recordings: 256 steps a pass
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.out or Path(tmp)).resolve()
        train = generated(root, "train-all", args.library, args.recordings, 5, 0, *ARRANGED)
        cal = generated(
            root, "cal-all", args.library, CAL_RECORDINGS, CAL_SECONDS, CAL_SEED, *ARRANGED
        )
        rows = {}
        for window in args.windows.split(","):
            # 1-s windows at a 0.5-s hop are build-shards' defaults: the held-out benchmark's shards
            tag = "all" if float(window) == 1 else f"all-{window}s"
            cut = ("--window", window, "--hop", HOP) if tag != "all" else ()
            shards = shard_set(root, f"train-{tag}", [train], 0.1, *cut)
            cal_shards = shard_set(root, f"cal-{tag}", [cal], 0.9, *cut)
            steps = f"{tag}-{args.epochs}x{args.epoch_steps}"
            trained = train_steps(shards, root / "runs" / steps, args.epochs, args.epoch_steps)
            run = calibrated(trained, cal_shards, root / "calibrated" / steps)
            name = f"{window}-s windows"
            rows[name] = read_off(name, run, cal_shards, args.clips, args.mixtures, root)
    print(
        f"\n{args.recordings} generated recordings x 5 s (arranged), hop {HOP} s; {args.epochs} x "
        f"{args.epoch_steps} steps of 32 windows; calibration and test: {CAL_RECORDINGS} x "
        f"{CAL_SECONDS} s; real: {args.clips.name} (solo), {args.mixtures.name} (mixtures)"
    )
    print_table(["val mAP (own)", "20-s mixtures' test mAP", *REAL_HEADS], rows)


if __name__ == "__main__":
    main()
