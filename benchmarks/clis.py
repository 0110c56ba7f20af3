"""The musicid command lines, run the way a user runs them, for the benchmarks that train models."""

from __future__ import annotations

import argparse
import json
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
