"""`build-shards`: MusicNet root(s) -> staged recordings -> block-scattered WebDataset shards +
manifest.

The first root is the main dataset: its test folder is the test split and val comes from its train
folder. Further roots (e.g. rendered music) add recordings to train only, or to train and val with
`extra_val`, never to test; their recording ids are prefixed (`src1-`, `src2-`, ...) so ids from
different roots never collide, and the manifest records each recording's source and per-source
counts.

Stage 1 decodes and featurises each recording once (process pool, resumable per recording); stage 2
writes the shards from memory-mapped staging (process pool, resumable per shard). Peak memory is one
recording's audio and spectrogram per worker, whatever the dataset's size.

What a build may touch in OUT is what it can prove it wrote: the shards its manifest lists, and an
unfinished build's state folder (`.musicid-build/`: its id and arguments, staging, temporary files,
and a record of every shard written). Any other shard-named file is refused, never adopted or
deleted. One build at a time holds OUT (an flock on the folder).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from musicid.errors import InputError
from musicid.features import Features, LogMel
from musicid.files import holding, output_folder, read_json, write_json_atomic
from musicid.records import differing_fields, from_fields, require
from musicid.shardset import (
    MANIFEST,
    SHARD_NAME,
    Manifest,
    ShardInfo,
    SplitInfo,
    read_manifest,
    sample_bytes,
    sample_key,
    shard_name,
)
from musicid.splits import SPLITS, assign_splits
from musicid.vocab import N_INSTRUMENTS, NAMES
from musicid.windows import WindowConfig

from .layout import Recording, data_dir, find_recordings, read_metadata
from .shards import ShardJob, plan_capped, write_shard
from .staging import stage_recording
from .workers import WORKERS, ordered_map

log = logging.getLogger("musicid")
STATE = ".musicid-build"


@dataclass(frozen=True)
class BuildConfig:
    features: Features = field(default_factory=LogMel)
    windows: WindowConfig = field(default_factory=WindowConfig)
    val_fraction: float = 0.1
    block_size: int = 16
    shards_per_split: int = 8
    # 0: no size cap; else as many shards as it takes for each to stay under it
    max_shard_mb: float = 0.0
    # recordings of the roots after the first may go to val too (never to test)
    extra_val: bool = False
    seed: int = 0

    def layout(self) -> dict:
        """What the build was asked beyond features, window and seed (the manifest's `build`
        record)."""
        return {k: v for k, v in asdict(self).items() if k not in ("features", "windows", "seed")}

    def args(self, roots: list[Path]) -> dict:
        """Everything that decides a build's bytes: a build resumes only with the same."""
        return {
            "roots": [str(Path(r).resolve()) for r in roots],
            "features": self.features.to_dict(),
            "windows": self.windows.to_dict(),
            "seed": self.seed,
            **self.layout(),
        }

    @staticmethod
    def args_of(m: Manifest) -> dict:
        """The arguments of the build that wrote `m` (its roots are those its sources record)."""
        return {
            **m.build,
            "roots": [s["root"] for s in m.sources],
            "features": m.features.to_dict(),
            "windows": m.window.to_dict(),
            "seed": m.seed,
        }


def label_rule(win: WindowConfig) -> str:
    if win.segmentation == "spans":
        return (
            "spans: one sample per merged span (cropped/tiled to the window), "
            "labelled with the span's notes"
        )
    return (
        f"windows: instrument on when it sounds in >= {win.min_active:g} of the window's frames "
        "(at least one frame); notes: pitches sounding in any frame"
    )


@dataclass
class BuildState:
    """An unfinished build's own folder in OUT, and what it proves was written."""

    out: Path
    build_id: str
    args: dict
    # shards this build id wrote (from its records, or an earlier manifest)
    done: dict[str, ShardInfo]

    @property
    def folder(self) -> Path:
        return self.out / STATE

    @property
    def staging(self) -> Path:
        return self.folder / "staging"

    @property
    def tmp(self) -> Path:
        return self.folder / "tmp"

    @classmethod
    def read(cls, out: Path) -> BuildState | None:
        folder = out / STATE
        if (
            not folder.exists()
            or not (folder / "build.json").exists()
            and not any(folder.iterdir())
        ):
            return None  # nothing, or a build stopped before it wrote anything
        state = require(
            read_json(folder / "build.json", "build state"),
            ("build_id", "args"),
            f"{folder / 'build.json'}: not a musicid build state",
        )
        done = {
            p.stem: from_fields(ShardInfo, read_json(p, "shard record"), str(p))
            for p in sorted((folder / "done").glob("*.json"))
        }
        return cls(out, state["build_id"], state["args"], done)

    def create(self) -> None:
        self.folder.mkdir(exist_ok=True)
        write_json_atomic(
            self.folder / "build.json",
            {"tool": "musicid build-shards", "build_id": self.build_id, "args": self.args},
        )
        # temporary files of an interrupted run of this same build
        shutil.rmtree(self.tmp, ignore_errors=True)
        for sub in (self.staging, self.tmp, self.folder / "done"):
            sub.mkdir(exist_ok=True)
        for info in self.done.values():
            self.record(info)
        (self.folder / "pid").write_text(str(os.getpid()))

    def record(self, info: ShardInfo) -> None:
        write_json_atomic(self.folder / "done" / f"{info.name}.json", asdict(info))

    def intact(self, name: str) -> bool:
        info, path = self.done.get(name), self.out / name
        return info is not None and path.is_file() and path.stat().st_size == info.bytes


