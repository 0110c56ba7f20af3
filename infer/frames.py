"""Frame-level scoring: per-frame probabilities from the windows that cover each frame, against the
frame activity the shards carry (`roll.npy`).

A frame's probability is the mean over every window covering it (at the default 1 s window and 0.5 s
hop, two windows cover most frames; the first and last half-window one). Frames no window covers
(the tail of a recording after its last whole window, less than one hop) are left out. `frame_rate`
resamples to a coarser grid: probabilities are averaged over each bin's frames, a class is labelled
on in a bin when it sounds in at least half of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Rows:
    """What gets scored: one row per window or per frame, with the recording it belongs to."""

    probs: np.ndarray  # [R, C]
    labels: np.ndarray  # [R, C] 0/1
    recordings: np.ndarray  # [R] recording id of each row
    rate: float  # rows per second within a recording (window hop or frame rate)


def _bins(values: np.ndarray, factor: int, reduce) -> np.ndarray:
    n = len(values) // factor * factor
    tail = [reduce(values[n:], axis=0, keepdims=True)] if n < len(values) else []
    return np.concatenate([reduce(values[:n].reshape(-1, factor, values.shape[1]), axis=1), *tail])


def to_frames(
    probs: np.ndarray,
    rolls: np.ndarray,
    recordings: list[str],
    start_frames: np.ndarray,
    frame_rate: float,
    target_rate: float | None = None,
) -> Rows:
    """Window probabilities [N, C] and frame rolls [N, C, T] -> frame rows (optionally on a coarser
    grid)."""
    n_frames = rolls.shape[2]
    factor = max(1, round(frame_rate / target_rate)) if target_rate else 1
    recs = np.asarray(recordings)
    out_p, out_l, out_r = [], [], []
    for rec in sorted(set(recordings)):
        idx = np.flatnonzero(recs == rec)
        # [W, T] frame indices of each window
        frames = start_frames[idx, None] + np.arange(n_frames)
        total = int(frames.max()) + 1
        psum = np.zeros((total, probs.shape[1]))
        count = np.zeros(total)
        labels = np.zeros((total, probs.shape[1]), dtype=np.uint8)
        np.add.at(psum, frames.ravel(), np.repeat(probs[idx], n_frames, axis=0))
        np.add.at(count, frames.ravel(), 1)
        labels[frames.ravel()] = rolls[idx].transpose(0, 2, 1).reshape(-1, probs.shape[1])
        covered = count > 0
        p, lab = psum[covered] / count[covered, None], labels[covered]
        if factor > 1:
            p, lab = (
                _bins(p, factor, np.mean),
                (_bins(lab.astype(float), factor, np.mean) >= 0.5).astype(np.uint8),
            )
        out_p.append(p)
        out_l.append(lab)
        out_r.append(np.full(len(p), rec, dtype=object))
    if not out_p:
        return Rows(
            np.zeros((0, probs.shape[1])),
            np.zeros((0, probs.shape[1])),
            np.zeros(0, dtype=object),
            frame_rate / factor,
        )
    return Rows(
        np.concatenate(out_p), np.concatenate(out_l), np.concatenate(out_r), frame_rate / factor
    )
