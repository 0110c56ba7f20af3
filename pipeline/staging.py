"""Stage 1 of a build: one recording decoded once, featurised once, labelled, and staged on disk.

A staged recording is a folder of `.npy` arrays plus `meta.json`, made in the build's temporary
folder and renamed when complete, so an interrupted build resumes by skipping the folders that
exist. Stage 2 slices shard samples out of these arrays through memory maps, so no stage holds more
than one recording in RAM.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np

from musicid.audio import load_audio
from musicid.errors import AudioError
from musicid.features import Features, frame_positions
from musicid.windows import Samples, WindowConfig, cut_windows

from .labels import read_labels
from .layout import Recording
from .spans import cut_spans, frame_activity, merge_spans


def stage_recording(
    rec: Recording, staging: Path, tmp_dir: Path, feat: Features, win: WindowConfig
) -> dict:
    """Stage one recording; returns its meta. Unusable audio gives {"skipped": reason} instead."""
    final = staging / rec.id
    if (final / "meta.json").is_file():
        return {**json.loads((final / "meta.json").read_text()), "reused": True}
    try:
        audio, rate = load_audio(rec.audio)
    except AudioError as exc:
        return {"id": rec.id, "skipped": str(exc)}
    # what decodes: for compressed audio the header's length is only an estimate
    frames = len(audio)
    notes, dropped = read_labels(rec.labels, frames)
    spec = feat.compute(audio, rate)
    del audio
    spans = merge_spans(notes)
    inst_roll, pitch_roll = frame_activity(spans, frame_positions(spec.shape[1], feat, rate))
    if win.segmentation == "spans":
        samples = cut_spans(spans, spec.shape[1], win, feat.frame_rate, rate)
    else:
        samples = cut_windows(inst_roll, pitch_roll, win, feat.frame_rate)
    spec64 = spec.astype(np.float64)
    meta = {
        "id": rec.id,
        "folder": rec.folder,
        "seconds": frames / rate,
        "sample_rate": rate,
        "n_frames": int(spec.shape[1]),
        "n_samples": len(samples),
        "dropped": dict(dropped),
        "instruments_present": [int(i) for i in np.flatnonzero(inst_roll.any(axis=1))],
    }
    arrays = {
        "spec": spec.astype(np.float16),
        "roll": inst_roll,
        "stats": np.stack([spec64.sum(axis=1), (spec64**2).sum(axis=1)]),
        **{k: getattr(samples, k) for k in ("frame0", "length", "start_s", "instruments", "notes")},
    }
    tmp = tmp_dir / f"{rec.id}.{os.getpid()}"
    try:
        tmp.mkdir(parents=True)
        for name, arr in arrays.items():
            try:
                np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
            except OSError as exc:
                # numpy's short write: no errno, no name
                if exc.errno is None and "requested and" in str(exc):
                    raise OSError(
                        errno.ENOSPC, f"no space left on the device ({exc})", str(tmp)
                    ) from exc
                raise
        (tmp / "meta.json").write_text(json.dumps(meta))
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def load_samples(folder: Path) -> Samples:
    """A staged recording's per-sample arrays (small; the spectrogram stays on disk)."""
    get = {
        k: np.load(folder / f"{k}.npy", allow_pickle=False)
        for k in ("frame0", "length", "start_s", "instruments", "notes")
    }
    return Samples(**get)
