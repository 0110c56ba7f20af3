"""Window labelling rule, prior-work span samples, and recording-level splits."""

from __future__ import annotations

import numpy as np

from musicid.pipeline.labels import Notes
from musicid.pipeline.spans import cut_spans, merge_spans
from musicid.splits import assign_splits
from musicid.windows import WindowConfig, cut_windows, frame_index


def test_min_active_rule():
    roll = np.zeros((11, 100), dtype=np.uint8)
    roll[0, 5:10] = 1  # 5 of the first window's 20 frames
    roll[1, 0:20] = 1
    pitch = np.zeros((128, 100), dtype=np.uint8)
    pitch[60, 7] = 1
    strict = cut_windows(
        roll, pitch, WindowConfig(window_s=1.0, hop_s=1.0, min_active=0.5), frame_rate=20
    )
    loose = cut_windows(
        roll, pitch, WindowConfig(window_s=1.0, hop_s=1.0, min_active=0.0), frame_rate=20
    )
    assert strict.frame0.tolist() == [0, 20, 40, 60, 80]
    assert strict.instruments[0, :2].tolist() == [0, 1]
    assert loose.instruments[0, :2].tolist() == [1, 1] and loose.instruments[1].sum() == 0
    assert strict.notes[0, 60] == 1 and strict.notes[1].sum() == 0


def test_short_recording_gives_one_tiled_window():
    roll = np.ones((11, 7), dtype=np.uint8)
    s = cut_windows(roll, np.zeros((128, 7), np.uint8), WindowConfig(), frame_rate=86.13)
    assert len(s) == 1 and s.length[0] == 7
    assert frame_index(0, 7, 10).tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1, 2]


def test_spans_segmentation_one_sample_per_span():
    n = np.array
    spans = merge_spans(Notes(n([0, 4410]), n([44100, 8820]), n([0, 2]), n([60, 70])))
    s = cut_spans(
        spans,
        200,
        WindowConfig(window_s=0.2322, segmentation="spans"),
        frame_rate=100.0,
        rate=44100,
    )
    assert len(s) == len(spans) == 3
    assert s.length.tolist() == [10, 10, 23]  # short spans tiled, the long one cropped to 23 frames
    assert (s.instruments == spans.instruments).all()
    assert np.allclose(s.start_s, [0, 0.1, 0.2])


def test_splits_by_recording_stratified_and_seeded():
    folders = {str(i): "train" for i in range(40)} | {"t1": "test", "t2": "test"}
    ens = {str(i): "Solo Piano" for i in range(30)} | {
        str(i): "Wind Quintet" for i in range(30, 33)
    }
    ens |= {str(i): "Solo Flute" for i in range(33, 35)} | {
        str(i): "Wind Octet" for i in range(35, 40)
    }
    a = assign_splits(folders, ens, 0.2, seed=0)
    assert a == assign_splits(folders, ens, 0.2, seed=0)
    assert a["t1"] == a["t2"] == "test"
    val = [r for r, s in a.items() if s == "val"]
    assert len(val) == 8
    # Proportional shares (piano 6, octet 1), then the rarest ensemble without a share: flute.
    assert sorted(ens[r] for r in val) == ["Solo Flute"] + ["Solo Piano"] * 6 + ["Wind Octet"]
    for e in set(ens.values()):  # no ensemble gives its last recording to val
        assert any(a[r] == "train" for r in ens if ens[r] == e)
    assert assign_splits(folders, ens, 0.2, seed=1) != a
