"""Shared fixtures: tiny datasets made by the project's own generator, a hand-made-recording helper,
and deterministic training (fixed seeds, thread count and algorithms) so results do not move with
the machine."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from musicid.cli import run
from musicid.pipeline.build import BuildConfig, build_shards
from musicid.pipeline.labels import LABEL_COLUMNS
from musicid.pipeline.synth import synthesize

TORCH_THREADS = 2


def pytest_configure(config):
    # the same kernels' split of work whatever OMP_NUM_THREADS says
    torch.set_num_threads(TORCH_THREADS)
    torch.use_deterministic_algorithms(True)


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
    build_shards(synth_root, out, BuildConfig(shards_per_split=2, val_fraction=0.2))
    return out


def write_recording(
    root: Path,
    rid: str,
    rows: list[tuple],
    seconds: float = 2.0,
    rate: int = 44100,
    channels: int = 1,
    folder: str = "train",
    audio: np.ndarray | None = None,
) -> Path:
    """Put one recording (a tone + the given label rows) into a flat MusicNet layout under
    `root`."""
    for kind in ("data", "labels"):
        (root / f"{folder}_{kind}").mkdir(parents=True, exist_ok=True)
    if audio is None:
        t = np.arange(int(seconds * rate)) / rate
        audio = 0.3 * np.sin(2 * np.pi * 440 * t)
        audio = np.stack([audio] * channels, axis=1) if channels > 1 else audio
    sf.write(
        root / f"{folder}_data" / f"{rid}.wav", audio.astype(np.float32), rate, subtype="PCM_16"
    )
    with open(root / f"{folder}_labels" / f"{rid}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(LABEL_COLUMNS)
        w.writerows([(*r, 0.0, 1.0, "Quarter") for r in rows])
    return root


def tree_digest(root: Path) -> str:
    """One sha256 over every file's relative path and bytes below `root`: equal trees, equal
    digests."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def shard_hashes(manifest) -> dict[str, str]:
    return {s.name: s.sha256 for split in manifest.splits.values() for s in split.shards}


@pytest.fixture(scope="session")
def tiny_run(tiny_shards, tmp_path_factory) -> Path:
    """A run folder trained for two quick epochs on the tiny shards."""
    from musicid.train.trainer import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("run")
    trainer = Trainer(
        TrainConfig(
            shards=str(tiny_shards),
            out=str(out),
            epochs=2,
            batch_size=8,
            workers=0,
            shuffle_buffer=64,
            lr=2e-3,
        )
    )
    trainer.fit(overwrite=True)
    return out


@dataclass
class CliResult:
    exit_code: int
    output: str  # stdout and stderr together, as a user sees them


def invoke(app, args: list) -> CliResult:
    """Run a musicid command the way its console script does (`musicid.cli.run`: one-line errors,
    exit codes)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            run(app, "musicid", [str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    text = out.getvalue()
    assert "Traceback" not in text, text
    return CliResult(code, text)
