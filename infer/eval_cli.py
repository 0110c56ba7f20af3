"""`musicid-eval RUN --shards DIR`: a run on a shard split with any predictor, `--compare` for all of them;
`musicid-eval compare-runs RUN RUN ...`: several runs (e.g. bce / iou / mse) side by side."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from musicid.cli import DefaultGroup, command, run

from .checkpoint import load_run
from .evaluate import evaluate
from .predictors import Predictor
from .report import per_class_table, plot_bars, plot_pr_curves, summary_table, write_reports

COMPARED = ("top1", "top2", "top3", "threshold", "prior", "valmean", "noise", "calibrated", "hybrid")
app = typer.Typer(cls=DefaultGroup, add_completion=False, help=__doc__, pretty_exceptions_enable=False)
SHARD_URL_HELP = ("Read shards from this URL template instead of beside the manifest, {name} standing for "
                  "each shard's name (e.g. 'pipe:aws s3 cp s3://bucket/shards/{name} -').")


class Split(str, Enum):
    train = "train"
    val = "val"
    test = "test"


def _public(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("probs", "labels")}


@app.command("run")
@command
def run_eval(
    run_path: Path = typer.Argument(..., metavar="RUN", help="Run folder (uses best.pt) or a checkpoint file."),
    shards: Path = typer.Option(..., "--shards", help="Shard folder or manifest path."),
    split: Split = typer.Option(Split.test, help="The split to score."),
    predictor: Predictor = typer.Option("top3", help="How probabilities become instrument sets."),
    compare: bool = typer.Option(False, "--compare", help="Every predictor on the same split, one table."),
    out: Path = typer.Option(None, help="Report folder (default: RUN/eval-SPLIT)."),
    threshold: float = typer.Option(0.5, min=0.0, max=1.0, help="For the `threshold` predictor."),
    max_instruments: int = typer.Option(3, min=1, help="For the `hybrid` predictor."),
    shard_url: str = typer.Option(None, help=SHARD_URL_HELP),
    workers: int = typer.Option(0, min=0, help="DataLoader workers."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
):
    """Evaluate a run: per-class and aggregated metrics, report.{json,md}, PR curves and F1 bars."""
    predictor, split = predictor.value, split.value
    names = tuple(dict.fromkeys((predictor, *COMPARED))) if compare else (predictor,)
    r = load_run(run_path, device)
    report = evaluate(r, shards, split, names, threshold, max_instruments, workers, shard_url)
    out = out or (r.path.parent / f"eval-{split}")
    main = report["results"][predictor]
    tables = [(f"{predictor} per instrument ({split}, {main['samples']} samples)", per_class_table(main)),
              ("Summary", summary_table({n: report["results"][n] for n in names}))]
    write_reports(out, f"musicid-eval: {r.path} on {split}", _public(report), tables)
    plot_pr_curves(report["probs"], report["labels"], r.names, out / "pr_curves.png")
    plot_bars({n: {"F1": c["f1"]} for n, c in main["per_class"].items()}, out / "f1_per_class.png",
              f"F1 per instrument ({predictor}, {split})", "F1")
    if compare:
        plot_bars({n: {"micro F1": report["results"][n]["micro"]["f1"], "macro F1": report["results"][n]["macro"]["f1"],
                       "recall": report["results"][n]["prior_accuracy"]} for n in names},
                  out / "compare_predictors.png", f"Predictors on {split}", "score")
    for heading, text in tables:
        typer.echo(f"\n{heading}\n{text}")
    typer.echo(f"\nabsent from {split}: {', '.join(main['absent_classes']) or 'none'} (left out of macro means)")
    typer.echo(f"reports: {out}/report.md, report.json, pr_curves.png, f1_per_class.png"
               + (", compare_predictors.png" if compare else ""))


@app.command("compare-runs")
@command
def compare_runs(
    runs: list[Path] = typer.Argument(..., help="Run folders or checkpoints, e.g. runs/bce runs/iou runs/mse."),
    shards: Path = typer.Option(..., "--shards", help="Shard folder or manifest path."),
    split: Split = typer.Option(Split.test, help="The split to score."),
    predictor: Predictor = typer.Option("top3", help="How probabilities become instrument sets."),
    out: Path = typer.Option(Path("runs/compare"), help="Report folder."),
    shard_url: str = typer.Option(None, help=SHARD_URL_HELP),
    workers: int = typer.Option(0, min=0),
    device: str = typer.Option("auto"),
):
    """Several runs side by side on the same split and predictor (the prior work's loss comparison)."""
    results, labels = {}, {}
    for path in runs:
        r = load_run(path, device)
        label = f"{r.path.parent.name} ({r.card.train_config.get('loss', '?')})"
        results[label] = evaluate(r, shards, split.value, (predictor.value,), workers=workers,
                                  url_template=shard_url)["results"][predictor.value]
        labels[label] = str(r.path)
    text = summary_table(results).replace("predictor", "run      ", 1)
    write_reports(out, f"musicid-eval compare-runs ({predictor.value}, {split.value})",
                  {"split": split.value, "predictor": predictor.value, "runs": labels, "results": results},
                  [(f"Runs with {predictor.value} on {split.value}", text)])
    plot_bars({n: {"micro F1": r["micro"]["f1"], "macro F1": r["macro"]["f1"], "mAP": r["mAP"]}
               for n, r in results.items()}, out / "compare_runs.png", f"Runs ({predictor.value}, {split.value})",
              "score")
    typer.echo(text)
    typer.echo(f"reports: {out}/report.md, report.json, compare_runs.png")


def main() -> None:
    run(app, "musicid-eval")
