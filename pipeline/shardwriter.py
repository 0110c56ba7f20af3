"""Stage 2 of a build: the block plan and atomic writing of WebDataset tar shards.

Each recording's samples are shuffled (seeded per recording) and cut into blocks; a split's blocks are
permuted and dealt round-robin to its shards, so every shard mixes blocks from many recordings and the
trainer's shuffle buffer sees many recordings at once. Only `.npy` and `.json` members are written.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .features import REFERENCE_RATE
from .splits import stable_seed
from .staging import load_samples
from .windows import frame_index

Block = tuple[str, np.ndarray]  # (recording id, sample indices)


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:06d}.tar"


def sample_key(recording: str, start_s: float) -> str:
    """`<recording>_<start sample at 44.1 kHz, zero-padded>`; dots would break WebDataset's key rule."""
    return f"{recording.replace('.', '-')}_{round(start_s * REFERENCE_RATE):010d}"


def recording_blocks(recording: str, n_samples: int, block_size: int, seed: int) -> list[Block]:
    """The recording's samples in a seeded random order, cut into blocks."""
    order = np.random.default_rng(stable_seed(seed, "blocks", recording)).permutation(n_samples)
    return [(recording, order[i : i + block_size]) for i in range(0, n_samples, block_size)]


def plan_shards(counts: dict[str, int], split: str, n_shards: int, block_size: int, seed: int) -> list[list[Block]]:
    """Deal a split's blocks to `n_shards` shards. Blocks shrink so that every shard gets at least one."""
    total = sum(counts.values())
    n_shards = max(1, min(n_shards, total))
    block_size = max(1, min(block_size, total // n_shards))
    blocks = [b for rid in sorted(counts) for b in recording_blocks(rid, counts[rid], block_size, seed)]
    order = np.random.default_rng(stable_seed(seed, "scatter", split)).permutation(len(blocks))
    return [[blocks[i] for i in order[s::n_shards]] for s in range(n_shards)]


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


@dataclass(frozen=True)
class ShardJob:
    path: Path
    blocks: list[Block]
    staging: Path
    n_frames: int
    frame_rate: float
    ensembles: dict[str, str]
    span_samples: bool = False  # prior-work span samples: the roll repeats the span's own labels


def write_shard(job: ShardJob) -> dict:
    """Write one shard under a temporary name and rename it; an existing shard (a resumed build) is kept."""
    if not job.path.exists():
        tmp = job.path.with_name(f".{job.path.name}.tmp-{os.getpid()}")
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for rid, idx in job.blocks:
                folder = job.staging / rid  # memory-mapped: only the frames this block needs are read
                spec = np.load(folder / "spec.npy", mmap_mode="r")
                roll = np.load(folder / "roll.npy", mmap_mode="r")
                samples = load_samples(folder)
                for i in idx:
                    frames = frame_index(int(samples.frame0[i]), int(samples.length[i]), job.n_frames)
                    start = float(samples.start_s[i])
                    key = sample_key(rid, start)
                    info = {"recording": rid, "start_s": round(start, 6),
                            "end_s": round(start + samples.length[i] / job.frame_rate, 6),
                            "ensemble": job.ensembles.get(rid, "")}
                    _add(tar, f"{key}.json", json.dumps(info).encode())
                    _add(tar, f"{key}.instruments.npy", _npy(samples.instruments[i]))
                    _add(tar, f"{key}.notes.npy", _npy(samples.notes[i]))
                    if job.span_samples:
                        sample_roll = np.repeat(samples.instruments[i][:, None], job.n_frames, axis=1)
                    else:
                        sample_roll = np.ascontiguousarray(roll[:, frames])
                    _add(tar, f"{key}.roll.npy", _npy(sample_roll))
                    _add(tar, f"{key}.spec.npy", _npy(np.ascontiguousarray(spec[:, frames])))
        os.replace(tmp, job.path)
    return {"name": job.path.name, "samples": int(sum(len(i) for _, i in job.blocks)),
            "bytes": job.path.stat().st_size, "sha256": sha256_file(job.path)}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
