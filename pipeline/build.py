"""`build-shards`: MusicNet root -> staged recordings -> block-scattered WebDataset shards + manifest.

Stage 1 decodes and featurises each recording once (process pool, resumable per recording); stage 2
writes the shards from memory-mapped staging (process pool, resumable per shard). Peak memory is one
recording's audio and spectrogram per worker, whatever the dataset's size.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .features import FeatureConfig
from .labels import InputError
from .layout import find_recordings, read_metadata
from .manifest import FORMAT_VERSION, MANIFEST, differing_fields, read_manifest, write_json_atomic
from .shardwriter import ShardJob, plan_shards, shard_name, write_shard
from .splits import SPLITS, assign_splits
from .staging import stage_recording
from .vocab import N_INSTRUMENTS, NAMES, vocabulary
from .windows import WindowConfig

STAGING = ".staging"


@dataclass(frozen=True)
class BuildConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)
    val_fraction: float = 0.1
    block_size: int = 16
    shards_per_split: int = 8
    max_shard_mb: float = 0.0  # 0: no size cap; else more shards until each is under the cap
    seed: int = 0

    def to_dict(self) -> dict:
        return {**asdict(self), "features": self.features.to_dict(), "windows": self.windows.to_dict()}


def label_rule(win: WindowConfig) -> str:
    if win.segmentation == "spans":
        return "spans: one sample per merged span (cropped/tiled to the window), labelled with the span's notes"
    return (f"windows: instrument on when it sounds in >= {win.min_active:g} of the window's frames "
            "(at least one frame); notes: pitches sounding in any frame")


def _run(fn: Callable, jobs: list, workers: int, desc: str, progress: bool) -> Iterable:
    """Map `fn` over jobs in order, in-process for one worker, else in a process pool; with a progress bar."""
    bar = tqdm(total=len(jobs), desc=desc, unit="rec" if desc == "recordings" else "shard", disable=not progress)
    if workers <= 1:
        for job in jobs:
            yield fn(job)
            bar.update()
    else:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            for result in pool.map(fn, jobs):
                yield result
                bar.update()
    bar.close()


def _prepare_out(out: Path, args: dict, overwrite: bool) -> dict | None:
    """Check an existing build in `out`; returns its manifest when it is complete with the same arguments."""
    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for p in list(out.glob("*-[0-9][0-9][0-9][0-9][0-9][0-9].tar")) + [out / MANIFEST]:
            p.unlink(missing_ok=True)
        shutil.rmtree(out / STAGING, ignore_errors=True)
    for p in out.glob(".*.tmp-*"):  # half-written files of an interrupted build
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    previous = None
    if (out / MANIFEST).exists():
        previous = read_manifest(out)
        old_args = previous.get("build_args", {})
    elif (out / STAGING / "build_args.json").exists():
        old_args = json.loads((out / STAGING / "build_args.json").read_text())
    else:
        old_args = None
    if old_args is not None and old_args != args:
        diff = "; ".join(differing_fields(old_args, args))
        raise InputError(f"{out}: an existing build used other arguments ({diff}); rerun with them, or --overwrite")
    return previous


def _ensemble(meta: dict, from_metadata: dict[str, str]) -> str:
    names = [NAMES[i] for i in meta["instruments_present"]]
    return from_metadata.get(meta["id"]) or ("+".join(names) if names else "silent")


def build_shards(root: Path, out: Path, cfg: BuildConfig, workers: int = 1, overwrite: bool = False,
                 progress: bool = True) -> dict:
    """Build (or resume, or confirm) a shard set; returns the manifest, with a `summary` of this run."""
    t0 = time.perf_counter()
    root, out = Path(root), Path(out)
    recordings, skipped, details = find_recordings(root)
    args = {"root": str(root.resolve()), **cfg.to_dict()}
    done = _prepare_out(out, args, overwrite)
    if done is not None:
        return {**done, "summary": {"wall_s": time.perf_counter() - t0, "already_complete": True}}
    staging = out / STAGING
    staging.mkdir(exist_ok=True)
    write_json_atomic(staging / "build_args.json", args)
    from_metadata = read_metadata(root)

    stage = partial(stage_recording, staging=staging, feat=cfg.features, win=cfg.windows)
    metas, dropped, reused, staged_s = {}, Counter(), 0, 0.0
    for meta in _run(stage, recordings, workers, "recordings", progress):
        if "skipped" in meta:
            skipped["recordings_unreadable_audio"] += 1
            details.append(meta["skipped"])
            continue
        metas[meta["id"]] = meta
        dropped.update(meta["dropped"])
        reused += bool(meta.get("reused"))
        staged_s += 0.0 if meta.get("reused") else meta["seconds"]
    skipped.update(dropped)
    if not metas:
        raise InputError(f"{root}: none of the {len(recordings)} recordings could be used: " + "; ".join(details[:5]))

    ensembles = {rid: _ensemble(m, from_metadata) for rid, m in metas.items()}
    split_of = assign_splits({rid: m["folder"] for rid, m in metas.items()}, ensembles, cfg.val_fraction, cfg.seed)
    n_frames, _ = cfg.windows.frames(cfg.features.frame_rate)
    sample_bytes = 2 * cfg.features.n_mels * n_frames + N_INSTRUMENTS * n_frames + 3072 + 1024
    jobs, splits = [], {}
    for split in SPLITS:
        members = sorted(rid for rid, s in split_of.items() if s == split)
        counts = {rid: metas[rid]["n_samples"] for rid in members if metas[rid]["n_samples"] > 0}
        positives = np.zeros(N_INSTRUMENTS, dtype=np.int64)
        for rid in counts:
            positives += np.load(staging / rid / "instruments.npy").sum(axis=0, dtype=np.int64)
        total = sum(counts.values())
        n_shards = cfg.shards_per_split
        if cfg.max_shard_mb > 0:
            n_shards = max(n_shards, math.ceil(total * sample_bytes / (cfg.max_shard_mb * 2**20)))
        plan = plan_shards(counts, split, n_shards, cfg.block_size, cfg.seed) if total else []
        jobs += [ShardJob(out / shard_name(split, i), blocks, staging, n_frames, cfg.features.frame_rate, ensembles,
                          span_samples=cfg.windows.segmentation == "spans") for i, blocks in enumerate(plan)]
        splits[split] = {
            "samples": total,
            "recordings": members,
            "seconds": round(sum(metas[r]["seconds"] for r in members), 3),
            "instrument_positives": dict(zip(NAMES, positives.tolist(), strict=True)),
            "shards": [],
        }
    for info in _run(write_shard, jobs, workers, "shards", progress):
        splits[info["name"].split("-")[0]]["shards"].append(info)

    # Normalisation from train frames; only a build without train recordings falls back to all of them.
    source = splits["train"]["recordings"] or sorted(metas)
    stats = sum(np.load(staging / rid / "stats.npy") for rid in source)
    count = sum(metas[rid]["n_frames"] for rid in source)
    mean = stats[0] / count
    std = np.sqrt(np.maximum(stats[1] / count - mean**2, 1e-12))
    wall = time.perf_counter() - t0
    manifest = {
        "format_version": FORMAT_VERSION,
        "build_args": args,
        "features": cfg.features.to_dict(),
        "window": {**cfg.windows.to_dict(), "n_frames": n_frames},
        "label_rule": label_rule(cfg.windows),
        "instruments": vocabulary(),
        "seed": cfg.seed,
        "splits": splits,
        "normalization": {"mean": mean.round(5).tolist(), "std": std.round(5).tolist(),
                          "source": "train split frames" if splits["train"]["recordings"] else "all frames"},
        "ensembles": ensembles,
        "skipped": dict(sorted(skipped.items())),
        "skipped_details": details,
    }
    write_json_atomic(out / MANIFEST, manifest)
    shutil.rmtree(staging)
    summary = {"wall_s": round(wall, 3), "recordings_reused": reused, "audio_seconds_processed": round(staged_s, 3),
               "realtime_factor": round(staged_s / wall, 1) if wall else None, "already_complete": False}
    return {**manifest, "summary": summary}


def format_summary(manifest: dict) -> str:
    """Human summary of a manifest (used by build-shards at the end and by inspect)."""
    lines = []
    feat, win = manifest["features"], manifest["window"]
    lines.append(f"features: log-mel {feat['n_mels']} bins @ {feat['sample_rate']} Hz, n_fft {feat['n_fft']}, "
                 f"hop {feat['hop_length']}; samples: {win['segmentation']} {win['window_s']} s "
                 f"({win['n_frames']} frames), hop {win['hop_s']} s")
    lines.append(f"label rule: {manifest['label_rule']}")
    header = f"{'split':<6}{'recs':>6}{'hours':>8}{'samples':>9}{'shards':>7}{'MB':>9}  " + " ".join(
        f"{n[:5]:>5}" for n in NAMES)
    lines.append(header)
    for split in SPLITS:
        s = manifest["splits"][split]
        mb = sum(x["bytes"] for x in s["shards"]) / 2**20
        pos = " ".join(f"{s['instrument_positives'][n]:>5}" for n in NAMES)
        lines.append(f"{split:<6}{len(s['recordings']):>6}{s['seconds'] / 3600:>8.2f}{s['samples']:>9}"
                     f"{len(s['shards']):>7}{mb:>9.1f}  {pos}")
    skipped = manifest.get("skipped", {})
    lines.append("skipped: " + (", ".join(f"{k}={v}" for k, v in skipped.items()) if skipped else "none"))
    lines += [f"  {d}" for d in manifest.get("skipped_details", [])[:20]]
    return "\n".join(lines)