def _remove_own(out: Path, previous: Manifest | None, state: BuildState | None) -> None:
    """--overwrite: remove what an earlier build provably wrote (its listed shards, manifest and
    state), only."""
    names = {
        s.name for split in (previous.splits.values() if previous else []) for s in split.shards
    }
    names |= set(state.done) if state else set()
    for name in names:
        (out / name).unlink(missing_ok=True)
    if previous:
        (out / MANIFEST).unlink()
    if state:
        shutil.rmtree(state.folder)


def _open_build(out: Path, args: dict, overwrite: bool) -> tuple[BuildState, Manifest | None]:
    """The state to build with, and an earlier complete manifest if there is one. Refuses, before
    removing anything, an OUT holding shard-named files that no build here wrote."""
    try:
        previous = read_manifest(out) if (out / MANIFEST).exists() else None
    except InputError as exc:
        raise InputError(
            f"{exc}; a build replaces only what it can read as its own: move OUT's files away, "
            "or choose another OUT"
        ) from exc
    state = BuildState.read(out)
    known = (
        {s.name for split in previous.splits.values() for s in split.shards} if previous else set()
    )
    known |= set(state.done) if state else set()
    foreign = sorted(
        p.name for p in out.iterdir() if SHARD_NAME.fullmatch(p.name) and p.name not in known
    )
    if foreign:
        raise InputError(
            f"{out / foreign[0]}: a shard-named file that no musicid build here wrote "
            f"({len(foreign)} such file(s)); move them away or choose another OUT"
        )
    old = state.args if state else BuildConfig.args_of(previous) if previous else None
    if old is not None and old != args and not overwrite:
        diff = "; ".join(differing_fields(old, args))
        raise InputError(
            f"{out}: an existing build used other arguments ({diff}); rerun with them, or "
            "--overwrite"
        )
    # starts over even with the same arguments: the roots' files may be new
    if old is not None and overwrite:
        _remove_own(out, previous, state)
        previous = state = None
    if state is None:
        done = (
            {s.name: s for split in previous.splits.values() for s in split.shards}
            if previous
            else {}
        )
        state = BuildState(out, previous.build_id if previous else uuid.uuid4().hex, args, done)
    return state, previous


def _ensemble(meta: dict, from_metadata: dict[str, str]) -> str:
    names = [NAMES[i] for i in meta["instruments_present"]]
    return from_metadata.get(meta["id"]) or ("+".join(names) if names else "silent")


def source_prefix(index: int) -> str:
    """Recording-id prefix of the index-th root: none for the main dataset, `src1-`, `src2-`, ...
    after it."""
    return f"src{index}-" if index else ""


def _find_all(
    roots: list[Path],
) -> tuple[list[Recording], dict[str, int], Counter, list[str], dict[str, str]]:
    """Recordings of every root (extra roots' ids prefixed, their folder `extra`), each one's root
    index, skips, and ensembles."""
    recordings, source_of, skipped, details, ensembles = [], {}, Counter(), [], {}
    for i, root in enumerate(roots):
        found, skip, detail = find_recordings(root)
        for r in found:
            rid = source_prefix(i) + r.id
            if rid in source_of:
                raise InputError(
                    f"{r.audio}: recording id {rid} is also in {roots[source_of[rid]]}; rename one"
                )
            source_of[rid] = i
            recordings.append(replace(r, id=rid, folder=r.folder if i == 0 else "extra"))
        skipped.update(skip)
        details += detail
        ensembles |= {source_prefix(i) + rid: e for rid, e in read_metadata(root).items()}
    return recordings, source_of, skipped, details, ensembles


