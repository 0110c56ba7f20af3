"""Predictors on hand-made probabilities, metrics against scikit-learn, and musicid-eval end to end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_fscore_support
from typer.testing import CliRunner

from pipeline.build import BuildConfig, build_shards
from train import evaluate as evaluate_mod
from train.checkpoint import load_checkpoint
from train.eval_cli import compare_app, eval_app
from train.predictors import Calibration, predict
from train.scores import score_sets

P = np.array([[0.9, 0.6, 0.2, 0.1],
              [0.1, 0.2, 0.3, 0.05],
              [0.5, 0.5, 0.45, 0.8]])
CAL = Calibration(thresholds=[0.5, 0.7, 0.25, 0.9], biases={"prior": [0.5, 0.1, 0.5, 0.2]})
runner = CliRunner()


def on(name, **kw):
    return [np.flatnonzero(r).tolist() for r in predict(name, P, CAL, **kw)]


def test_top_n():
    assert on("top1") == [[0], [2], [3]]
    assert on("top2") == [[0, 1], [1, 2], [0, 3]]  # ties broken by class order


def test_threshold_forces_the_argmax_on():
    assert on("threshold") == [[0, 1], [2], [0, 1, 3]]
    assert on("threshold", threshold=0.95) == [[0], [2], [3]]


def test_bias_corrected():
    # p - prior = [[.4, .5, -.3, -.1], [-.4, .1, -.2, -.15], [0, .4, -.05, .6]]: on when > 0, best always on.
    assert on("prior") == [[0, 1], [1], [1, 3]]
    with pytest.raises(ValueError, match="no valmean bias"):
        on("valmean")


def test_calibrated_and_hybrid():
    assert on("calibrated") == [[0], [2], [0, 2]]
    assert on("hybrid", max_instruments=1) == [[0], [2], [2]]  # class 2 has the largest margin (.2)
    p = np.array([[0.1, 0.2, 0.2, 0.3]])
    assert predict("calibrated", p, CAL).sum() == 0 and predict("hybrid", p, CAL).sum() == 1


def test_unknown_predictor():
    with pytest.raises(ValueError, match="unknown predictor"):
        predict("top12", P)


def test_scores_match_scikit_learn():
    rng = np.random.default_rng(0)
    labels = (rng.random((200, 5)) < [0.5, 0.3, 0.1, 0.2, 0.0]).astype(int)
    probs = np.clip(labels * 0.4 + rng.random((200, 5)) * 0.6, 0, 1)
    pred = probs > 0.5
    s = score_sets(pred, probs, labels, list("abcde"))
    present = labels.sum(0) > 0
    p, r, f, _ = precision_recall_fscore_support(labels, pred, average="micro", zero_division=0)
    assert (s["micro"]["precision"], s["micro"]["recall"], s["micro"]["f1"]) == pytest.approx((p, r, f))
    p, r, f, _ = precision_recall_fscore_support(labels[:, present], pred[:, present], average="macro",
                                                 zero_division=0)
    assert (s["macro"]["precision"], s["macro"]["recall"], s["macro"]["f1"]) == pytest.approx((p, r, f))
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
    run = evaluate_mod.load_run(tiny_run)
    _, manifest = evaluate_mod.shard_urls(tiny_shards, "test")
    evaluate_mod.fit_calibration(run, tiny_shards, manifest)
    assert seen and all("/val-" in u for urls in seen for u in urls)


def test_eval_cli_end_to_end(tiny_run, tiny_shards, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    r = runner.invoke(eval_app, [str(run_dir), "--shards", str(tiny_shards), "--compare"])
    assert r.exit_code == 0, r.output
    assert "top3 per instrument" in r.output and "calibrated" in r.output and "hybrid" in r.output
    out = run_dir / "eval-test"
    for name in ("report.json", "report.md", "pr_curves.png", "f1_per_class.png", "compare_predictors.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert set(report["results"]) >= {"top3", "threshold", "prior", "valmean", "noise", "calibrated", "hybrid"}
    assert 0 <= report["results"]["top3"]["mAP"] <= 1
    # The calibration is stored with the run, for musicid-predict.
    state = load_checkpoint(run_dir)
    assert state["calibration"]["thresholds"] == report["calibration"]["thresholds"]
    assert "val split" in state["calibration"]["fitted_on"]
    r = runner.invoke(compare_app, [str(run_dir), str(tiny_run), "--shards", str(tiny_shards), "--out",
                                    str(tmp_path / "cmp")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cmp" / "compare_runs.png").exists() and "(bce)" in r.output


def test_mismatched_shards_and_empty_split_fail_clearly(tiny_run, synth_root, tmp_path):
    other = tmp_path / "mel64"
    build_shards(synth_root, other, BuildConfig(shards_per_split=1, val_fraction=0.0,
                                                features=BuildConfig().features.__class__(n_mels=64)),
                 progress=False)
    r = runner.invoke(eval_app, [str(tiny_run), "--shards", str(other)])
    assert r.exit_code == 1 and "features.n_mels: 128 -> 64" in r.output
    same = tmp_path / "noval"
    build_shards(synth_root, same, BuildConfig(shards_per_split=1, val_fraction=0.0), progress=False)
    r = runner.invoke(eval_app, [str(tiny_run), "--shards", str(same), "--split", "val"])
    assert r.exit_code == 1 and "val split is empty" in r.output
    r = runner.invoke(eval_app, [str(tiny_run), "--shards", str(same), "--predictor", "calibrated"])
    assert r.exit_code == 1 and "predictors calibrated need validation data" in r.output
    r = runner.invoke(eval_app, [str(tiny_run), "--shards", str(same), "--out", str(tmp_path / "e")])
    assert r.exit_code == 0 and "top3 per instrument" in r.output  # top-n needs no calibration
    r = runner.invoke(eval_app, [str(tmp_path / "nothing"), "--shards", str(same)])
    assert r.exit_code == 1 and "no checkpoint" in r.output
