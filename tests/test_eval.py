"""Predictors on hand-made probabilities, metrics against scikit-learn, and musicid-eval end to
end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_fscore_support

from musicid.errors import InputError
from musicid.features import LogMel
from musicid.infer import evaluate as evaluate_mod
from musicid.infer.eval_cli import app
from musicid.infer.loaded import load_run
from musicid.infer.predictors import predict
from musicid.metrics import score_sets
from musicid.pipeline.build import BuildConfig, build_shards
from musicid.run import Calibration, calibration_file
from tests.conftest import invoke, tree_digest

P = np.array([[0.9, 0.6, 0.2, 0.1], [0.1, 0.2, 0.3, 0.05], [0.5, 0.5, 0.45, 0.8]])
CAL = Calibration(
    thresholds=[0.5, 0.7, 0.25, 0.9], biases={"prior": [0.5, 0.1, 0.5, 0.2]}, fitted_on="hand"
)


def on(name, **kw):
    return [np.flatnonzero(r).tolist() for r in predict(name, P, CAL, **kw)]


def test_top_n():
    assert on("top1") == [[0], [2], [3]]
    assert on("top2") == [[0, 1], [1, 2], [0, 3]]  # ties broken by class order


def test_threshold_forces_the_argmax_on():
    assert on("threshold") == [[0, 1], [2], [0, 1, 3]]
    assert on("threshold", threshold=0.95) == [[0], [2], [3]]


def test_bias_corrected():
    # p - prior = [[.4, .5, -.3, -.1], [-.4, .1, -.2, -.15], [0, .4, -.05, .6]]: on when > 0, best
    # always on.
    assert on("prior") == [[0, 1], [1], [1, 3]]
    with pytest.raises(InputError, match="needs a calibration"):
        predict("valmean", P, None)


def test_calibrated_and_hybrid():
    assert on("calibrated") == [[0], [2], [0, 2]]
    assert on("hybrid", max_instruments=1) == [[0], [2], [2]]  # class 2 has the largest margin (.2)
    p = np.array([[0.1, 0.2, 0.2, 0.3]])
    assert predict("calibrated", p, CAL).sum() == 0 and predict("hybrid", p, CAL).sum() == 1


def test_unknown_predictor():
    with pytest.raises(InputError, match="unknown predictor"):
        predict("top12", P)


def test_scores_match_scikit_learn():
    rng = np.random.default_rng(0)
    labels = (rng.random((200, 5)) < [0.5, 0.3, 0.1, 0.2, 0.0]).astype(int)
    probs = np.clip(labels * 0.4 + rng.random((200, 5)) * 0.6, 0, 1)
    pred = probs > 0.5
    s = score_sets(pred, probs, labels, list("abcde"))
    present = labels.sum(0) > 0
    p, r, f, _ = precision_recall_fscore_support(labels, pred, average="micro", zero_division=0)
    assert (s["micro"]["precision"], s["micro"]["recall"], s["micro"]["f1"]) == pytest.approx(
        (p, r, f)
    )
    p, r, f, _ = precision_recall_fscore_support(
        labels[:, present], pred[:, present], average="macro", zero_division=0
    )
    assert (s["macro"]["precision"], s["macro"]["recall"], s["macro"]["f1"]) == pytest.approx(
        (p, r, f)
    )
    ap = [average_precision_score(labels[:, c], probs[:, c]) for c in range(4)]
    assert s["mAP"] == pytest.approx(np.mean(ap))
    assert s["absent_classes"] == ["e"] and s["per_class"]["e"]["f1"] is None
    assert s["fp_per_sample"] == pytest.approx((pred & ~labels.astype(bool)).sum() / 200)
    assert s["exact_match"] == pytest.approx((pred == labels.astype(bool)).all(1).mean())


def test_calibration_reads_only_val(tiny_run, tiny_shards, monkeypatch):
    seen = []
    real = evaluate_mod.collect_predictions

    def spy(model, urls, *a, **k):
        seen.append(list(urls))
        return real(model, urls, *a, **k)

    monkeypatch.setattr(evaluate_mod, "collect_predictions", spy)
    evaluate_mod.evaluate(
        load_run(tiny_run), tiny_shards, evaluate_mod.EvalOptions(predictors=("calibrated",))
    )
    # the calibration is fitted on the first read, the test split scored after
    calibration_urls, test_urls = seen
    assert calibration_urls and all("/val-" in u for u in calibration_urls)
    assert test_urls and all("/test-" in u for u in test_urls)


def test_eval_cli_end_to_end_writes_nothing_into_the_run(
    tiny_run, tiny_shards, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    before = tree_digest(run_dir)
    monkeypatch.chdir(tmp_path)
    r = invoke(app, [run_dir, "--shards", tiny_shards, "--compare"])
    assert r.exit_code == 0, r.output
    assert "top3 per instrument" in r.output and "calibrated" in r.output and "hybrid" in r.output
    # the default: beside the user, not inside the (maybe shared) run
    out = tmp_path / "eval" / "run-test"
    assert tree_digest(run_dir) == before
    r = invoke(app, [run_dir, "--shards", tiny_shards])
    assert r.exit_code == 1 and "already exists" in r.output and "--overwrite" in r.output
    for name in (
        "report.json",
        "report.md",
        "pr_curves.png",
        "f1_per_class.png",
        "compare_predictors.png",
    ):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert set(report["results"]) >= {
        "top3",
        "threshold",
        "prior",
        "valmean",
        "noise",
        "calibrated",
        "hybrid",
    }
    assert 0 <= report["results"]["top3"]["mAP"] <= 1
    assert "val split" in report["calibration"]["fitted_on"]  # the refit goes into the report
    r = invoke(
        app, ["compare-runs", run_dir, tiny_run, "--shards", tiny_shards, "--out", tmp_path / "cmp"]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cmp" / "compare_runs.png").exists() and "(bce)" in r.output
    r = invoke(
        app,
        [run_dir, "--shards", tiny_shards, "--instruments", "violin,Violin,viola", "--overwrite"],
    )
    assert r.exit_code == 1 and "Violin given more than once" in r.output.replace(
        "violin", "Violin"
    )
    assert tree_digest(run_dir) == before


def test_mismatched_shards_empty_split_and_bad_choices_fail_clearly(tiny_run, synth_root, tmp_path):
    other = tmp_path / "mel64"
    build_shards(
        synth_root,
        other,
        BuildConfig(shards_per_split=1, val_fraction=0.0, features=LogMel(n_mels=64)),
    )
    r = invoke(app, [tiny_run, "--shards", other])
    assert r.exit_code == 1 and "features.n_mels: 128 -> 64" in r.output
    same = tmp_path / "noval"
    build_shards(synth_root, same, BuildConfig(shards_per_split=1, val_fraction=0.0))
    r = invoke(app, [tiny_run, "--shards", same, "--split", "val"])
    assert r.exit_code == 1 and "val split is empty" in r.output
    r = invoke(app, [tiny_run, "--shards", same, "--predictor", "calibrated"])
    assert r.exit_code == 1 and "predictors calibrated need validation data" in r.output
    r = invoke(app, [tiny_run, "--shards", same, "--out", tmp_path / "e"])
    assert r.exit_code == 0 and "top3 per instrument" in r.output  # top-n needs no calibration
    r = invoke(app, [tmp_path / "nothing", "--shards", same])
    assert r.exit_code == 1 and "no checkpoint" in r.output
    r = invoke(app, [tiny_run, "--shards", same, "--split", "holdout"])
    assert (
        r.exit_code == 1
        and "'holdout' is not one of" in r.output
        and len(r.output.strip().splitlines()) == 1
    )


@pytest.mark.parametrize("thresholds", [[float("nan")] * 11, [7.0] * 11, [0.5, 0.5, 0.5], "high"])
def test_a_damaged_calibration_is_named_not_used(tiny_run, tmp_path, thresholds):
    """The right checkpoint hash, wrong values: refused with the file named, never 'no instrument
    found'."""
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    path = calibration_file(run_dir / "best.pt")
    cal = json.loads(path.read_text())
    cal["thresholds"] = thresholds
    path.write_text(json.dumps(cal))
    with pytest.raises(
        InputError, match=r"best.calibration.json: thresholds must be 11 numbers in \[0, 1\]"
    ):
        load_run(run_dir)
