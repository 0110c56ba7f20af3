"""Reading MusicNet note-label CSVs, dropping bad rows with counted reasons."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .vocab import program_to_index

LABEL_COLUMNS = ("start_time", "end_time", "instrument", "note", "start_beat", "end_beat", "note_value")


class InputError(Exception):
    """Bad input that stops the build: the message names the file and the problem."""


@dataclass
class Notes:
    """Valid notes of one recording; times are sample indices at the wav's own rate, half-open [start, end)."""

    start: np.ndarray  # int64
    end: np.ndarray  # int64
    instrument: np.ndarray  # int64 index into the vocabulary
    pitch: np.ndarray  # int64 MIDI pitch 0..127

    def __len__(self) -> int:
        return len(self.start)


def read_labels(path: Path, n_samples: int | None = None) -> tuple[Notes, Counter]:
    """Read one label CSV. A missing column raises InputError; bad rows are dropped and counted.

    `n_samples` is the length of the matching wav (at its own rate): rows ending past it are dropped.
    """
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot parse label CSV ({exc})") from exc
    missing = [c for c in LABEL_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: label CSV is missing column(s) {', '.join(missing)}")
    dropped: Counter = Counter()
    numeric = {c: pd.to_numeric(df[c], errors="coerce") for c in ("start_time", "end_time", "instrument", "note")}
    bad_number = np.zeros(len(df), dtype=bool)
    for col in numeric.values():
        bad_number |= col.isna().to_numpy()
    dropped["rows_not_numeric"] = int(bad_number.sum())
    start = numeric["start_time"].to_numpy(dtype=np.float64, na_value=0).round().astype(np.int64)
    end = numeric["end_time"].to_numpy(dtype=np.float64, na_value=0).round().astype(np.int64)
    program = numeric["instrument"].to_numpy(dtype=np.float64, na_value=-1).astype(np.int64)
    pitch = numeric["note"].to_numpy(dtype=np.float64, na_value=-1).astype(np.int64)
    keep = ~bad_number
    checks = (
        ("rows_negative_time", (start < 0) | (end < 0)),
        ("rows_end_not_after_start", end <= start),
        ("rows_past_end_of_audio", end > n_samples if n_samples is not None else np.zeros_like(keep)),
        ("rows_unknown_instrument", program_to_index(program) < 0),
        ("rows_bad_pitch", (pitch < 0) | (pitch > 127)),
    )
    for reason, bad in checks:
        hit = keep & bad
        dropped[reason] += int(hit.sum())
        keep &= ~bad
    notes = Notes(start[keep], end[keep], program_to_index(program[keep]), pitch[keep])
    return notes, +dropped
