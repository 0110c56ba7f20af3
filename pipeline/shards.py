"""WebDataset shards, written and read side by side.

Writing (stage 2 of a build): each recording's samples are shuffled (seeded per recording) and cut into
blocks; a split's blocks are permuted and dealt round-robin to its shards, so every shard mixes blocks from
many recordings and a reader's shuffle buffer sees many recordings at once. Each shard is a PAX tar (long
names work) with a fixed mtime (reproducible bytes), written under a temporary name that is renamed when
the shard is complete. Only `.npy` and `.json` members are written.

Why the standard library's `tarfile` and not `webdataset.TarWriter` (a thin wrapper over it, tried):
`import webdataset` loads PyTorch, which tripled the build's peak memory (887 MB against 296 MB per
process) and made it 3 % slower (713x against 736x real time, measured back to back); the offline pipeline
stays free of PyTorch.

Reading: webdataset stages (`tarfile_to_samples` with a handler that records unreadable shards, `decode`)
that the trainer and the evaluator compose with their own shuffle and batching stages; webdataset is
imported there, by the readers, which have PyTorch loaded anyway.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from musicid.errors import InputError

from .features import REFERENCE_RATE, normalise
from .manifest import Manifest, ShardInfo, manifest_file
from .splits import stable_seed
from .staging import load_samples
from .vocab import N_INSTRUMENTS, N_PITCHES
from .windows import frame_index

log = logging.getLogger("musicid")
Block = tuple[str, np.ndarray]  # (recording id, sample indices)
TAR_BLOCK, TAR_RECORD = 512, 10240  # tar's header/padding unit, and the record an archive is padded to
MEMBERS = ("spec.npy", "instruments.npy", "notes.npy", "roll.npy", "json")


def sample_key(recording: str, start_s: float) -> str:
    """`<recording>_<start sample at 44.1 kHz, zero-padded>`; dots would break WebDataset's key rule."""
    return f"{recording.replace('.', '-')}_{round(start_s * REFERENCE_RATE):010d}"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o644, "musicid", "musicid"
    tar.addfile(info, io.BytesIO(data))


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _member_bytes(name: str, size: int) -> int:
    """Bytes a member takes in a tar: its header (plus a PAX header for a long or non-ASCII name) and padded data."""
    raw = name.encode()
    pax = TAR_BLOCK + -(-(len(raw) + 20) // TAR_BLOCK) * TAR_BLOCK if len(raw) > 100 or not name.isascii() else 0
    return pax + TAR_BLOCK + -(-size // TAR_BLOCK) * TAR_BLOCK


def sample_bytes(n_mels: int, n_frames: int, key: str, json_len: int) -> int:
    """Exact bytes of one sample in a shard, given its key and JSON length: the size cap is computed, not guessed."""
    sizes = {"spec.npy": len(_npy(np.zeros((n_mels, n_frames), np.float16))),
             "instruments.npy": len(_npy(np.zeros(N_INSTRUMENTS, np.uint8))),
             "notes.npy": len(_npy(np.zeros(N_PITCHES, np.uint8))),
             "roll.npy": len(_npy(np.zeros((N_INSTRUMENTS, n_frames), np.uint8))), "json": json_len}
    return sum(_member_bytes(f"{key}.{k}", n) for k, n in sizes.items())


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


def plan_capped(counts: dict[str, int], split: str, n_shards: int, block_size: int, seed: int,
                cap_bytes: float, per_sample: int) -> list[list[Block]]:
    """`plan_shards` with as many shards as it takes for the largest one to stay under `cap_bytes` (0: no cap)."""
    if cap_bytes and per_sample + TAR_RECORD > cap_bytes:
        raise InputError(f"--max-shard-mb {cap_bytes / 2**20:g} is below one sample "
                         f"({(per_sample + TAR_RECORD) / 2**20:.3f} MB with the tar's padding)")
    total = sum(counts.values())
    n = max(n_shards, int(total * per_sample // cap_bytes) if cap_bytes else 0)
    while True:
        plan = plan_shards(counts, split, n, block_size, seed)
        largest = max(sum(len(i) for _, i in shard) for shard in plan)
        if not cap_bytes or largest * per_sample + 2 * TAR_BLOCK + TAR_RECORD <= cap_bytes or n >= total:
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
    """The shard's samples as webdataset dicts, read from memory-mapped staging (only the frames needed)."""
    for rid, idx in job.blocks:
        folder = job.staging / rid
        spec = np.load(folder / "spec.npy", mmap_mode="r")
        roll = np.load(folder / "roll.npy", mmap_mode="r")
        samples = load_samples(folder)
        for i in idx:
            frames = frame_index(int(samples.frame0[i]), int(samples.length[i]), job.n_frames)
            start = float(samples.start_s[i])
            meta = {"recording": rid, "start_s": round(start, 6),
                    "end_s": round(start + samples.length[i] / job.frame_rate, 6),
                    "ensemble": job.ensembles.get(rid, "")}
            if job.span_samples:
                sample_roll = np.repeat(samples.instruments[i][:, None], job.n_frames, axis=1)
            else:
                sample_roll = np.ascontiguousarray(roll[:, frames])
            yield {"__key__": sample_key(rid, start), "json": json.dumps(meta).encode(),
                   "instruments.npy": _npy(samples.instruments[i]), "notes.npy": _npy(samples.notes[i]),
                   "roll.npy": _npy(sample_roll), "spec.npy": _npy(np.ascontiguousarray(spec[:, frames]))}


def write_shard(job: ShardJob, record: Callable[[ShardInfo], None]) -> ShardInfo:
    """Write one shard under its temporary name, `record` it, then rename it into place: a crash leaves no
    partial shard under a final name, and no final name that the build has not recorded as its own."""
    try:
        with tarfile.open(job.tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for sample in _samples(job):
                key = sample.pop("__key__")
                for member in sorted(sample):
                    _add(tar, f"{key}.{member}", sample[member])
        info = ShardInfo(job.path.name, int(sum(len(i) for _, i in job.blocks)), job.tmp.stat().st_size,
                         sha256_file(job.tmp))
        record(info)
        os.replace(job.tmp, job.path)
    finally:
        job.tmp.unlink(missing_ok=True)
    return info


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def shard_urls(manifest: Manifest, shards: Path, split: str, url_template: str | None = None) -> list[str]:
    """Where a split's shards are read from: beside the manifest, or `url_template` with `{name}` filled in
    (e.g. `pipe:aws s3 cp s3://bucket/shards/{name} -`). URLs come from the user's command line only, never
    from a manifest: its names are validated as plain `<split>-NNNNNN.tar` file names."""
    names = [s.name for s in manifest.shards(split)]
    if url_template:
        if "{name}" not in url_template:
            raise InputError(f"--shard-url {url_template!r} must contain {{name}}")
        return [url_template.replace("{name}", n) for n in names]
    folder = manifest_file(shards).parent
    return [str(folder / n) for n in names]


@dataclass(frozen=True)
class BadShard:
    """Stands in the stream where a shard could not be read (once per shard), so readers can count it."""

    url: str
    error: str


class BadShardRecorder:
    """A webdataset handler: an unreadable shard is skipped, and a `BadShard` marker takes its place."""

    def __init__(self):
        self.pending: list[BadShard] = []
        self.seen: set[str] = set()

    def __call__(self, exc: Exception) -> bool:
        if len(exc.args) >= 2 and isinstance(exc.args[-1], str):  # webdataset appends (stream, url)
            url = exc.args[-1]
        else:  # an error inside a member: webdataset appends "@ <file object>" to the message
            found = re.search(r"name='([^']*)'", str(exc.args[0]) if exc.args else "")
            url = found.group(1) if found else "?"
        if url not in self.seen:
            self.seen.add(url)
            self.pending.append(BadShard(url, f"{type(exc).__name__}: {str(exc.args[0]).split(' @ ')[0]}"))
        return True

    def stage(self, src):
        """Insert the markers into the sample stream right after the shard that failed."""
        for sample in src:
            yield from self._flush()
            yield sample
        yield from self._flush()

    def _flush(self):
        while self.pending:
            yield self.pending.pop(0)


@lru_cache(maxsize=64)
def _npy_header(header: bytes) -> tuple[np.dtype, tuple, bool]:
    shape, fortran, dtype = np.lib.format.read_array_header_1_0(io.BytesIO(header[8:]))
    if dtype.hasobject:
        raise ValueError("object arrays are not allowed (they would need pickle)")
    return dtype, shape, fortran


def load_npy(data: bytes) -> np.ndarray:
    """`np.load(..., allow_pickle=False)` of an .npy member, with each distinct header parsed once: every
    sample's headers are the same, and numpy parses each with `ast.literal_eval` (a fifth of the loader's time)."""
    if data[:8] != b"\x93NUMPY\x01\x00":
        return np.load(io.BytesIO(data), allow_pickle=False)
    offset = 10 + int.from_bytes(data[8:10], "little")
    dtype, shape, fortran = _npy_header(data[:offset])
    return np.frombuffer(data, dtype, offset=offset).reshape(shape, order="F" if fortran else "C")


class SampleInfo(NamedTuple):
    recording: str
    start_s: float
    roll: np.ndarray | None  # uint8 [11, T] frame activity, when asked for (evaluation at the frame level)


def decode_sample(mean: np.ndarray, std: np.ndarray, with_roll: bool = False):
    """Raw tar members -> (normalised spec [1, n_mels, T] float32, instruments [11] float32, SampleInfo)."""

    def decode(sample):
        if isinstance(sample, BadShard):
            return sample
        missing = [k for k in MEMBERS if k not in sample]
        if missing:  # the last sample of a truncated shard
            return BadShard(sample.get("__url__", "?"), f"sample {sample['__key__']} lacks {', '.join(missing)}")
        spec = load_npy(sample["spec.npy"]).astype(np.float32)
        inst = load_npy(sample["instruments.npy"]).astype(np.float32)
        meta = json.loads(sample["json"])
        roll = load_npy(sample["roll.npy"]).copy() if with_roll else None  # writable: torch converts it
        return normalise(spec, mean, std), inst, SampleInfo(meta["recording"], meta["start_s"], roll)

    return decode


def read_stages(mean: np.ndarray, std: np.ndarray, with_roll: bool = False) -> list:
    """Stages from shard URLs to decoded samples (and `BadShard` markers); callers add split, shuffle, batch."""
    import webdataset as wds

    recorder = BadShardRecorder()
    return [wds.tarfile_to_samples(handler=recorder), recorder.stage,
            wds.map(decode_sample(np.asarray(mean, np.float32), np.asarray(std, np.float32), with_roll))]


def collate(items: list) -> tuple:
    """(specs [B, 1, n_mels, T], instruments [B, 11], SampleInfos, BadShard markers) from a list of decoded
    samples with any markers among them; specs and instruments are None when only markers came."""
    import torch

    bad = [i for i in items if isinstance(i, BadShard)]
    good = [i for i in items if not isinstance(i, BadShard)]
    if not good:
        return None, None, [], bad
    specs, labels, recs = zip(*good, strict=True)
    return torch.from_numpy(np.stack(specs)), torch.from_numpy(np.stack(labels)), list(recs), bad


def log_bad(bad: BadShard) -> None:
    log.warning("warning: skipped unreadable shard %s (%s)", bad.url, bad.error)
