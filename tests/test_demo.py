"""A miniature of `make demo`: the same steps and files at tiny sizes, so the flow cannot silently
break."""

from __future__ import annotations

import json

from musicid.recipes.demo import app
from tests.conftest import invoke


def test_demo_flow_in_miniature(tmp_path):
    out = tmp_path / "demo"
    tiny = [
        "--out",
        out,
        "--recordings",
        "16",
        "--seconds",
        "2",
        "--epochs",
        "1",
        "--compare-steps",
        "2",
        "--workers",
        "1",
        "--batch-size",
        "8",
    ]
    r = invoke(app, [*tiny, "--min-map", "0"])
    assert r.exit_code == 0, r.output[-3000:]
    assert (
        "demo finished" in r.output
        and "test mAP" in r.output
        and "frame level, 7 instruments" in r.output
    )
    for path in (
        "shards/manifest.json",
        "runs/bce/best.pt",
        "runs/bce/best.calibration.json",
        "runs/iou-short/metrics.jsonl",
        "eval/report.md",
        "eval/compare_predictors.png",
        "eval-frame/report.json",
        "loss-comparison/compare_runs.png",
    ):
        assert (out / path).exists(), path
    report = json.loads((out / "loss-comparison" / "report.json").read_text())
    assert [r.split(" ")[-1] for r in report["runs"]] == ["(bce)", "(iou)", "(mse)"]
    assert (
        len(list((out / "predict").glob("*.instruments.*"))) == 4
        and "listen along: open file://" in r.output
    )
    # a second run over the first: its own outputs replaced
    r = invoke(app, [*tiny, "--min-map", "1.01"])
    assert r.exit_code == 1 and "QUALITY CHECK FAILED" in r.output
