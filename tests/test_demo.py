"""A miniature of `make demo`: the same steps and files at tiny sizes, so the flow cannot silently break."""

from __future__ import annotations

import json

import pytest

from train.demo import main


def test_demo_flow_in_miniature(tmp_path, capsys):
    out = tmp_path / "demo"
    main(["--out", str(out), "--recordings", "8", "--seconds", "3", "--epochs", "1", "--compare-epochs", "1",
          "--min-map", "0", "--workers", "1", "--batch-size", "8"])
    printed = capsys.readouterr().out
    assert "demo finished" in printed and "test mAP" in printed
    for path in ("shards/manifest.json", "runs/bce/best.pt", "runs/iou-short/metrics.jsonl",
                 "eval/report.md", "eval/compare_predictors.png", "loss-comparison/compare_runs.png"):
        assert (out / path).exists(), path
    report = json.loads((out / "loss-comparison" / "report.json").read_text())
    assert [r.split(" ")[-1] for r in report["runs"]] == ["(bce)", "(iou)", "(mse)"]
    assert len(list((out / "predict").glob("*.instruments.*"))) == 3
    with pytest.raises(SystemExit, match="QUALITY CHECK FAILED"):
        main(["--out", str(out), "--recordings", "8", "--seconds", "3", "--epochs", "1", "--compare-epochs",
              "1", "--min-map", "1.01", "--workers", "1", "--batch-size", "8"])