def _stage_all(
    recordings: list[Recording],
    skipped: Counter,
    details: list[str],
    state: BuildState,
    cfg: BuildConfig,
    workers: int,
    progress: bool,
):
    """Stage 1: every recording decoded and featurised once (reusing what an interrupted build
    staged)."""
    stage = partial(
        stage_recording,
        staging=state.staging,
        tmp_dir=state.tmp,
        feat=cfg.features,
        win=cfg.windows,
    )
    metas, counts = {}, Counter()
    for meta in ordered_map(stage, recordings, workers, "recordings", progress):
        if "skipped" in meta:
            skipped["recordings_unreadable_audio"] += 1
            details.append(meta["skipped"])
            continue
        metas[meta["id"]] = meta
        skipped.update(meta["dropped"])
        counts["reused" if meta.get("reused") else "staged_s"] += (
            1 if meta.get("reused") else meta["seconds"]
        )
    if not metas:
        raise InputError(
            f"none of the {len(recordings)} recordings could be used: " + "; ".join(details[:3])
        )
    return metas, skipped, details, counts


def _split(metas: dict, ensembles: dict, cfg: BuildConfig) -> dict[str, str]:
    """Splits by recording: test = the main root's test folder; extra roots go to train, or also to
    val when asked; never to test."""
    folders = {
        rid: m["folder"] for rid, m in metas.items() if m["folder"] != "extra" or cfg.extra_val
    }
    split_of = assign_splits(
        {rid: "train" if f == "extra" else f for rid, f in folders.items()},
        ensembles,
        cfg.val_fraction,
        cfg.seed,
    )
    return split_of | {rid: "train" for rid, m in metas.items() if rid not in split_of}


def _sources(
    roots: list[Path], source_of: dict[str, int], metas: dict, state: BuildState
) -> list[dict]:
    """Per root: its recordings, seconds and positives per instrument (windows) among the built
    samples."""
    out = []
    for i, root in enumerate(roots):
        ids = sorted(rid for rid in metas if source_of[rid] == i)
        pos = sum(
            (
                np.load(state.staging / rid / "instruments.npy").sum(axis=0, dtype=np.int64)
                for rid in ids
            ),
            np.zeros(N_INSTRUMENTS, dtype=np.int64),
        )
        out.append(
            {
                "root": str(Path(root).resolve()),
                "recordings": ids,
                "seconds": round(sum(metas[r]["seconds"] for r in ids), 3),
                "instrument_positives": dict(zip(NAMES, pos.tolist(), strict=True)),
            }
        )
    return out


def _plan_splits(state: BuildState, cfg: BuildConfig, metas: dict, split_of: dict, ensembles: dict):
    """Shard jobs and split records (without their shards yet) for every split."""
    n_frames, _ = cfg.windows.frames(cfg.features.frame_rate)
    json_len = max(
        len(
            json.dumps(
                {
                    "recording": rid,
                    "start_s": 1e5 + 0.123456,
                    "end_s": 1e5 + 0.123456,
                    "ensemble": e,
                }
            )
        )
        for rid, e in ensembles.items()
    )
    per_sample = max(
        sample_bytes(cfg.features.n_bins, n_frames, sample_key(rid, 0.0), json_len) for rid in metas
    )
    jobs, splits = [], {}
    for split in SPLITS:
        members = sorted(rid for rid, s in split_of.items() if s == split)
        counts = {rid: metas[rid]["n_samples"] for rid in members if metas[rid]["n_samples"] > 0}
        positives = np.zeros(N_INSTRUMENTS, dtype=np.int64)
        for rid in counts:
            positives += np.load(state.staging / rid / "instruments.npy").sum(
                axis=0, dtype=np.int64
            )
        plan = (
            plan_capped(
                counts,
                split,
                cfg.shards_per_split,
                cfg.block_size,
                cfg.seed,
                cfg.max_shard_mb * 2**20,
                per_sample,
            )
            if counts
            else []
        )
        for i, blocks in enumerate(plan):
            name = shard_name(split, i)
            jobs.append(
                ShardJob(
                    state.out / name,
                    state.tmp / f"{name}.part",
                    blocks,
                    state.staging,
                    n_frames,
                    cfg.features.frame_rate,
                    ensembles,
                    cfg.windows.segmentation == "spans",
                )
            )
        splits[split] = SplitInfo(
            sum(counts.values()),
            members,
            round(sum(metas[r]["seconds"] for r in members), 3),
            dict(zip(NAMES, positives.tolist(), strict=True)),
        )
    return jobs, splits, n_frames


def _write_one(job: ShardJob, state: BuildState) -> ShardInfo:
    """Reuse a shard this build already wrote intact; else write it, recording it before it takes
    its name."""
    if state.intact(job.path.name):
        return state.done[job.path.name]
    return write_shard(job, state.record)


