"""What makes a model hold on real ensembles: the levers of the shipped model's training data, at
equal compute (the same optimiser steps of 32 windows), read off on real recordings it never sees.

  recipe's data       generated scores played by the instrument library (balanced ensembles, 30 %
                      solos, an outsider part in 30 % of recordings, every part within 6 dB, each
                      over the whole recording: `synth --balance --others 0.3 --solo 0.3`)
  + ensemble arrangement   the same scores set against each other as real ensembles are: parts
                      within 15 dB, 40 % of parts entering late or leaving early, an outsider (as
                      loud as the parts, +-6 dB) in half the recordings and alone in 10 %
                      (`--spread-db 15 --entries 0.4 --others 0.5 --others-db 6 --others-only 0.1`)
  + longer training   the arrangement's data, twice the steps (more compute: the lever `make model`
                      spends its time on)

Read off: each variant's best val mAP (its own val split), the window mAP of one rendered test split
(the recipe's data's), solo top-1 / top-3 on real single notes (`musicid-eval clips REALDEV`), and
on real mixtures (`musicid-eval events REALMIX`): segment-based and event-based micro F1, segment
mAP, instruments named per file that never play, the share of outsiders-only time named as one of
the 11. Nothing is fitted to the real sets: they are read, once per variant.
Usage: python benchmarks/ensembles.py --library build/model/instruments --clips ../shared/realdev
    --mixtures ../shared/realmix-dev [--out DIR]   (about 30 min on 2 cores with the defaults)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from clis import (
    ARRANGED,
    REAL_HEADS,
    RECIPE,
    equal_compute_options,
    generated,
    print_table,
    read_off,
    real_set_options,
    shard_set,
    train_steps,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    real_set_options(ap)
    equal_compute_options(ap)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.out or Path(tmp)).resolve()
        shards = {}
        for name, options in (("recipe", RECIPE), ("arranged", ARRANGED)):
            data = generated(root, name, args.library, args.recordings, 5, 0, *options)
            shards[name] = shard_set(root, name, [data], 0.1)
        variants = {
            "recipe's data": ("recipe", args.epochs),
            "+ ensemble arrangement": ("arranged", args.epochs),
            "+ longer training (2x steps)": ("arranged", 2 * args.epochs),
        }
        rows = {}
        for name, (data, epochs) in variants.items():
            run = root / "runs" / f"{data}-{epochs}"
            train_steps(shards[data], run, epochs, args.epoch_steps)
            rows[name] = read_off(name, run, shards["recipe"], args.clips, args.mixtures, root)
    print(
        f"\n{args.recordings} generated recordings x 5 s per data set; {args.epochs} x "
        f"{args.epoch_steps} steps "
        "of 32 windows (the last row twice that); rendered test = the recipe's data's test split; "
        "real: "
        f"{args.clips.name} (solo), {args.mixtures.name} (mixtures)"
    )
    print_table(["val mAP (own)", "rendered test mAP", *REAL_HEADS], rows)


if __name__ == "__main__":
    main()
