"""`make demo` (`python -m musicid.recipes.demo`): the whole mission on the built-in synthetic data,
as a user runs it.

synth -> build-shards -> train (bce) -> eval --compare -> predict, plus the prior work's two
comparisons: loss functions (bce / iou / mse, shorter runs of equal length) and predictors.
Everything lands under OUT (default demo/). Fails loudly (exit 1) when the main model's test mAP is
below --min-map.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import typer

from musicid.cli import command, new_app, run
from musicid.errors import MusicidError
from musicid.pipeline.workers import WORKERS
from musicid.train.trainer import TrainConfig

from . import CONDITIONS, LR
from . import exe as bin_of

app = new_app()


def step(title: str, cmd: list[str], where: str) -> None:
    """Run one CLI step, echoing the command; stop the demo on failure."""
    print(f"\n=== {title}\n$ {' '.join(cmd)}", flush=True)
    t = time.perf_counter()
    result = subprocess.run(cmd)
    if result.returncode != 0:
        raise MusicidError(f"demo step failed ({title}, exit {result.returncode})")
    print(f"--- {title}: done in {time.perf_counter() - t:.0f} s; files: {where}", flush=True)


@app.command()
@command
def demo(
    out: Path = typer.Option(Path("demo"), help="Folder for everything the demo writes."),
    recordings: int = typer.Option(
        960,
        min=4,
        help="Many short recordings: more scores, ensembles and rooms "
        "per training step than a few long ones.",
    ),
    seconds: float = typer.Option(5.0, min=1.0),
    epochs: int = typer.Option(4, min=1, help="Epochs of the main (bce) run."),
    compare_steps: int = typer.Option(
        80, min=1, help="Optimiser steps of each loss-comparison run (one epoch of that many)."
    ),
    min_map: float = typer.Option(
        0.75, help="Fail when the main run's test mAP is below this (see README)."
    ),
    workers: int = typer.Option(
        WORKERS, min=1, help="Worker processes for data, DataLoader workers for training."
    ),
    batch_size: int = typer.Option(TrainConfig.batch_size, min=1, help="Training batch size."),
    conditions: float = typer.Option(
        CONDITIONS,
        min=0.0,
        max=1.0,
        help="Recording-condition augmentation (chosen on val, see README); 0 = off.",
    ),
    engine: str = typer.Option(
        "sampled",
        help="synth's engine: sampled (SoundFont instruments in varied "
        "recording conditions), or additive (the built-in timbres).",
    ),
):
    """The whole mission on the built-in synthetic data, as a user would run it."""
    t0 = time.perf_counter()
    data, shards, runs = out / "data", out / "shards", out / "runs"
    exe = {name: bin_of(name) for name in ("pipeline", "train", "eval", "predict")}
    common = [
        "--workers",
        str(workers),
        "--batch-size",
        str(batch_size),
        "--lr",
        str(LR),
        "--overwrite",
        "--conditions",
        str(conditions),
    ]
    step(
        f"1. synthesise a MusicNet-layout dataset ({engine} instruments, every instrument in its "
        "share of "
        "recordings)",
        [
            exe["pipeline"],
            "synth",
            str(data),
            "--recordings",
            str(recordings),
            "--seconds",
            str(seconds),
            "--engine",
            engine,
            "--balance",
            "--overwrite",
            "--workers",
            str(workers),
        ],
        str(data),
    )
    step(
        "2. build WebDataset shards",
        [
            exe["pipeline"],
            "build-shards",
            str(data),
            str(shards),
            "--val-fraction",
            "0.2",
            "--shards-per-split",
            "4",
            "--overwrite",
            "--workers",
            str(workers),
        ],
        f"{shards}/{{train,val,test}}-*.tar, manifest.json",
    )
    step(
        "3. train ResNet18 with bce",
        [
            exe["train"],
            "--shards",
            str(shards),
            "--out",
            str(runs / "bce"),
            "--epochs",
            str(epochs),
            *common,
        ],
        f"{runs / 'bce'}/{{best.pt,last.pt,metrics.jsonl,config.json}}",
    )
    step(
        "4. evaluate on the test split, every predictor (the prior work's predictor comparison)",
        [
            exe["eval"],
            str(runs / "bce"),
            "--shards",
            str(shards),
            "--compare",
            "--out",
            str(out / "eval"),
            "--overwrite",
        ],
        f"{out / 'eval'}/"
        "{report.md,report.json,pr_curves.png,f1_per_class.png,compare_predictors.png}",
    )
    step(
        "4b. evaluate at the frame level, the published 7-instrument protocol, with intervals over "
        "recordings",
        [
            exe["eval"],
            str(runs / "bce"),
            "--shards",
            str(shards),
            "--level",
            "frame",
            "--predictor",
            "calibrated",
            "--instruments",
            "piano,violin,viola,cello,clarinet,bassoon,horn",
            "--out",
            str(out / "eval-frame"),
            "--overwrite",
        ],
        f"{out / 'eval-frame'}/{{report.md,report.json,f1_per_recording.png}}",
    )
    for loss in ("bce", "iou", "mse"):
        step(
            f"5. loss comparison: {loss}, {compare_steps} steps",
            [
                exe["train"],
                "--shards",
                str(shards),
                "--out",
                str(runs / f"{loss}-short"),
                "--epochs",
                "1",
                "--epoch-steps",
                str(compare_steps),
                "--loss",
                loss,
                *common,
            ],
            str(runs / f"{loss}-short"),
        )
    step(
        "6. compare the losses (the prior work's loss comparison)",
        [
            exe["eval"],
            "compare-runs",
            *(str(runs / f"{x}-short") for x in ("bce", "iou", "mse")),
            "--shards",
            str(shards),
            "--predictor",
            "valmean",
            "--out",
            str(out / "loss-comparison"),
            "--overwrite",
        ],
        f"{out / 'loss-comparison'}/{{report.md,compare_runs.png}}",
    )
    wav = sorted((data / "musicnet" / "musicnet" / "test_data").glob("*.wav"))[0]
    step(
        "7. predict the instruments of one test recording",
        [
            exe["predict"],
            str(wav),
            "--model",
            str(runs / "bce"),
            "-o",
            str(out / "predict"),
            "--overwrite",
            "--format",
            "csv,json,png,html",
        ],
        f"{out / 'predict'}/{wav.stem}.instruments.{{csv,json,png,html}}",
    )
    report = json.loads((out / "eval" / "report.json").read_text())
    m_ap = report["results"]["top3"]["mAP"]
    ap = {
        name: c["ap"] for name, c in report["results"]["top3"]["per_class"].items() if c["present"]
    }
    frame = json.loads((out / "eval-frame" / "report.json").read_text())["intervals"]
    print(f"\n=== demo finished in {time.perf_counter() - t0:.0f} s; everything is under {out}/")
    print(
        "listen along: open "
        f"{(out / 'predict' / f'{wav.stem}.instruments.html').resolve().as_uri()} in a browser"
    )
    print(
        f"main run (bce, {epochs} epochs): test mAP {m_ap:.3f} (required >= {min_map}); test AP "
        "per instrument: " + ", ".join(f"{name} {v:.3f}" for name, v in ap.items())
    )
    print(
        "frame level, 7 instruments, calibrated: "
        + "; ".join(
            f"{k} {v['value']:.3f} [95% CI {v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"
            for k, v in frame.items()
        )
    )
    if m_ap < min_map:
        raise MusicidError(f"DEMO QUALITY CHECK FAILED: test mAP {m_ap:.3f} < {min_map}")


def main(args: list[str] | None = None) -> None:
    run(app, "python -m musicid.recipes.demo", args)


if __name__ == "__main__":
    main()
