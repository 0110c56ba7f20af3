"""The musicid command lines, run the way a user runs them, for the benchmarks that train models."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def equal_compute_options(ap: argparse.ArgumentParser) -> None:
    """The options of the benchmarks that train variants for the same steps: the instrument library,
    the data's size, the steps, and where to keep everything."""
    ap.add_argument("--library", type=Path, default=Path("build/model/instruments"))
    ap.add_argument("--recordings", type=int, default=1200)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument(
        "--epoch-steps",
        type=int,
        default=300,
        help="Optimiser steps per epoch (batch 32), the same for every variant: equal compute.",
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="Keep everything here (default: a temporary folder)."
    )


def real_set_options(ap: argparse.ArgumentParser) -> None:
    """The real recordings the variants are read off on (never fitted to)."""
    ap.add_argument(
        "--clips", type=Path, required=True, help="Labelled real clips (labels.csv + audio/)."
    )
    ap.add_argument(
        "--mixtures", type=Path, required=True, help="Real mixtures (audio/ + reference.tsv)."
    )


def cli(*args: str) -> None:
    """Run one musicid command quietly; a failure stops the benchmark with the command's own
    message."""
    subprocess.run([str(BIN / args[0]), *args[1:], "-q"], check=True, stdout=subprocess.DEVNULL)


def synth(
    out: Path,
    recordings: int,
    seed: int,
    varied: bool = True,
    soundfonts: tuple[Path, ...] = (),
    ensembles: tuple[str, ...] = (),
) -> Path:
    """The built-in scores on the sampled engine, ensembles drawn so every instrument has its share
    (or the given ones in turn); returns the dataset folder."""
    cli(
        "musicid-pipeline",
        "synth",
        str(out),
        "--engine",
        "sampled",
        "--recordings",
        str(recordings),
        "--seed",
        str(seed),
        "--balance",
        "--variety" if varied else "--no-variety",
        *(arg for font in soundfonts for arg in ("--soundfont", str(font))),
        *(["--ensembles", ",".join(ensembles)] if ensembles else []),
    )
    return out


def build(roots: list[Path], shards: Path, val_fraction: float) -> Path:
    cli(
        "musicid-pipeline",
        "build-shards",
        *map(str, roots),
        str(shards),
        "--val-fraction",
        str(val_fraction),
        "--shards-per-split",
        "2",
    )
    return shards


def train(shards: Path, run: Path, epochs: int, conditions: float, *extra: str) -> Path:
    cli(
        "musicid-train",
        "--shards",
        str(shards),
        "--out",
        str(run),
        "--epochs",
        str(epochs),
        "--lr",
        "2e-3",
        "--conditions",
        str(conditions),
        "--overwrite",
        *extra,
    )
    return run


def evaluate(run: Path, shards: Path, split: str, out: Path) -> dict:
    """Window-level results of `run` on one split (top3; AP and mAP do not depend on the
    predictor)."""
    cli(
        "musicid-eval",
        str(run),
        "--shards",
        str(shards),
        "--split",
        split,
        "--out",
        str(out),
        "--bootstrap",
        "10",
        "--overwrite",
    )
    return json.loads((out / "report.json").read_text())["results"]["top3"]


# the shipped model's data: balanced ensembles, an outsider part in 30 % of recordings, 30 % solos
RECIPE = ("--balance", "--others", "0.3", "--solo", "0.3")
# generated scores set against each other as real ensembles are: parts within 15 dB, 40 % of parts
# entering late or leaving early, an outsider (as loud as the parts, +-6 dB) in half the recordings
# and alone in 10 %, 30 % solos
ARRANGED = (
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
)


def once(out: Path, *args: str) -> Path:
    """Make `out` with a musicid command unless an earlier run of the benchmark did (with --out)."""
    if not out.exists():
        cli(*args)
    return out


