"""The shard set: the artifact `musicid-pipeline build-shards` writes and training and evaluation
read.

A folder of `{train,val,test}-NNNNNN.tar` (WebDataset: plain tars, one sample per window, members
named `<key>.<member>`) and `manifest.json`. The manifest is also the proof of what a build wrote:
only the shards it lists (by name, size and sha256) are ever reused or replaced by a later build
into the same folder.

Here, in one place: the manifest as typed records validated field by field, sample keys and members,
their encoding into tar members and decoding, and the one webdataset reading pipeline (training and
evaluation modes, unreadable shards counted). torch and webdataset are imported by the reading
functions only: `import webdataset` loads PyTorch, which would triple the offline pipeline's peak
memory per process.
"""

from __future__ import annotations

import io
import json
import logging
import random
import re
import tarfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from musicid.errors import InputError
from musicid.features import REFERENCE_RATE, Features, features_from_dict, normalise
from musicid.files import read_json, sha256_file
from musicid.records import from_fields, require
from musicid.splits import SPLITS
from musicid.vocab import N_INSTRUMENTS, N_PITCHES, NAMES, vocabulary
from musicid.windows import WindowConfig

log = logging.getLogger("musicid")
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
# A shard is a plain file beside its manifest: no folders, no URLs, no commands (`pipe:`) can hide
# in a name.
SHARD_NAME = re.compile(r"(train|val|test)-\d{6}\.tar")
MEMBERS = ("spec.npy", "instruments.npy", "notes.npy", "roll.npy", "json")
# tar's header/padding unit, and the record an archive is padded to
TAR_BLOCK, TAR_RECORD = 512, 10240


def skipped_line(counts: dict) -> str:
    """Counts of what was skipped, by reason, as every command reports them."""
    return "skipped: " + (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none")


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:06d}.tar"


@dataclass(frozen=True)
class ShardInfo:
    name: str
    samples: int
    bytes: int
    sha256: str

    def __post_init__(self):
        if not isinstance(self.name, str) or not SHARD_NAME.fullmatch(self.name):
            raise InputError(f"shard name {self.name!r} is not of the form <split>-NNNNNN.tar")


@dataclass
class SplitInfo:
    samples: int
    recordings: list[str]
    seconds: float
    instrument_positives: dict[str, int]
    shards: list[ShardInfo] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict, what: str) -> SplitInfo:
        split = from_fields(cls, d, what)
        split.shards = [from_fields(ShardInfo, s, f"{what} shard") for s in split.shards]
        return split


@dataclass
class Manifest:
    build_id: str
    # what the build was asked beyond features, window and seed: root, val share, shard layout
    build: dict
    features: Features
    window: WindowConfig
    n_frames: int
    label_rule: str
    seed: int
    splits: dict[str, SplitInfo]
    normalization: dict  # per-mel-bin mean and std (dB) of the train split, and their source
    ensembles: dict[str, str]
    skipped: dict[str, int]
    skipped_details: list[str]
    sources: list[dict]  # per root: root, recordings (ids), seconds, instrument_positives
    instruments: list[dict] = field(default_factory=vocabulary)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = self.features.to_dict()
        d["window"] = {**self.window.to_dict(), "n_frames": self.n_frames}
        del d["n_frames"]
        return {"format_version": d.pop("format_version"), **d}

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Manifest:
        what = f"{where}: not a musicid manifest"
        require(d, ("format_version",), what)
        if d["format_version"] != FORMAT_VERSION:
            raise InputError(
                f"{where}: manifest format {d['format_version']!r}, this musicid reads "
                f"{FORMAT_VERSION}; rebuild the shards with this version"
            )
        require(d, ("window", "splits", "normalization"), what)
        require(d["window"], ("n_frames",), f"{what} (window)")
        require(d["splits"], SPLITS, f"{what} (splits)")
        m = from_fields(cls, {**d, "n_frames": d["window"]["n_frames"]}, what)
        m.features = features_from_dict(m.features)
        m.window = WindowConfig.from_dict(m.window)
        m.splits = {s: SplitInfo.from_dict(m.splits[s], f"{where}: {s} split") for s in SPLITS}
        norm = require(m.normalization, ("mean", "std"), f"{where}: normalization")
        if not len(norm["mean"]) == len(norm["std"]) == m.features.n_bins:
            raise InputError(
                f"{where}: normalization has {len(norm['mean'])} bins, features {m.features.n_bins}"
            )
        if [i.get("name") for i in m.instruments] != list(NAMES):
            raise InputError(
                f"{where}: built for other instruments ({[i.get('name') for i in m.instruments]})"
            )
        return m

    def shards(self, split: str) -> list[ShardInfo]:
        return self.splits[split].shards

    def train_prior(self) -> list[float]:
        """Label frequency per class in the train split (the `prior` bias), in vocabulary order."""
        train = self.splits["train"]
        return [train.instrument_positives[n] / max(train.samples, 1) for n in NAMES]

    def summary(self) -> str:
        """Human summary (build-shards prints it at the end, inspect on demand)."""
        feat, win = self.features, self.window
        lines = [
            f"features: {feat.describe()}; samples: {win.segmentation} {win.window_s} s "
            f"({self.n_frames} frames), "
            f"hop {win.hop_s} s",
            f"label rule: {self.label_rule}",
            f"{'split':<6}{'recs':>6}{'hours':>8}{'samples':>9}{'shards':>7}{'MB':>9}  "
            + " ".join(f"{n[:5]:>5}" for n in NAMES),
        ]
        for split in SPLITS:
            s = self.splits[split]
            mb = sum(x.bytes for x in s.shards) / 2**20
            pos = " ".join(f"{s.instrument_positives.get(n, 0):>5}" for n in NAMES)
            lines.append(
                f"{split:<6}{len(s.recordings):>6}{s.seconds / 3600:>8.2f}{s.samples:>9}"
                f"{len(s.shards):>7}{mb:>9.1f}  {pos}"
            )
        if len(self.sources) > 1:
            lines += [
                f"source {i}: {src['root']}: {len(src['recordings'])} recordings, "
                f"{src['seconds'] / 3600:.2f} h"
                for i, src in enumerate(self.sources)
            ]
        lines.append(skipped_line(self.skipped))
        return "\n".join(lines + [f"  {d}" for d in self.skipped_details[:20]])


