"""Writing a shard set (stage 2 of a build); the format itself (keys, members, manifest) is
`musicid.shardset`.

Each recording's samples are shuffled (seeded per recording) and cut into blocks; a split's blocks
are permuted and dealt round-robin to its shards, so every shard mixes blocks from many recordings
and a reader's shuffle buffer sees many recordings at once. Each shard is a PAX tar (long names
work) written under a temporary name that is renamed when the shard is complete.

Why the standard library's `tarfile` and not `webdataset.TarWriter` (a thin wrapper over it):
`import webdataset` loads PyTorch, which triples the build's peak memory
(benchmarks/build_memory.py); the offline pipeline stays free of PyTorch.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicid.errors import InputError
from musicid.files import sha256_file
from musicid.shardset import TAR_BLOCK, TAR_RECORD, ShardInfo, add_sample, encode_sample
from musicid.splits import stable_seed
from musicid.windows import frame_index

from .staging import load_samples

Block = tuple[str, np.ndarray]  # (recording id, sample indices)


def recording_blocks(recording: str, n_samples: int, block_size: int, seed: int) -> list[Block]:
    """The recording's samples in a seeded random order, cut into blocks."""
    order = np.random.default_rng(stable_seed(seed, "blocks", recording)).permutation(n_samples)
    return [(recording, order[i : i + block_size]) for i in range(0, n_samples, block_size)]


def plan_shards(
    counts: dict[str, int], split: str, n_shards: int, block_size: int, seed: int
) -> list[list[Block]]:
    """Deal a split's blocks to `n_shards` shards. Blocks shrink so that every shard gets at least
    one."""
    total = sum(counts.values())
    n_shards = max(1, min(n_shards, total))
    block_size = max(1, min(block_size, total // n_shards))
    blocks = [
        b for rid in sorted(counts) for b in recording_blocks(rid, counts[rid], block_size, seed)
    ]
    order = np.random.default_rng(stable_seed(seed, "scatter", split)).permutation(len(blocks))
    return [[blocks[i] for i in order[s::n_shards]] for s in range(n_shards)]


def plan_capped(
    counts: dict[str, int],
    split: str,
    n_shards: int,
    block_size: int,
    seed: int,
    cap_bytes: float,
    per_sample: int,
) -> list[list[Block]]:
    """`plan_shards` with as many shards as it takes for the largest one to stay under `cap_bytes`
    (0: no cap)."""
    if cap_bytes and per_sample + TAR_RECORD > cap_bytes:
        raise InputError(
            f"--max-shard-mb {cap_bytes / 2**20:g} is below one sample "
            f"({(per_sample + TAR_RECORD) / 2**20:.3f} MB with the tar's padding)"
        )
    total = sum(counts.values())
    n = max(n_shards, int(total * per_sample // cap_bytes) if cap_bytes else 0)
    while True:
        plan = plan_shards(counts, split, n, block_size, seed)
        largest = max(sum(len(i) for _, i in shard) for shard in plan)
        if (
            not cap_bytes
            or largest * per_sample + 2 * TAR_BLOCK + TAR_RECORD <= cap_bytes
            or n >= total
        ):
            return plan
        n += max(1, n // 20)


@dataclass(frozen=True)
class ShardJob:
    path: Path  # the final name, in the output folder
    tmp: Path  # where it is written first (the build's own state folder)
    blocks: list[Block]
    staging: Path
    n_frames: int
    frame_rate: float
    ensembles: dict[str, str]
    span_samples: bool = False  # prior-work span samples: the roll repeats the span's own labels


def _samples(job: ShardJob):
    """The shard's samples as tar members, read from memory-mapped staging (only the frames
    needed)."""
    for rid, idx in job.blocks:
        folder = job.staging / rid
        spec = np.load(folder / "spec.npy", mmap_mode="r")
        roll = np.load(folder / "roll.npy", mmap_mode="r")
        samples = load_samples(folder)
        for i in idx:
            frames = frame_index(int(samples.frame0[i]), int(samples.length[i]), job.n_frames)
            if job.span_samples:
                sample_roll = np.repeat(samples.instruments[i][:, None], job.n_frames, axis=1)
            else:
                sample_roll = np.ascontiguousarray(roll[:, frames])
            yield encode_sample(
                rid,
                float(samples.start_s[i]),
                samples.length[i] / job.frame_rate,
                job.ensembles.get(rid, ""),
                np.ascontiguousarray(spec[:, frames]),
                samples.instruments[i],
                samples.notes[i],
                sample_roll,
            )


def write_shard(job: ShardJob, record: Callable[[ShardInfo], None]) -> ShardInfo:
    """Write one shard under its temporary name, `record` it, then rename it into place: a crash
    leaves no partial shard under a final name, and no final name that the build has not recorded as
    its own."""
    try:
        with tarfile.open(job.tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for sample in _samples(job):
                add_sample(tar, sample)
        info = ShardInfo(
            job.path.name,
            int(sum(len(i) for _, i in job.blocks)),
            job.tmp.stat().st_size,
            sha256_file(job.tmp),
        )
        record(info)
        os.replace(job.tmp, job.path)
    finally:
        job.tmp.unlink(missing_ok=True)
    return info