def _normalisation(state: BuildState, metas: dict, train: list[str]) -> dict:
    """Per-mel-bin mean/std from train frames; only a build without train recordings falls back to
    all."""
    source = train or sorted(metas)
    stats = sum(np.load(state.staging / rid / "stats.npy") for rid in source)
    count = sum(metas[rid]["n_frames"] for rid in source)
    mean = stats[0] / count
    std = np.sqrt(np.maximum(stats[1] / count - mean**2, 1e-12))
    return {
        "mean": mean.round(5).tolist(),
        "std": std.round(5).tolist(),
        "source": "train split frames" if train else "all frames",
    }


@dataclass
class BuildResult:
    manifest: Manifest
    wall_s: float
    already_complete: bool = False
    rebuilt_missing: int = 0
    recordings_reused: int = 0
    audio_seconds_processed: float = 0.0

    @property
    def realtime_factor(self) -> float | None:
        return round(self.audio_seconds_processed / self.wall_s, 1) if self.wall_s else None


def build_shards(
    roots: Path | list[Path],
    out: Path,
    cfg: BuildConfig,
    workers: int = WORKERS,
    overwrite: bool = False,
    progress: bool = False,
) -> BuildResult:
    """Build (or resume, repair, or confirm) a shard set in `out` from one root or several (main
    first)."""
    t0 = time.perf_counter()
    roots = [Path(r) for r in (roots if isinstance(roots, list | tuple) else [roots])]
    # before OUT or any state is made: a mistyped root must not block the corrected build
    _check_roots(roots)
    out = output_folder(out)
    missing: list[str] = []
    with holding(out, "build", out / STATE / "pid"):
        state, previous = _open_build(out, cfg.args(roots), overwrite)
        if previous is not None:
            missing = [
                s.name
                for split in previous.splits.values()
                for s in split.shards
                if not state.intact(s.name)
            ]
            if not missing:
                return BuildResult(previous, time.perf_counter() - t0, already_complete=True)
            log.info(
                "%s: %d shard(s) missing or changed (%s ...): rebuilding them",
                out,
                len(missing),
                missing[0],
            )
            for name in missing:
                del state.done[name]
        state.create()
        recordings, source_of, skipped, details, from_metadata = _find_all(roots)
        metas, skipped, details, counts = _stage_all(
            recordings, skipped, details, state, cfg, workers, progress
        )
        ensembles = {rid: _ensemble(m, from_metadata) for rid, m in metas.items()}
        jobs, splits, n_frames = _plan_splits(
            state, cfg, metas, _split(metas, ensembles, cfg), ensembles
        )
        for info in ordered_map(
            partial(_write_one, state=state), jobs, workers, "shards", progress
        ):
            splits[info.name.split("-")[0]].shards.append(info)
        _warn_missing_in_val(splits)
        manifest = Manifest(
            state.build_id,
            cfg.layout(),
            cfg.features,
            cfg.windows,
            n_frames,
            label_rule(cfg.windows),
            cfg.seed,
            splits,
            _normalisation(state, metas, splits["train"].recordings),
            ensembles,
            dict(sorted(skipped.items())),
            details,
            _sources(roots, source_of, metas, state),
        )
        write_json_atomic(out / MANIFEST, manifest.to_dict())
        shutil.rmtree(state.folder)
    return BuildResult(
        manifest,
        time.perf_counter() - t0,
        rebuilt_missing=len(missing),
        recordings_reused=int(counts["reused"]),
        audio_seconds_processed=round(counts["staged_s"], 3),
    )


def _check_roots(roots: list[Path]) -> None:
    """Every root a MusicNet layout; none given twice or inside another, which would put one
    recording in two splits (a main root's test recordings in train, under another root's
    prefix)."""
    resolved = []
    for root in roots:
        data_dir(root)
        here = root.resolve()
        for other, given in resolved:
            if here == other or other in here.parents or here in other.parents:
                relation = (
                    "the same folder as"
                    if here == other
                    else "inside"
                    if other in here.parents
                    else "holds"
                )
                raise InputError(f"{root}: {relation} root {given}; give each dataset once")
        resolved.append((here, root))


def _warn_missing_in_val(splits: dict[str, SplitInfo]) -> None:
    train, val = splits["train"].instrument_positives, splits["val"].instrument_positives
    gaps = [n for n in NAMES if train[n] and not val[n]]
    if gaps and splits["val"].samples:
        log.warning(
            "warning: val has no %s (train has): calibration falls back to a default for them",
            ", ".join(gaps),
        )
