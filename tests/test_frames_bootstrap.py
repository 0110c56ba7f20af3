"""Frame-level scoring and bootstrap intervals over recordings, on hand-made cases with known
answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score

from musicid.infer.bootstrap import Resampler, intervals
from musicid.infer.eval_cli import app
from musicid.infer.frames import Rows, to_frames
from musicid.metrics import score_sets
from tests.conftest import invoke


def test_frames_average_the_windows_covering_them():
    # Two windows of 4 frames at hop 2: frames 2-3 are covered by both; the roll gives each frame's
    # label.
    probs = np.array([[0.2, 0.9], [0.6, 0.1]])
    rolls = np.zeros((2, 2, 4), dtype=np.uint8)
    rolls[0, 0] = [0, 0, 1, 1]
    rolls[1, 0] = [1, 1, 0, 0]
    rows = to_frames(probs, rolls, ["a", "a"], np.array([0, 2]), frame_rate=10.0)
    assert rows.probs[:, 0].tolist() == pytest.approx([0.2, 0.2, 0.4, 0.4, 0.6, 0.6])
    assert rows.labels[:, 0].tolist() == [0, 0, 1, 1, 0, 0] and rows.rate == 10.0
    coarse = to_frames(probs, rolls, ["a", "a"], np.array([0, 2]), frame_rate=10.0, target_rate=5.0)
    assert coarse.probs[:, 0].tolist() == pytest.approx([0.2, 0.4, 0.6]) and coarse.rate == 5.0
    assert coarse.labels[:, 0].tolist() == [0, 1, 0]


def test_window_and_frame_levels_agree_when_labels_are_constant_per_recording():
    rng = np.random.default_rng(0)
    recs, probs, labels, starts = [], [], [], []
    for r in range(4):
        truth = rng.random(3) < 0.5
        p = rng.random(3)
        for w in range(5):  # non-overlapping windows: every frame has one window
            recs.append(f"r{r}")
            probs.append(p)
            labels.append(truth)
            starts.append(4 * w)
    probs, labels = np.array(probs), np.array(labels, dtype=np.uint8)
    rolls = np.repeat(labels[:, :, None], 4, axis=2)
    frames = to_frames(probs, rolls, recs, np.array(starts), frame_rate=8.0)
    win, frm = (
        score_sets(p > 0.5, p, y, list("abc"))
        for p, y in ((probs, labels), (frames.probs, frames.labels))
    )
    assert win["micro"] == pytest.approx(frm["micro"]) and win["mAP"] == pytest.approx(frm["mAP"])


def _rows(n_rec=10, per=40, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    labels = (rng.random((n_rec * per, 3)) < 0.4).astype(np.uint8)
    probs = np.clip(labels * 0.5 + rng.random(labels.shape) * noise, 0, 1)
    return Rows(probs, labels, np.repeat([f"r{i}" for i in range(n_rec)], per).astype(object), 2.0)


def test_weighted_statistics_equal_scikit_learn_with_sample_weights():
    rows = _rows()
    pred = rows.probs > 0.6
    weights = np.random.default_rng(1).integers(0, 3, 10).astype(float)
    got = Resampler(rows, pred).stats(weights)
    w = weights[np.unique(rows.recordings, return_inverse=True)[1]]
    ap = [
        average_precision_score(rows.labels[:, c], rows.probs[:, c], sample_weight=w)
        for c in range(3)
    ]
    f1 = [f1_score(rows.labels[:, c], pred[:, c], sample_weight=w) for c in range(3)]
    micro = f1_score(rows.labels, pred, average="micro", sample_weight=w)
    assert got["mAP"] == pytest.approx(np.mean(ap)) and got["macro F1"] == pytest.approx(
        np.mean(f1)
    )
    assert got["micro F1"] == pytest.approx(micro)


def test_bootstrap_intervals_have_known_answers():
    rows = _rows()
    same = intervals(
        [Resampler(rows, rows.probs > 0.6), Resampler(rows, rows.probs > 0.6)], n_boot=200
    )
    for stat in ("mAP", "macro F1", "micro F1"):
        assert same[1][stat]["difference"]["ci95"] == [0.0, 0.0]
        assert not same[1][stat]["difference"]["excludes_zero"]
        lo, hi = same[0][stat]["ci95"]
        assert lo <= same[0][stat]["value"] <= hi
    noisy = _rows(noise=1.0)  # scores overlap: AP and F1 well below 1 on every recording
    better = Rows(
        np.clip(noisy.labels * 0.8 + noisy.probs * 0.2, 0, 1),
        noisy.labels,
        noisy.recordings,
        noisy.rate,
    )
    diff = intervals(
        [Resampler(noisy, noisy.probs > 0.6), Resampler(better, better.probs > 0.6)], n_boot=200
    )[1]
    assert all(
        diff[s]["difference"]["excludes_zero"] and diff[s]["difference"]["value"] > 0 for s in diff
    )
    assert intervals([Resampler(rows, rows.probs > 0.6)], n_boot=50, seed=3) == intervals(
        [Resampler(rows, rows.probs > 0.6)], n_boot=50, seed=3
    )  # seeded


def test_frame_level_eval_end_to_end(tiny_run, tiny_shards, tmp_path):
    out = tmp_path / "e"
    r = invoke(
        app,
        [
            tiny_run,
            "--shards",
            tiny_shards,
            "--level",
            "frame",
            "--instruments",
            "piano,violin,viola,cello,clarinet,bassoon,horn",
            "--timeline",
            "1010",
            "--bootstrap",
            "100",
            "--out",
            out,
        ],
    )
    assert r.exit_code == 0, r.output
    assert (
        "Published results" in r.output
        and "0.972" in r.output
        and "95% intervals over 2 recordings" in r.output
    )
    report = json.loads((out / "report.json").read_text())
    assert report["level"] == "frame" and report["instruments"] == [
        "Piano",
        "Violin",
        "Viola",
        "Cello",
        "Clarinet",
        "Bassoon",
        "Horn",
    ]
    assert len(report["per_recording"]) == 2 and set(report["intervals"]) == {
        "mAP",
        "macro F1",
        "micro F1",
    }
    for name in ("f1_per_recording.png", "timeline-1010.png", "report.md"):
        assert (out / name).stat().st_size > 0
    r = invoke(
        app, [tiny_run, "--shards", tiny_shards, "--timeline", "nope", "--out", out, "--overwrite"]
    )
    assert r.exit_code == 1 and "no recording 'nope'" in r.output
    r = invoke(app, [tiny_run, "--shards", tiny_shards, "--instruments", "kazoo"])
    assert r.exit_code == 1 and "unknown kazoo" in r.output


def test_compare_runs_reports_differences_with_intervals(tiny_run, tiny_shards, tmp_path):
    r = invoke(
        app,
        [
            "compare-runs",
            tiny_run,
            tiny_run,
            "--shards",
            tiny_shards,
            "--bootstrap",
            "100",
            "--out",
            tmp_path / "cmp",
        ],
    )
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "cmp" / "report.json").read_text())
    first, second = report["intervals"].values()  # the same run twice: no difference, certainly
    assert second["mAP"]["difference"]["ci95"] == [0.0, 0.0] and "excludes 0" in r.output