def generated(
    root: Path, name: str, library: Path, recordings: int, seconds: int, seed: int, *options: str
) -> Path:
    """Generated recordings played by `library` with synth's `options` (e.g. ARRANGED), in
    `root/data-NAME` (made once)."""
    out = root / f"data-{name}"
    return once(
        out,
        "musicid-pipeline",
        "synth",
        str(out),
        "--engine",
        "sampled",
        "--library",
        str(library.resolve()),
        "--recordings",
        str(recordings),
        "--seconds",
        str(seconds),
        "--seed",
        str(seed),
        *options,
    )


def shard_set(root: Path, name: str, data: list[Path], val: float, *extra: str) -> Path:
    """The shards of the `data` datasets in `root/shards-NAME` (made once), `val` of their train
    split for val."""
    out = root / f"shards-{name}"
    return once(
        out,
        "musicid-pipeline",
        "build-shards",
        *map(str, data),
        str(out),
        "--val-fraction",
        str(val),
        "--shards-per-split",
        "4",
        *extra,
    )


def train_steps(shards: Path, run: Path, epochs: int, epoch_steps: int, seed: int = 0) -> Path:
    """A run trained for `epochs` x `epoch_steps` steps of 32 windows with the recipe's augmentation
    (unless one is in `run`)."""
    if not (run / "best.onnx").exists():
        train(shards, run, epochs, 0.5, "--epoch-steps", str(epoch_steps), "--seed", str(seed))
    return run


def calibrated(trained: Path, shards: Path, run: Path) -> Path:
    """A copy of `trained` in `run` (this benchmark's own: made again; without the last checkpoint,
    which prediction never reads) with its calibration fitted on `shards`' val split."""
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(trained, run, ignore=shutil.ignore_patterns("last.*"))
    cli("python", "-m", "musicid.recipes.calibrate", str(shards), "--model", str(run))
    return run


def best_val(run: Path) -> float:
    """The run's best val mAP (its own val split)."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return max(json.loads(line)["val_mAP"] for line in lines)


def real_figures(run: Path, clips: Path, mixtures: Path, out: Path) -> dict:
    """`run` read off on real recordings it never saw: solo top-1 / top-3 (`musicid-eval clips`)
    and, on real mixtures (`musicid-eval events`, the run's own calibration and event rules),
    segment-based and event-based micro F1, segment mAP, instruments named per file that never
    play, the share of outsiders-only time named as one of the 11."""
    for what, folder in (("clips", clips), ("events", mixtures)):
        cli(
            "musicid-eval",
            what,
            str(folder),
            "--model",
            str(run),
            "--out",
            str(out / what),
            "--overwrite",
        )
    return real_row(
        json.loads((out / "clips" / "clips.json").read_text()),
        json.loads((out / "events" / "report.json").read_text()),
    )


def real_row(c: dict, e: dict) -> dict:
    """The figures of REAL_HEADS from a `musicid-eval clips` result and a `musicid-eval events`
    one."""
    return {
        "top1": c["top1"],
        "top3": c["top3"],
        "seg F1": e["segment"]["micro_f1"],
        "event F1": e["event"]["micro_f1"],
        "seg mAP": e["segment"]["mAP"],
        "never": e["named_never_playing"]["per_file"],
        "others": e["others_only"]["share_named"],
    }


def read_off(name: str, run: Path, test: Path, clips: Path, mixtures: Path, root: Path) -> dict:
    """A variant's row, printed as it comes: its best val mAP, the window mAP on `test`'s test
    split, and real_figures."""
    row = {
        "val": best_val(run),
        "test": evaluate(run, test, "test", root / "eval" / run.name)["mAP"],
        **real_figures(run, clips, mixtures, root / "real" / run.name),
    }
    print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    return row


REAL_HEADS = (
    "solo top-1",
    "solo top-3",
    "mixtures segment F1",
    "event F1",
    "segment mAP",
    "named, never playing (per file)",
    "outsiders-only time named",
)


def print_table(heads: list[str], rows: dict[str, dict]) -> None:
    """A Markdown table of the variants' figures (instruments named per file to 2 places)."""
    print("| variant | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    for name, row in rows.items():
        cells = (f"{v:.2f}" if k == "never" else f"{v:.3f}" for k, v in row.items())
        print(f"| {name} | " + " | ".join(cells) + " |")
