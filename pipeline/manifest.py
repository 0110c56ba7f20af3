"""The shard set's manifest as typed records: written by build-shards, validated field by field when read.

A manifest is also the proof of what a build wrote: only the shards it lists (by name, size and sha256)
are ever reused or replaced by a later build into the same folder.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from musicid.errors import InputError
from musicid.files import read_json
from musicid.records import from_fields, require

from .features import FeatureConfig
from .splits import SPLITS
from .vocab import NAMES, vocabulary
from .windows import WindowConfig

FORMAT_VERSION = 3
MANIFEST = "manifest.json"
# A shard is a plain file beside its manifest: no folders, no URLs, no commands (`pipe:`) can hide in a name.
SHARD_NAME = re.compile(r"(train|val|test)-\d{6}\.tar")


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
    build: dict  # what the build was asked beyond features, window and seed: root, val share, shard layout
    features: FeatureConfig
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
            raise InputError(f"{where}: manifest format {d['format_version']!r}, this musicid reads "
                             f"{FORMAT_VERSION}; rebuild the shards with this version")
        require(d, ("window", "splits", "normalization"), what)
        require(d["window"], ("n_frames",), f"{what} (window)")
        require(d["splits"], SPLITS, f"{what} (splits)")
        m = from_fields(cls, {**d, "n_frames": d["window"]["n_frames"]}, what)
        m.features = FeatureConfig.from_dict(m.features)
        m.window = WindowConfig.from_dict(m.window)
        m.splits = {s: SplitInfo.from_dict(m.splits[s], f"{where}: {s} split") for s in SPLITS}
        norm = require(m.normalization, ("mean", "std"), f"{where}: normalization")
        if not len(norm["mean"]) == len(norm["std"]) == m.features.n_mels:
            raise InputError(f"{where}: normalization has {len(norm['mean'])} bins, features {m.features.n_mels}")
        if [i.get("name") for i in m.instruments] != list(NAMES):
            raise InputError(f"{where}: built for other instruments ({[i.get('name') for i in m.instruments]})")
        return m

    def shards(self, split: str) -> list[ShardInfo]:
        return self.splits[split].shards

    def summary(self) -> str:
        """Human summary (build-shards prints it at the end, inspect on demand)."""
        feat, win = self.features, self.window
        lines = [f"features: log-mel {feat.n_mels} bins @ {feat.sample_rate} Hz, n_fft {feat.n_fft}, "
                 f"hop {feat.hop_length}; samples: {win.segmentation} {win.window_s} s ({self.n_frames} frames), "
                 f"hop {win.hop_s} s", f"label rule: {self.label_rule}",
                 f"{'split':<6}{'recs':>6}{'hours':>8}{'samples':>9}{'shards':>7}{'MB':>9}  "
                 + " ".join(f"{n[:5]:>5}" for n in NAMES)]
        for split in SPLITS:
            s = self.splits[split]
            mb = sum(x.bytes for x in s.shards) / 2**20
            pos = " ".join(f"{s.instrument_positives.get(n, 0):>5}" for n in NAMES)
            lines.append(f"{split:<6}{len(s.recordings):>6}{s.seconds / 3600:>8.2f}{s.samples:>9}"
                         f"{len(s.shards):>7}{mb:>9.1f}  {pos}")
        if len(self.sources) > 1:
            lines += [f"source {i}: {src['root']}: {len(src['recordings'])} recordings, {src['seconds'] / 3600:.2f} h"
                      for i, src in enumerate(self.sources)]
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


def flatten(d: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}: so that differences can be named field by field."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differing_fields(old: dict, new: dict) -> list[str]:
    """'field: old -> new' for every field where two argument dicts differ."""
    a, b = flatten(old), flatten(new)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
