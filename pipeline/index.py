"""The re-indexed table of a dataset: one row per merged span (the prior work's samples), for
analysis and baselines."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from musicid.audio import load_audio, probe
from musicid.errors import AudioError
from musicid.vocab import NAMES

from .labels import read_labels
from .layout import find_recordings
from .spans import Spans, merge_spans


def spans_table(recording: str, spans: Spans, rate: int) -> pd.DataFrame:
    """Columns: recording, start, end (samples), start_s, end_s, one 0/1 column per instrument,
    notes (space-separated MIDI pitches)."""
    rows, pitches = np.nonzero(spans.notes)
    cuts = np.searchsorted(rows, np.arange(1, len(spans)))
    notes = [" ".join(map(str, p)) for p in np.split(pitches, cuts)] if len(spans) else []
    table = pd.DataFrame(
        {
            "recording": recording,
            "start": spans.start,
            "end": spans.end,
            "start_s": spans.start / rate,
            "end_s": spans.end / rate,
        }
    )
    for i, name in enumerate(NAMES):
        table[name] = spans.instruments[:, i]
    table["notes"] = notes
    return table


def index_dataset(root: Path) -> tuple[pd.DataFrame, Counter]:
    """Re-index every recording under `root`; unusable recordings and bad rows are counted, not
    fatal."""
    recordings, skipped, _ = find_recordings(Path(root))
    tables = []
    for rec in recordings:
        try:
            info = probe(rec.audio)
            frames = info.frames if info.frames is not None else len(load_audio(rec.audio)[0])
        except AudioError:
            skipped["recordings_unreadable_audio"] += 1
            continue
        rate = info.sample_rate
        notes, dropped = read_labels(rec.labels, frames)
        skipped.update(dropped)
        tables.append(spans_table(rec.id, merge_spans(notes), rate))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(), skipped
