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
import json
import tempfile
from pathlib import Path

from clis import cli, equal_compute_options, evaluate

RECIPE = ["--balance", "--others", "0.3", "--solo", "0.3"]
ARRANGED = [
    "--balance",
    "--solo",
    "0.3",
    "--others",
    "0.5",
    "--others-db",
    "6",
    "--others-only",
    "0.1",
    "--spread-db",
    "15",
    "--entries",
    "0.4",
]


def once(out: Path, *args: str) -> Path:
    """Make `out` with a musicid command unless an earlier run of this benchmark did (with
    --out)."""
    if not out.exists():
        cli(*args)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--clips", type=Path, required=True, help="Labelled real clips (labels.csv + audio/)."
    )
    ap.add_argument(
        "--mixtures", type=Path, required=True, help="Real mixtures (audio/ + reference.tsv)."
    )
    equal_compute_options(ap)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.out or Path(tmp)).resolve()
        shards = {}
        for name, options in (("recipe", RECIPE), ("arranged", ARRANGED)):
            data = once(
                root / f"data-{name}",
                "musicid-pipeline",
                "synth",
                str(root / f"data-{name}"),
                "--engine",
                "sampled",
                "--library",
                str(args.library.resolve()),
                "--recordings",
                str(args.recordings),
                "--seconds",
                "5",
                "--seed",
                "0",
                *options,
            )
            shards[name] = once(
                root / f"shards-{name}",
                "musicid-pipeline",
                "build-shards",
                str(data),
                str(root / f"shards-{name}"),
                "--val-fraction",
                "0.1",
                "--shards-per-split",
                "4",
            )
        variants = {
            "recipe's data": ("recipe", args.epochs),
            "+ ensemble arrangement": ("arranged", args.epochs),
            "+ longer training (2x steps)": ("arranged", 2 * args.epochs),
        }
        rows = {}
        for name, (data, epochs) in variants.items():
            run = root / "runs" / f"{data}-{epochs}"
            if not (run / "best.onnx").exists():
                cli(
                    "musicid-train",
                    "--shards",
                    str(shards[data]),
                    "--out",
                    str(run),
                    "--epochs",
                    str(epochs),
                    "--epoch-steps",
                    str(args.epoch_steps),
                    "--lr",
                    "2e-3",
                    "--conditions",
                    "0.5",
                    "--overwrite",
                )
            history = [
                json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            ]
            row = {
                "val": max(h["val_mAP"] for h in history),
                "test": evaluate(run, shards["recipe"], "test", root / "eval" / run.name)["mAP"],
            }
            clips, mix = root / "clips" / run.name, root / "events" / run.name
            cli(
                "musicid-eval",
                "clips",
                str(args.clips),
                "--model",
                str(run),
                "--out",
                str(clips),
                "--overwrite",
            )
            cli(
                "musicid-eval",
                "events",
                str(args.mixtures),
                "--model",
                str(run),
                "--out",
                str(mix),
                "--overwrite",
            )
            c = json.loads((clips / "clips.json").read_text())
            e = json.loads((mix / "report.json").read_text())
            row |= {
                "top1": c["top1"],
                "top3": c["top3"],
                "seg F1": e["segment"]["micro_f1"],
                "event F1": e["event"]["micro_f1"],
                "seg mAP": e["segment"]["mAP"],
                "never": e["named_never_playing"]["per_file"],
                "others": e["others_only"]["share_named"],
            }
            rows[name] = row
            print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    print(
        f"\n{args.recordings} generated recordings x 5 s per data set; {args.epochs} x "
        f"{args.epoch_steps} steps "
        "of 32 windows (the last row twice that); rendered test = the recipe's data's test split; "
        "real: "
        f"{args.clips.name} (solo), {args.mixtures.name} (mixtures)"
    )
    heads = [
        "val mAP (own)",
        "rendered test mAP",
        "solo top-1",
        "solo top-3",
        "mixtures segment F1",
        "event F1",
        "segment mAP",
        "named, never playing (per file)",
        "outsiders-only time named",
    ]
    print("| variant | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    for name, row in rows.items():
        print(
            f"| {name} | "
            + " | ".join(f"{v:.3f}" if k != "never" else f"{v:.2f}" for k, v in row.items())
            + " |"
        )


if __name__ == "__main__":
    main()
