"""Events: the post-processing worked out by hand, its fitting, the calibration that keeps it, and
`musicid-eval events` on a hand-written reference whose figures are worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicid.errors import InputError
from musicid.events import EventRule, Track, decode, fit_event_rules, regions, spans
from musicid.infer.eval_cli import app as eval_app
from musicid.infer.sed import read_events, score
from musicid.run import Calibration
from musicid.vocab import NAMES
from tests.audio_writers import tone, write_float_wav, write_mp3
from tests.conftest import invoke

P = np.array([0.1, 0.8, 0.2, 0.9, 0.1, 0.1, 0.6, 0.1])
EDGES = np.arange(9) * 0.5  # eight regions of 0.5 s


@pytest.mark.parametrize(
    "rule, named",
    [
        # 0.6 reaches low but no high: dropped by the hysteresis
        (EventRule(1, 0.7, 0.5, 0.0, 0.0), [1, 3]),
        (EventRule(1, 0.5, 0.5, 0.0, 0.0), [1, 3, 6]),  # one threshold
        (EventRule(1, 0.7, 0.5, 0.6, 0.0), [1, 2, 3]),  # the 0.5 s gap between two events is filled
        (EventRule(1, 0.7, 0.5, 0.6, 1.6), []),  # the 1.5 s event is shorter than 1.6 s
        (EventRule(1, 0.7, 0.5, 0.0, 0.5), [1, 3]),  # 0.5 s events are not shorter than 0.5 s
        (EventRule(3, 0.7, 0.5, 0.0, 0.0), [2]),  # medians of 3: 0.1 0.2 0.8 0.2 0.1 0.1 0.1 0.1
        # everything; no gap at either end to fill
        (EventRule(1, 0.05, 0.05, 10.0, 0.0), list(range(8))),
    ],
)
def test_rules_worked_out_by_hand(rule, named):
    active = decode(P[:, None], EDGES, [rule])[:, 0]
    assert np.flatnonzero(active).tolist() == named
    assert spans(active, EDGES) == [(EDGES[a], EDGES[b]) for a, b in _runs(named)]


def _runs(idx):
    out = []
    for i in idx:
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([i, i + 1])
    return out


def test_gaps_at_the_ends_are_not_filled():
    p = np.array([0.1, 0.9, 0.1])
    assert decode(p[:, None], EDGES[:4], [EventRule(1, 0.5, 0.5, 5.0, 0.0)])[:, 0].tolist() == [
        False,
        True,
        False,
    ]


def test_regions_tile_the_timeline():
    starts = np.array([0.0, 0.5, 1.0])
    assert regions(starts, starts + 1.0, 2.1).tolist() == [0.0, 0.75, 1.25, 2.1]


def test_the_fitting_track_decodes_as_prediction_does():
    rng = np.random.default_rng(0)
    seqs = []
    for _ in range(40):
        w = int(rng.integers(2, 15))
        y = rng.uniform(size=(w, 1)) < 0.4
        p = np.clip(0.5 * y + rng.uniform(0, 0.6, (w, 1)), 0, 1)
        seqs.append((p, y, regions(np.arange(w) * 0.5, np.arange(w) * 0.5 + 1, w * 0.5 + 0.5)))
    track = Track([(p[:, 0], y[:, 0], e) for p, y, e in seqs])
    for rule in (
        EventRule(3, 0.6, 0.4, 1.0, 1.0),
        EventRule(5, 0.7, 0.3, 0.5, 2.0),
        EventRule(1, 0.5, 0.5, 0, 0),
    ):
        expected = np.concatenate([np.r_[decode(p, e, [rule])[:, 0], False] for p, _, e in seqs])
        assert np.array_equal(track.active(rule), expected)


def test_fitting_finds_the_rule_that_makes_the_reference():
    """Noisy probabilities over events: a rule that smooths, fills and drops makes the reference
    events."""
    rng = np.random.default_rng(1)
    seqs = []
    for _ in range(60):
        y = np.zeros((16, 2), bool)
        y[3:12, 0] = True
        p = np.clip(0.35 + 0.4 * y + rng.normal(0, 0.12, y.shape), 0, 1)
        seqs.append((p, y, EDGES[0] + np.arange(17) * 0.5))
    rules = fit_event_rules(seqs, [0.5, 0.5])
    assert rules[1] == EventRule.plain(0.5)  # no positives: the plain rule of its threshold
    active = [decode(p, e, rules)[:, 0] for p, _, e in seqs]
    plain = [decode(p, e, [EventRule.plain(0.55)])[:, 0] for p, _, e in seqs]
    exact = np.mean([np.array_equal(a, y[:, 0]) for a, (_, y, _) in zip(active, seqs, strict=True)])
    assert exact > np.mean(
        [np.array_equal(a, y[:, 0]) for a, (_, y, _) in zip(plain, seqs, strict=True)]
    )


def test_calibration_keeps_the_rules_and_old_files_still_load(tmp_path):
    cal = Calibration(
        [0.4] * 11,
        {b: [0.1] * 11 for b in ("prior", "valmean", "noise")},
        "test",
        events=[EventRule(3, 0.6, 0.4, 1.0, 0.5).to_dict()] * 11,
    )
    back = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())), "x")
    assert back.event_rules()[0] == EventRule(3, 0.6, 0.4, 1.0, 0.5) and back.format == 2
    old = {k: v for k, v in cal.to_dict().items() if k not in ("events", "format")}  # format 1
    assert Calibration.from_dict(old, "x").event_rules() == [EventRule.plain(0.4)] * 11
    for bad in ({"median": 2}, {"low": 0.9}, {"min_gap_s": -1}, {"high": float("nan")}):
        events = [{**EventRule(3, 0.6, 0.4, 1.0, 0.5).to_dict(), **bad}] * 11
        with pytest.raises(InputError, match="events of Piano"):
            Calibration.from_dict({**cal.to_dict(), "events": events}, "cal.json")
    with pytest.raises(InputError, match="events must be 11 rules"):
        Calibration.from_dict({**cal.to_dict(), "events": cal.events[:3]}, "cal.json")
    with pytest.raises(InputError, match="calibration format 7"):
        Calibration.from_dict({**cal.to_dict(), "format": 7}, "cal.json")


# --- scoring: a reference and predictions worked out by hand
# ---------------------------------------------------

REFERENCE = {"a.wav": [(0.0, 4.0, "Violin"), (2.0, 8.0, "Cello")]}
ESTIMATED = {
    "a.wav": [(0.2, 4.3, "Violin"), (5.0, 8.0, "Cello"), (6.0, 7.0, "Flute"), (9.0, 10.0, "Piano")]
}
OTHERS = {"a.wav": [(8.5, 10.0, "trumpet")]}


def test_figures_worked_out_by_hand():
    """1 s segments 0-9. Violin: reference 0-3, named 0-4; Cello: reference 2-7, named 5-7; Flute
    named in 6, Piano in 9, neither plays: TP 7, FP 3, FN 3, F1 14/20. Error rate: seg 2 and 3 a
    deletion (cello), seg 4 a substitution (violin for cello), seg 6 and 9 an insertion: 5 / 10
    reference = 0.5. Events: the violin matches (onset 0.2 s off, offset 0.3 s), the cello does not
    (onset 3 s off): 1 of 4 named, 1 of 2: F1 2/6. Only the trumpet plays 8.5-10 s; piano is named
    in 9-10: 1.0 of 1.5 s."""
    seg_probs = np.zeros((10, 11))
    seg_probs[:, NAMES.index("Violin")] = [0.9, 0.9, 0.9, 0.8, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1]
    seg_probs[:, NAMES.index("Cello")] = [0.5, 0.1, 0.2, 0.2, 0.6, 0.7, 0.7, 0.7, 0.1, 0.1]
    r = score(REFERENCE, ESTIMATED, {"a.wav": 10.0}, OTHERS, {"a.wav": seg_probs})
    assert r["segment"]["micro_f1"] == pytest.approx(14 / 20)
    assert r["segment"]["error_rate"] == pytest.approx(0.5)
    assert r["event"]["micro_f1"] == pytest.approx(2 / 6)
    assert r["per_class"]["Violin"]["event_f1"] == pytest.approx(1.0)
    assert r["per_class"]["Cello"]["event_f1"] == pytest.approx(0.0)
    assert r["named_never_playing"] == {"per_file": 2.0, "files": {"a.wav": ["Flute", "Piano"]}}
    assert r["others_only"] == {
        "seconds": 1.5,
        "named_seconds": 1.0,
        "share_named": pytest.approx(0.6667),
    }
    # Violin's playing segments all above the rest: AP 1. Cello: 0.7 x3 and 0.6 (playing), 0.5
    # (not), then 0.2 x2 (playing): 0.5 + 1/6 + 2/6 x 6/7.
    assert r["per_class"]["Violin"]["segment_ap"] == pytest.approx(1.0)
    assert r["per_class"]["Cello"]["segment_ap"] == pytest.approx(0.5 + 1 / 6 + 2 / 7)
    assert r["segment"]["mAP"] == pytest.approx((1.0 + 0.5 + 1 / 6 + 2 / 7) / 2)


def _mixtures(folder, rows, others=None, audio=("a.mp3", "b.wav")):
    (folder / "audio").mkdir(parents=True)
    for name in audio:
        if name.endswith(".mp3"):
            write_mp3(folder / "audio" / name, tone(3.0, 44100, 2, 330.0), 44100, vbr=True)
        else:
            write_float_wav(folder / "audio" / name, tone(3.0, 22050, 1, 220.0), 22050)
    (folder / "reference.tsv").write_text(rows)
    if others is not None:
        (folder / "others.tsv").write_text(others)
    return folder


HEADER = "filename\tonset\toffset\tevent_label\n"


def test_eval_events_reports_and_refuses_to_overwrite(tiny_run, tmp_path):
    folder = _mixtures(
        tmp_path / "mix",
        HEADER + "a.mp3\t0.0\t2.0\tViolin\nb.wav\n",
        HEADER + "b.wav\t0.5\t2.5\tvoice\n",
    )
    out = tmp_path / "report"
    r = invoke(eval_app, ["events", folder, "--model", tiny_run, "--out", out])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert (
        rep["files"] == 2 and rep["reference_events"] == 1 and rep["others_only"]["seconds"] == 2.0
    )
    assert (
        set(rep["per_class"]) == set(NAMES)
        and "segment-based F1" in (out / "report.md").read_text()
    )
    r = invoke(eval_app, ["events", folder, "--model", tiny_run, "--out", out])
    assert r.exit_code == 1 and "already exists" in r.output


@pytest.mark.parametrize(
    "rows, others, audio, message",
    [
        (
            HEADER + "a.mp3\t0\t2\tKazoo\nb.wav\n",
            None,
            ("a.mp3", "b.wav"),
            "line 2: 'Kazoo' is not one of the 11",
        ),
        (
            HEADER + "a.mp3\t2\t1\tViolin\nb.wav\n",
            None,
            ("a.mp3", "b.wav"),
            "line 2: needs 0 <= onset < offset",
        ),
        (
            HEADER + "a.mp3\t1\t1\tViolin\nb.wav\n",
            None,
            ("a.mp3", "b.wav"),
            "line 2: needs 0 <= onset < offset",
        ),
        (
            HEADER + "a.mp3\t0\tnan\tViolin\nb.wav\n",
            None,
            ("a.mp3", "b.wav"),
            "line 2: needs 0 <= onset < offset",
        ),
        (
            HEADER + "a.mp3\t0\t9\tViolin\nb.wav\n",
            None,
            ("a.mp3", "b.wav"),
            "a.mp3: Violin 0-9 s ends after the file",
        ),
        (HEADER + "a.mp3\t0\t1\tViolin\nc.wav\n", None, ("a.mp3",), "lists c.wav, which is not in"),
        (HEADER + "a.mp3\t0\t1\tViolin\n", None, ("a.mp3", "b.wav"), "b.wav: not in reference.tsv"),
        (
            "filename,onset,offset,event_label\na.mp3,0,1,Violin\n",
            None,
            ("a.mp3",),
            "line 1: expected the tab-separated",
        ),
        (
            "onset\toffset\tevent_label\n",
            None,
            ("a.mp3",),
            "line 1: expected the tab-separated header",
        ),
        (HEADER + "a.mp3\t0\t1\tViolin\n", "nothing\n", ("a.mp3",), "others.tsv: line 1: expected"),
        (HEADER + "a.mp3\t0\t1\n", None, ("a.mp3",), "line 2: expected 4 tab-separated columns"),
    ],
)
def test_bad_event_lists_name_the_file_and_row(tiny_run, tmp_path, rows, others, audio, message):
    folder = _mixtures(tmp_path / "mix", rows, others, audio)
    out = tmp_path / "report"
    r = invoke(eval_app, ["events", folder, "--model", tiny_run, "--out", out])
    assert r.exit_code == 1 and message in r.output and r.output.count("\n") == 1, r.output
    assert not out.exists()


def test_an_empty_folder_is_one_line(tiny_run, tmp_path):
    (tmp_path / "empty").mkdir()
    r = invoke(
        eval_app, ["events", tmp_path / "empty", "--model", tiny_run, "--out", tmp_path / "rep"]
    )
    assert r.exit_code == 1 and "no reference.tsv" in r.output
    (tmp_path / "empty" / "audio").mkdir()
    (tmp_path / "empty" / "reference.tsv").write_text(HEADER)
    r = invoke(
        eval_app, ["events", tmp_path / "empty", "--model", tiny_run, "--out", tmp_path / "rep"]
    )
    assert r.exit_code == 1 and "holds no audio files" in r.output


def test_read_events_accepts_files_without_events(tmp_path):
    (tmp_path / "r.tsv").write_text(HEADER + "x.wav\t0.5\t1.5\tPiano\ny.wav\t\t\t\nz.wav\n")
    assert read_events(tmp_path / "r.tsv", NAMES) == {
        "x.wav": [(0.5, 1.5, "Piano")],
        "y.wav": [],
        "z.wav": [],
    }
