"""Validation on players training never heard: hold whole instruments of the library (a SoundFont
bank, sample packs) out of training, and fit the calibration (thresholds, biases, event rules) on
mixtures they alone play, at equal compute, read off on real recordings no model here ever sees.

  all players            trained on the arranged data played by the whole library, calibrated on
                         20-s arranged mixtures played by the same players (what `make model` does)
  held out, own players  trained without the held-out instruments, calibrated on mixtures played
                         by its training players
  held out, unheard      the same network, calibrated on mixtures played by the held-out
                         instruments alone (`synth --players`): thresholds and event rules fitted
                         where every timbre is new, as in a user's recording

Read off: each network's val mAP (its own val split), the window mAP on the test split of the
held-out instruments' mixtures ("unheard players": heard in training by the first network only),
and the real sets as benchmarks/ensembles.py reads them (solo top-1 / top-3, mixtures segment and
event F1, segment mAP, instruments named that never play, outsiders-only time named). Nothing is
fitted to the real sets: they are read once per row.
Usage: python benchmarks/held_out.py --library build/model/instruments --clips ../shared/realdev
    --mixtures ../shared/realmix-dev [--epochs 4] [--out DIR]
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

# one of the two Fluid-family SoundFonts (with its own piano and cello recordings), one of the two
# piano sample packs, two orchestral and two outsider sample packs: every class keeps players on
# both sides
HOLD_OUT = (
    "MuseScore_General,salamander-piano,tonejs-cello,tonejs-clarinet,tonejs-saxophone,tonejs-organ"
)
CAL_RECORDINGS, CAL_SECONDS, CAL_SEED = 300, 20, 12  # as the recipe's calibration data


def main() -> None:
    ap = argparse.ArgumentParser()
    real_set_options(ap)
    ap.add_argument(
        "--hold-out", default=HOLD_OUT, help="The library's instruments held out of training."
    )
    ap.add_argument(
        "--seeds",
        default="0,1",
        help="Training seeds, comma-separated: each network is trained once per seed, so that the "
        "rows show how far two trainings of the same data differ.",
    )
    equal_compute_options(ap)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.out or Path(tmp)).resolve()

        def data(name: str, recordings: int, seconds: int, seed: int, val: float, *players: str):
            made = generated(
                root, name, args.library, recordings, seconds, seed, *ARRANGED, *players
            )
            return shard_set(root, name, [made], val)

        hold = ("--hold-out", args.hold_out)
        train = {
            "all": data("train-all", args.recordings, 5, 0, 0.1),
            "held": data("train-held", args.recordings, 5, 0, 0.1, *hold),
        }
        cal = {
            "all": data("cal-all", CAL_RECORDINGS, CAL_SECONDS, CAL_SEED, 0.9),
            "own": data("cal-own", CAL_RECORDINGS, CAL_SECONDS, CAL_SEED, 0.9, *hold),
            "unheard": data(
                "cal-unheard",
                CAL_RECORDINGS,
                CAL_SECONDS,
                CAL_SEED,
                0.9,
                "--players",
                args.hold_out,
            ),
        }
        variants = {
            "all players": ("all", "all"),
            "held out, calibrated on its own players": ("held", "own"),
            "held out, calibrated on unheard players": ("held", "unheard"),
        }
        rows = {}
        for seed in map(int, args.seeds.split(",")):
            for name, (net, fit) in variants.items():
                runs = root / "runs" / f"{net}-s{seed}"
                trained = train_steps(train[net], runs, args.epochs, args.epoch_steps, seed)
                run = calibrated(trained, cal[fit], root / "calibrated" / f"{net}-{fit}-s{seed}")
                label = f"{name}, seed {seed}"
                rows[label] = read_off(label, run, cal["unheard"], args.clips, args.mixtures, root)
    print(
        f"\n{args.recordings} generated recordings x 5 s per training set (arranged); "
        f"{args.epochs} x {args.epoch_steps} steps of 32 windows (seeds {args.seeds}); held out: "
        f"{args.hold_out}; calibration data {CAL_RECORDINGS} x {CAL_SECONDS} s; real: "
        f"{args.clips.name} (solo), {args.mixtures.name} (mixtures)"
    )
    print_table(["val mAP (own)", "unheard players' test mAP", *REAL_HEADS], rows)


if __name__ == "__main__":
    main()