def manifest_file(path: Path) -> Path:
    """A shard folder's manifest, or the manifest path itself."""
    path = Path(path)
    return path / MANIFEST if path.is_dir() else path


def read_manifest(path: Path) -> Manifest:
    """Load and validate a manifest from a shard folder or a manifest path."""
    file = manifest_file(path)
    if not file.exists():
        raise InputError(f"{file}: no manifest (is this a shard folder made by build-shards?)")
    return Manifest.from_dict(read_json(file, "manifest"), str(file))


def shard_urls(
    manifest: Manifest, shards: Path, split: str, url_template: str | None = None
) -> list[str]:
    """Where a split's shards are read from: beside the manifest, or `url_template` with `{name}`
    filled in (e.g. `pipe:aws s3 cp s3://bucket/shards/{name} -`). URLs come from the user's command
    line only, never from a manifest: its names are validated as plain `<split>-NNNNNN.tar` file
    names."""
    names = [s.name for s in manifest.shards(split)]
    if url_template:
        if "{name}" not in url_template:
            raise InputError(f"--shard-url {url_template!r} must contain {{name}}")
        return [url_template.replace("{name}", n) for n in names]
    folder = manifest_file(shards).parent
    return [str(folder / n) for n in names]


def verify_shards(out: Path, manifest: Manifest) -> list[str]:
    """Problems with the shards a manifest lists: missing files, other sizes or sha256."""
    folder = out if out.is_dir() else out.parent
    bad = []
    for split in manifest.splits.values():
        for shard in split.shards:
            path = folder / shard.name
            if not path.is_file():
                bad.append(f"{path}: missing")
            elif path.stat().st_size != shard.bytes or sha256_file(path) != shard.sha256:
                bad.append(f"{path}: size or sha256 differs from the manifest")
    return bad


# --- samples: keys, members, encoding
# ------------------------------------------------------------------------


def sample_key(recording: str, start_s: float) -> str:
    """`<recording>_<start sample at 44.1 kHz, zero-padded>`; dots would break WebDataset's key
    rule."""
    return f"{recording.replace('.', '-')}_{round(start_s * REFERENCE_RATE):010d}"


def encode_npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def encode_sample(
    recording: str,
    start_s: float,
    seconds: float,
    ensemble: str,
    spec: np.ndarray,
    instruments: np.ndarray,
    notes: np.ndarray,
    roll: np.ndarray,
) -> dict[str, bytes]:
    """One window as tar members: `{"__key__": key, member: bytes}` (arrays as .npy, metadata as
    JSON)."""
    meta = {
        "recording": recording,
        "start_s": round(start_s, 6),
        "end_s": round(start_s + seconds, 6),
        "ensemble": ensemble,
    }
    return {
        "__key__": sample_key(recording, start_s),
        "json": json.dumps(meta).encode(),
        "instruments.npy": encode_npy(instruments),
        "notes.npy": encode_npy(notes),
        "roll.npy": encode_npy(roll),
        "spec.npy": encode_npy(spec),
    }


