"""What each ingredient of the shipped model's recipe brings, at equal compute (the same optimiser
steps):

  SoundFonts only     generated scores played by the library's three General MIDI SoundFonts
  + real samples      the same scores, each part drawn from recorded samples (SFZ) or a SoundFont
  + real scores       plus music21's Bach chorales orchestrated onto MusicNet's ensembles
  + augmentation      the same data, plus `musicid-train --conditions 0.5`

Every variant is scored on one rendered test split (generated scores played by samples and
SoundFonts, the "+ real samples" data's test folder: window-level mAP), by its own best val mAP, and
with `--clips DIR` on labelled real clips (realdev's shape: solo top-1/top-3, clip mAP, highest
probability on the other instruments). Needs an instrument library (`musicid-pipeline instruments
fetch DIR`).
Usage: python benchmarks/model_variants.py --library build/model/instruments [--clips DIR] [--out
DIR] (about 16 min on 2 cores with the defaults)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from clis import (
    RECIPE,
    best_val,
    cli,
    equal_compute_options,
    evaluate,
    generated,
    once,
    shard_set,
    train,
)

from musicid.pipeline.library import LIBRARY_FILE


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--clips", type=Path, default=None, help="Labelled real clips (labels.csv + audio/)."
    )
    equal_compute_options(ap)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        fonts = root / "fonts-library"  # the same library without its recorded samples
        fonts.mkdir(parents=True, exist_ok=True)
        lib = json.loads((args.library / LIBRARY_FILE).read_text())
        lib["instruments"] = [e for e in lib["instruments"] if e["kind"] == "sf2"]
        (fonts / LIBRARY_FILE).write_text(json.dumps(lib))
        data_fonts = generated(root, "fonts", fonts, args.recordings, 5, 0, *RECIPE)
        data_real = generated(root, "real", args.library, args.recordings, 5, 0, *RECIPE)
        scores = once(
            root / "scores",
            "musicid-pipeline",
            "render",
            str(root / "scores"),
            "--corpus",
            "bach",
            "--library",
            str(args.library.resolve()),
            "--seconds",
            "10",
            "--test-fraction",
            "0",
            "--seed",
            "0",
        )
        shards = {}
        for name, roots in (
            ("fonts", [data_fonts]),
            ("real", [data_real]),
            ("scores", [data_real, scores]),
        ):
            shards[name] = shard_set(root, name, roots, 0.1, "--extra-val")
        variants = {
            "SoundFonts only": ("fonts", 0.0),
            "+ real samples": ("real", 0.0),
            "+ real scores": ("scores", 0.0),
            "+ augmentation": ("scores", 0.5),
        }
        rows = {}
        for name, (data, conditions) in variants.items():
            run = root / "runs" / data / str(conditions)
            train(
                shards[data], run, args.epochs, conditions, "--epoch-steps", str(args.epoch_steps)
            )
            row = {
                "val": best_val(run),
                "test": evaluate(
                    run, shards["real"], "test", root / "eval" / data / str(conditions)
                )["mAP"],
            }
            if args.clips is not None:
                out = root / "clips" / data / str(conditions)
                cli(
                    "musicid-eval",
                    "clips",
                    str(args.clips),
                    "--model",
                    str(run),
                    "--out",
                    str(out),
                    "--overwrite",
                )
                c = json.loads((out / "clips.json").read_text())
                row |= {k: c[k] for k in ("top1", "top3", "clip_mAP")} | {
                    "others": c["others"]["mean_top_probability"]
                }
            rows[name] = row
            print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    print(
        f"\n{args.epochs} x {args.epoch_steps} steps of 32 windows each; test = the rendered test "
        "split of the "
        "'+ real samples' data" + (f"; real clips: {args.clips.name}" if args.clips else "")
    )
    heads = ["val mAP (own)", "rendered test mAP"] + (
        ["clips top-1", "top-3", "clip mAP", "others' top p"] if args.clips else []
    )
    print("| variant | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |")


if __name__ == "__main__":
    main()
