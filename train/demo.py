"""`make demo`: the whole mission on the built-in synthetic data, step by step, as a user would run it.

synth -> build-shards -> train (bce) -> eval --compare -> predict, plus the prior work's two comparisons:
loss functions (bce / iou / mse, shorter runs of equal length) and predictors. Everything lands under
OUT (default demo/). Fails loudly (exit 1) when the main model's test mAP is below --min-map.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def step(title: str, cmd: list[str], where: str) -> None:
    """Run one CLI step, echoing the command; stop the demo on failure."""
    print(f"\n=== {title}\n$ {' '.join(cmd)}", flush=True)
    t = time.perf_counter()
    result = subprocess.run(cmd)
    if result.returncode != 0:
        sys.exit(f"demo step failed ({title}, exit {result.returncode})")
    print(f"--- {title}: done in {time.perf_counter() - t:.0f} s; files: {where}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("demo"))
    ap.add_argument("--recordings", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--epochs", type=int, default=12, help="epochs of the main (bce) run")
    ap.add_argument("--compare-epochs", type=int, default=4, help="epochs of each loss-comparison run")
    ap.add_argument("--min-map", type=float, default=0.55,
                    help="fail when the main run's test mAP is below this (measured: 0.68, see README)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    out, data, shards, runs = a.out, a.out / "data", a.out / "shards", a.out / "runs"
    exe = {name: str(BIN / f"musicid-{name}") for name in ("pipeline", "train", "eval", "predict")}
    workers = ["--workers", str(a.workers)]
    batch = ["--batch-size", str(a.batch_size)]
    step("1. synthesise a MusicNet-layout dataset",
         [exe["pipeline"], "synth", str(data), "--recordings", str(a.recordings), "--seconds", str(a.seconds),
          "--overwrite"],
         str(data))
    step("2. build WebDataset shards",
         [exe["pipeline"], "build-shards", str(data), str(shards), "--val-fraction", "0.2",
          "--shards-per-split", "4", "--overwrite", *workers], f"{shards}/{{train,val,test}}-*.tar, manifest.json")
    step("3. train ResNet18 with bce",
         [exe["train"], "--shards", str(shards), "--out", str(runs / "bce"), "--epochs", str(a.epochs),
          "--lr", "2e-3", *workers, *batch], f"{runs / 'bce'}/{{best.pt,last.pt,metrics.jsonl,config.json}}")
    step("4. evaluate on the test split, every predictor (the prior work's predictor comparison)",
         [exe["eval"], str(runs / "bce"), "--shards", str(shards), "--compare", "--out", str(out / "eval")],
         f"{out / 'eval'}/{{report.md,report.json,pr_curves.png,f1_per_class.png,compare_predictors.png}}")
    for loss in ("bce", "iou", "mse"):
        step(f"5. loss comparison: {loss}, {a.compare_epochs} epochs",
             [exe["train"], "--shards", str(shards), "--out", str(runs / f"{loss}-short"), "--epochs",
              str(a.compare_epochs), "--lr", "2e-3", "--loss", loss, *workers, *batch], str(runs / f"{loss}-short"))
    step("6. compare the losses (the prior work's loss comparison)",
         [exe["eval"], "compare-runs", *(str(runs / f"{x}-short") for x in ("bce", "iou", "mse")), "--shards",
          str(shards), "--predictor", "valmean", "--out", str(out / "loss-comparison")],
         f"{out / 'loss-comparison'}/{{report.md,compare_runs.png}}")
    wav = sorted((data / "musicnet" / "musicnet" / "test_data").glob("*.wav"))[0]
    step("7. predict the instruments of one test recording",
         [exe["predict"], str(wav), "--model", str(runs / "bce"), "-o", str(out / "predict")],
         f"{out / 'predict'}/{wav.stem}.instruments.{{csv,json,png}}")
    report = json.loads((out / "eval" / "report.json").read_text())
    m_ap = report["results"]["top3"]["mAP"]
    print(f"\n=== demo finished in {time.perf_counter() - t0:.0f} s; everything is under {out}/")
    print(f"main run (bce, {a.epochs} epochs): test mAP {m_ap:.3f} (required >= {a.min_map})")
    if m_ap < a.min_map:
        sys.exit(f"DEMO QUALITY CHECK FAILED: test mAP {m_ap:.3f} < {a.min_map}")


if __name__ == "__main__":
    main()
