"""Shared fixtures: tiny datasets made by the project's own generator, and a hand-made-recording helper."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.build import BuildConfig, build_shards
from pipeline.labels import LABEL_COLUMNS
from pipeline.synth import synthesize


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """12 recordings x 4 s of synthetic MusicNet (10 train, 2 test)."""
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, recordings=12, seconds=4.0, seed=3)
    return root


@pytest.fixture(scope="session")
def tiny_shards(synth_root, tmp_path_factory) -> Path:
    """A built shard set of the tiny synthetic dataset (2 shards per split)."""
    out = tmp_path_factory.mktemp("shards")
    build_shards(synth_root, out, BuildConfig(shards_per_split=2, val_fraction=0.2), progress=False)
    return out


def write_recording(root: Path, rid: str, rows: list[tuple], seconds: float = 2.0, rate: int = 44100,
                    channels: int = 1, folder: str = "train", audio: np.ndarray | None = None) -> Path:
    """Put one recording (a tone + the given label rows) into a flat MusicNet layout under `root`."""
    for kind in ("data", "labels"):
        (root / f"{folder}_{kind}").mkdir(parents=True, exist_ok=True)
    if audio is None:
        t = np.arange(int(seconds * rate)) / rate
        audio = 0.3 * np.sin(2 * np.pi * 440 * t)
        audio = np.stack([audio] * channels, axis=1) if channels > 1 else audio
    sf.write(root / f"{folder}_data" / f"{rid}.wav", audio.astype(np.float32), rate, subtype="PCM_16")
    with open(root / f"{folder}_labels" / f"{rid}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(LABEL_COLUMNS)
        w.writerows([(*r, 0.0, 1.0, "Quarter") for r in rows])
    return root


def shard_hashes(manifest: dict) -> dict[str, str]:
    return {s["name"]: s["sha256"] for split in manifest["splits"].values() for s in split["shards"]}


@pytest.fixture(scope="session")
def tiny_run(tiny_shards, tmp_path_factory) -> Path:
    """A run folder trained for two quick epochs on the tiny shards."""
    from train.trainer import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("run")
    trainer = Trainer(TrainConfig(shards=str(tiny_shards), out=str(out), epochs=2, batch_size=8, workers=0,
                                  shuffle_buffer=64, lr=2e-3))
    trainer.fit()
    return out
