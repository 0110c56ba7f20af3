"""The window rules, shared by shard building and prediction: where windows start over a recording's
feature frames, and how a window is labelled from the frame activity.

A sample is a run of `length` frames starting at `frame0`, tiled up to the fixed `n_frames` when
shorter (`frame0 + arange(n_frames) % length`). `windows` segmentation gives fixed windows every
hop; `spans` reproduces the prior work (one sample per merged span, cropped or tiled: the pipeline's
`cut_spans`).

Clip label rule (`min_active`): an instrument is on in a window when it sounds in at least that
fraction of the window's frames (at least one frame; 0 means any frame). Notes: any pitch sounding
in any frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from musicid.errors import InputError
from musicid.records import from_fields

from .features import seconds_to_frames

SEGMENTATIONS = ("windows", "spans")


@dataclass(frozen=True)
class WindowConfig:
    window_s: float = 1.0
    hop_s: float = 0.5
    segmentation: str = "windows"  # or "spans": the prior work's samples
    min_active: float = 0.1

    def __post_init__(self):
        if self.segmentation not in SEGMENTATIONS:
            raise InputError(
                f"segmentation must be one of {', '.join(SEGMENTATIONS)}, not {self.segmentation!r}"
            )
        if self.window_s <= 0 or self.hop_s <= 0 or not 0 <= self.min_active <= 1:
            raise InputError(
                f"window: need window_s > 0, hop_s > 0, 0 <= min_active <= 1 (got {self})"
            )

    def frames(self, frame_rate: float) -> tuple[int, int]:
        """(frames per sample, frames between window starts) at the feature frame rate."""
        return seconds_to_frames(self.window_s, frame_rate), seconds_to_frames(
            self.hop_s, frame_rate
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> WindowConfig:
        return from_fields(cls, d, "window config")


@dataclass
class Samples:
    """Per-sample frame runs and labels of one recording."""

    frame0: np.ndarray  # int64 [S]
    length: np.ndarray  # int64 [S], frames before tiling
    start_s: np.ndarray  # float64 [S], exact start (span starts are finer than a frame)
    instruments: np.ndarray  # uint8 [S, 11]
    notes: np.ndarray  # uint8 [S, 128]

    def __len__(self) -> int:
        return len(self.frame0)


def frame_index(frame0: int, length: int, n_frames: int) -> np.ndarray:
    """Frame indices of one sample: its run, tiled up to `n_frames`."""
    return frame0 + np.arange(n_frames) % length


def window_starts(n_frames: int, width: int, hop: int, cover_end: bool = False) -> np.ndarray:
    """Start frames of the windows over `n_frames` frames: every `hop` while a whole window fits; a
    recording shorter than one window gives one window at 0 (tiled, see `frame_index`). `cover_end`
    (prediction: every frame gets a window) adds a last window flush with the end when the hop
    leaves frames uncovered."""
    if n_frames < width:
        return np.zeros(1 if n_frames else 0, dtype=np.int64)
    starts = np.arange(0, n_frames - width + 1, hop, dtype=np.int64)
    if cover_end and starts[-1] + width < n_frames:
        starts = np.r_[starts, n_frames - width]
    return starts


def sliding_windows(
    pieces: Iterable[np.ndarray], width: int, hop: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(start frame, [bins, width] window) over frames arriving in pieces (prediction's streaming
    form of `window_starts` with `cover_end`); only the frames not yet consumed are kept between
    pieces."""
    buf, offset, next_start, total = None, 0, 0, 0
    for piece in pieces:
        buf = piece if buf is None else np.concatenate([buf, piece], axis=1)
        total += piece.shape[1]
        while next_start + width <= total:
            yield next_start, buf[:, next_start - offset : next_start - offset + width]
            next_start += hop
        drop = max(0, min(next_start, total - width) - offset)
        buf, offset = buf[:, drop:], offset + drop
    for start in window_starts(total, width, hop, cover_end=True):
        if start >= next_start:  # the tail: a window flush with the end, or one tiled
            yield int(start), buf[:, frame_index(start - offset, min(width, total), width)]


def _window_counts(roll: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """Active frames per row of `roll` in each window [start, start + width) -> [S, rows]."""
    cs = np.zeros((roll.shape[0], roll.shape[1] + 1), dtype=np.int64)
    np.cumsum(roll, axis=1, out=cs[:, 1:])
    return (cs[:, starts + width] - cs[:, starts]).T


def cut_windows(
    inst_roll: np.ndarray, pitch_roll: np.ndarray, cfg: WindowConfig, frame_rate: float
) -> Samples:
    """Fixed windows over a recording of T frames, labelled by the rule above."""
    width, hop = cfg.frames(frame_rate)
    n = inst_roll.shape[1]
    starts, width_used = window_starts(n, width, hop), min(width, n)
    need = max(1, int(np.ceil(cfg.min_active * width_used)))
    inst = (_window_counts(inst_roll, starts, width_used) >= need).astype(np.uint8)
    notes = (_window_counts(pitch_roll, starts, width_used) >= 1).astype(np.uint8)
    return Samples(
        starts, np.full(len(starts), width_used, dtype=np.int64), starts / frame_rate, inst, notes
    )
