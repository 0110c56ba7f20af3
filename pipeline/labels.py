"""Reading MusicNet note-label CSVs, dropping bad rows with counted reasons."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from musicid.errors import InputError
from musicid.vocab import musicnet_id_to_index

LABEL_COLUMNS = (
    "start_time",
    "end_time",
    "instrument",
    "note",
    "start_beat",
    "end_beat",
    "note_value",
)


@dataclass
class Notes:
    """Valid notes of one recording; times are sample indices at the wav's own rate, half-open
    [start, end)."""

    start: np.ndarray  # int64
    end: np.ndarray  # int64
    instrument: np.ndarray  # int64 index into the vocabulary
    pitch: np.ndarray  # int64 MIDI pitch 0..127

    def __len__(self) -> int:
        return len(self.start)


def read_labels(path: Path, n_samples: int | None = None) -> tuple[Notes, Counter]:
    """Read one label CSV. A missing column raises InputError; bad rows are dropped and counted.

    `n_samples` is the length of the matching wav (at its own rate): rows ending past it are
    dropped.
    """
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot parse label CSV ({exc})") from exc
    missing = [c for c in LABEL_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: label CSV is missing column(s) {', '.join(missing)}")
    dropped: Counter = Counter()
    num = {
        c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        for c in ("start_time", "end_time", "instrument", "note")
    }
    start, end, program, pitch = num["start_time"], num["end_time"], num["instrument"], num["note"]
    values = np.stack(list(num.values()))
    length = np.inf if n_samples is None else n_samples
    # NaN and inf rows are counted by the first checks, not warned about
    with np.errstate(invalid="ignore"):
        checks = (
            ("rows_not_numeric", np.isnan(values).any(axis=0)),
            ("rows_not_finite", np.isinf(values).any(axis=0)),
            ("rows_not_integer", (program != np.round(program)) | (pitch != np.round(pitch))),
            ("rows_negative_time", (start < 0) | (end < 0)),
            ("rows_end_not_after_start", end <= start),
            ("rows_past_end_of_audio", end > length),
            ("rows_unknown_instrument", musicnet_id_to_index(program) < 0),
            ("rows_bad_pitch", (pitch < 0) | (pitch > 127)),
        )
    keep = np.ones(len(df), dtype=bool)
    for reason, bad in checks:
        dropped[reason] += int((keep & bad).sum())
        keep &= ~bad
    notes = Notes(
        np.round(start[keep]).astype(np.int64),
        np.round(end[keep]).astype(np.int64),
        musicnet_id_to_index(program[keep]),
        pitch[keep].astype(np.int64),
    )
    return notes, +dropped