def add_sample(tar: tarfile.TarFile, sample: dict[str, bytes]) -> None:
    """Append a sample's members in a fixed order, with fixed owner, mode and mtime: reproducible
    bytes."""
    key = sample["__key__"]
    for member in sorted(k for k in sample if k != "__key__"):
        info = tarfile.TarInfo(f"{key}.{member}")
        data = sample[member]
        info.size, info.mtime, info.mode, info.uname, info.gname = (
            len(data),
            0,
            0o644,
            "musicid",
            "musicid",
        )
        tar.addfile(info, io.BytesIO(data))


def _member_bytes(name: str, size: int) -> int:
    """Bytes a member takes in a tar: its header (plus a PAX header for a long or non-ASCII name)
    and padded data."""
    raw = name.encode()
    pax = (
        TAR_BLOCK + -(-(len(raw) + 20) // TAR_BLOCK) * TAR_BLOCK
        if len(raw) > 100 or not name.isascii()
        else 0
    )
    return pax + TAR_BLOCK + -(-size // TAR_BLOCK) * TAR_BLOCK


def sample_bytes(n_bins: int, n_frames: int, key: str, json_len: int) -> int:
    """Exact bytes of one sample in a shard, given its key and JSON length: the size cap is
    computed, not guessed."""
    sizes = {
        "spec.npy": len(encode_npy(np.zeros((n_bins, n_frames), np.float16))),
        "instruments.npy": len(encode_npy(np.zeros(N_INSTRUMENTS, np.uint8))),
        "notes.npy": len(encode_npy(np.zeros(N_PITCHES, np.uint8))),
        "roll.npy": len(encode_npy(np.zeros((N_INSTRUMENTS, n_frames), np.uint8))),
        "json": json_len,
    }
    return sum(_member_bytes(f"{key}.{k}", n) for k, n in sizes.items())


# --- reading
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadShard:
    """Stands in the stream where a shard could not be read (once per shard), so readers can count
    it."""

    url: str
    error: str


class BadShardRecorder:
    """A webdataset handler: an unreadable shard is skipped, and a `BadShard` marker takes its
    place."""

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
            self.pending.append(
                BadShard(url, f"{type(exc).__name__}: {str(exc.args[0]).split(' @ ')[0]}")
            )
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


def log_bad(bad: BadShard) -> None:
    log.warning("warning: skipped unreadable shard %s (%s)", bad.url, bad.error)


@lru_cache(maxsize=64)
def _npy_header(header: bytes) -> tuple[np.dtype, tuple, bool]:
    shape, fortran, dtype = np.lib.format.read_array_header_1_0(io.BytesIO(header[8:]))
    if dtype.hasobject:
        raise ValueError("object arrays are not allowed (they would need pickle)")
    return dtype, shape, fortran


def load_npy(data: bytes) -> np.ndarray:
    """`np.load(..., allow_pickle=False)` of an .npy member, with each distinct header parsed once:
    every sample's headers are the same, and numpy parses each with `ast.literal_eval` (a fifth of
    the loader's time)."""
    if data[:8] != b"\x93NUMPY\x01\x00":
        return np.load(io.BytesIO(data), allow_pickle=False)
    offset = 10 + int.from_bytes(data[8:10], "little")
    dtype, shape, fortran = _npy_header(data[:offset])
    return np.frombuffer(data, dtype, offset=offset).reshape(shape, order="F" if fortran else "C")


class SampleInfo(NamedTuple):
    recording: str
    start_s: float
    # uint8 [11, T] frame activity, when asked for (evaluation at the frame level)
    roll: np.ndarray | None


def decode_sample(mean: np.ndarray, std: np.ndarray, with_roll: bool = False):
    """Raw tar members -> (normalised spec [1, bins, T] float32, instruments [11] float32,
    SampleInfo)."""

    def decode(sample):
        if isinstance(sample, BadShard):
            return sample
        missing = [k for k in MEMBERS if k not in sample]
        if missing:  # the last sample of a truncated shard
            return BadShard(
                sample.get("__url__", "?"), f"sample {sample['__key__']} lacks {', '.join(missing)}"
            )
        spec = load_npy(sample["spec.npy"]).astype(np.float32)
        inst = load_npy(sample["instruments.npy"]).astype(np.float32)
        meta = json.loads(sample["json"])
        # writable: torch converts it
        roll = load_npy(sample["roll.npy"]).copy() if with_roll else None
        return (
            normalise(spec, mean, std),
            inst,
            SampleInfo(meta["recording"], meta["start_s"], roll),
        )

    return decode


def collate(items: list) -> tuple:
    """(specs [B, 1, bins, T], instruments [B, 11], SampleInfos, BadShard markers) from a list of
    decoded samples with any markers among them; specs and instruments are None when only markers
    came."""
    import torch

    bad = [i for i in items if isinstance(i, BadShard)]
    good = [i for i in items if not isinstance(i, BadShard)]
    if not good:
        return None, None, [], bad
    specs, labels, recs = zip(*good, strict=True)
    return torch.from_numpy(np.stack(specs)), torch.from_numpy(np.stack(labels)), list(recs), bad


def epoch_order(urls: list[str], seed: int, epoch: int) -> list[str]:
    """A training epoch's shard order: the same on every rank (so the rank split stays disjoint),
    new each epoch."""
    urls = list(urls)
    random.Random(seed + epoch).shuffle(urls)
    return urls


def rank_shards(urls: list[str], seed: int, epoch: int) -> list[str]:
    """This rank's shards in a training epoch: the epoch's order, then every world_size-th from its
    rank."""
    import webdataset as wds

    return list(wds.split_by_node(epoch_order(urls, seed, epoch)))


@dataclass(frozen=True)
class TrainOrder:
    """The training mode of `loader`. Each epoch the shard list is shuffled with `seed + epoch` on
    every rank alike, then split by rank and by DataLoader worker: ranks see disjoint shards and a
    new order every epoch. Within a worker a shuffle buffer (seeded per epoch, rank and worker)
    mixes samples; `augment` draws from the same generator, so a resumed run sees exactly the
    batches an uninterrupted one would."""

    seed: int
    epoch: int
    shuffle_buffer: int
    # a normalised spec -> a new one
    augment: Callable[[np.ndarray, random.Random], np.ndarray] | None = None


def _shuffle_and_augment(order: TrainOrder):
    """A stage seeded at iteration time, in the worker: each worker and rank draws its own
    numbers."""
    import torch
    import webdataset as wds

    def stage(src):
        info = torch.utils.data.get_worker_info()
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        rng = random.Random(f"{order.seed}/{order.epoch}/{rank}/{info.id if info else 0}")
        for item in wds.shuffle(order.shuffle_buffer, initial=order.shuffle_buffer, rng=rng)(src):
            if order.augment and not isinstance(item, BadShard):
                item = (order.augment(item[0], rng), *item[1:])
            yield item

    return stage


def loader(
    urls: list[str],
    mean,
    std,
    batch_size: int,
    workers: int,
    train: TrainOrder | None = None,
    with_roll: bool = False,
):
    """The one reading pipeline, as a torch DataLoader of `collate` batches with `BadShard` markers.
    Evaluation (`train` None): every sample of `urls` once, in order, the last batch partial.
    Training: this rank's share of an epoch in the order `train` describes, full batches only."""
    import webdataset as wds
    from torch.utils.data import DataLoader

    recorder = BadShardRecorder()
    if train:
        head = [wds.SimpleShardList(epoch_order(urls, train.seed, train.epoch)), wds.split_by_node]
    else:
        head, workers = [wds.SimpleShardList(urls)], min(workers, len(urls))
    stages = [
        *head,
        wds.split_by_worker,
        wds.tarfile_to_samples(handler=recorder),
        recorder.stage,
        wds.map(
            decode_sample(np.asarray(mean, np.float32), np.asarray(std, np.float32), with_roll)
        ),
        *([_shuffle_and_augment(train)] if train else []),
        wds.batched(batch_size, collation_fn=collate, partial=train is None),
    ]
    return DataLoader(
        wds.DataPipeline(*stages),
        batch_size=None,
        num_workers=workers,
        multiprocessing_context="fork" if workers else None,
    )


def check_shard_count(n_shards: int, world_size: int, workers: int, split: str) -> None:
    """Fewer shards than ranks x workers starves some readers (and hangs DDP): refuse clearly."""
    need = world_size * max(workers, 1)
    if n_shards < need:
        raise InputError(
            f"the {split} split has {n_shards} shards, fewer than world_size {world_size} x "
            f"workers {max(workers, 1)} = {need}: rebuild with --shards-per-split {need} or more, "
            "or use fewer workers or ranks"
        )
