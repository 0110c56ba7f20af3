"""Label reading, span merging (the prior work's re-indexing) and frame activity."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from musicid.pipeline.labels import LABEL_COLUMNS, InputError, Notes, read_labels
from musicid.pipeline.spans import frame_activity, merge_spans
from musicid.vocab import NAMES, musicnet_id_to_index

PIANO, VIOLIN, CELLO = (NAMES.index(n) for n in ("Piano", "Violin", "Cello"))


def notes(*rows):
    a = np.array(rows, dtype=np.int64)
    return Notes(a[:, 0], a[:, 1], a[:, 2], a[:, 3])


def test_merge_spans_hand_computed():
    spans = merge_spans(
        notes((0, 10, PIANO, 60), (5, 15, VIOLIN, 67), (20, 30, PIANO, 62), (30, 40, CELLO, 48))
    )
    assert spans.start.tolist() == [0, 5, 10, 15, 20, 30]
    assert spans.end.tolist() == [5, 10, 15, 20, 30, 40]
    on = [set(np.flatnonzero(r)) for r in spans.instruments]
    assert on == [{PIANO}, {PIANO, VIOLIN}, {VIOLIN}, set(), {PIANO}, {CELLO}]
    assert [set(np.flatnonzero(r)) for r in spans.notes] == [
        {60},
        {60, 67},
        {67},
        set(),
        {62},
        {48},
    ]


def test_note_touching_a_boundary_does_not_sound_in_the_neighbour_span():
    # The piano note ends exactly where the cello starts: [20, 30) has no cello, [30, 40) no piano.
    spans = merge_spans(notes((20, 30, PIANO, 62), (30, 40, CELLO, 48)))
    assert spans.instruments[0, CELLO] == 0 and spans.instruments[1, PIANO] == 0


def test_merge_spans_empty():
    spans = merge_spans(notes((0, 1, 0, 60)))
    assert len(merge_spans(Notes(*(np.zeros(0, np.int64) for _ in range(4))))) == 0
    assert len(spans) == 1


def test_frame_activity_follows_spans():
    spans = merge_spans(notes((100, 200, PIANO, 60), (150, 300, VIOLIN, 70)))
    inst, pitch = frame_activity(spans, np.array([50, 100, 160, 199, 200, 299, 300]))
    assert inst[PIANO].tolist() == [0, 1, 1, 1, 0, 0, 0]
    assert inst[VIOLIN].tolist() == [0, 0, 1, 1, 1, 1, 0]
    assert pitch[70].tolist() == inst[VIOLIN].tolist()


def test_program_mapping():
    assert musicnet_id_to_index(np.array([1, 7, 74, 2, 0, 500])).tolist() == [0, 1, 10, -1, -1, -1]


def _csv(path, rows, columns=LABEL_COLUMNS):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        w.writerows(rows)
    return path


def test_bad_rows_are_dropped_and_counted(tmp_path):
    path = _csv(
        tmp_path / "1.csv",
        [
            (0, 100, 1, 60, 0, 1, "Quarter"),  # good
            (50, 50, 1, 60, 0, 1, "Quarter"),  # end == start
            (80, 40, 41, 60, 0, 1, "Quarter"),  # end < start
            (-5, 40, 41, 60, 0, 1, "Quarter"),  # negative
            (100, 5000, 41, 60, 0, 1, "Quarter"),  # past the end of a 1000-sample wav
            (0, 100, 25, 60, 0, 1, "Quarter"),  # guitar: not one of the 11
            (0, 100, 1, 200, 0, 1, "Quarter"),  # no such MIDI pitch
            ("x", 100, 1, 60, 0, 1, "Quarter"),  # not a number
        ],
    )
    got, dropped = read_labels(path, n_samples=1000)
    assert len(got) == 1 and got.start.tolist() == [0] and got.instrument.tolist() == [0]
    assert dropped == {
        "rows_end_not_after_start": 2,
        "rows_negative_time": 1,
        "rows_past_end_of_audio": 1,
        "rows_unknown_instrument": 1,
        "rows_bad_pitch": 1,
        "rows_not_numeric": 1,
    }


def test_missing_column_names_file_and_column(tmp_path):
    path = _csv(tmp_path / "7.csv", [(0, 10, 1, 60, 0, 1)], columns=LABEL_COLUMNS[:-1])
    with pytest.raises(InputError, match=r"7\.csv.*note_value"):
        read_labels(path)
