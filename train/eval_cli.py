"""`musicid-eval`: a run on a shard split with any predictor; `--compare` all predictors;
`musicid-eval compare-runs`: several runs (e.g. bce / iou / mse) side by side."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .evaluate import evaluate, load_run
from .predictors import NAMES
from .report import per_class_table, plot_bars, plot_pr_curves, summary_table, write_reports

COMPARED = ("top1", "top2", "top3", "threshold", "prior", "valmean", "noise", "calibrated", "hybrid")
eval_app = typer.Typer(add_completion=False)
compare_app = typer.Typer(add_completion=False)


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _public(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("probs", "labels")}


@eval_app.command()
def run_eval(
    run: Path = typer.Argument(..., help="Run folder (uses best.pt) or a checkpoint file."),
    shards: Path = typer.Option(..., "--shards", help="Shard folder or manifest path."),
    split: str = typer.Option("test", help="train | val | test."),
    predictor: str = typer.Option("top3", help=f"One of: {', '.join(NAMES)}."),
    compare: bool = typer.Option(False, "--compare", help="Every predictor on the same split, one table."),
    out: Path = typer.Option(None, help="Report folder (default: RUN/eval-SPLIT)."),
    threshold: float = typer.Option(0.5, min=0.0, max=1.0, help="For the `threshold` predictor."),
    max_instruments: int = typer.Option(3, min=1, help="For the `hybrid` predictor."),
    workers: int = typer.Option(0, min=0, help="DataLoader workers."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
):
    """Evaluate a run: per-class and aggregated metrics, report.{json,md}, PR curves and F1 bars."""
    if predictor not in NAMES:
        _fail(ValueError(f"--predictor must be one of {', '.join(NAMES)}"))
    names = tuple(dict.fromkeys((predictor, *COMPARED))) if compare else (predictor,)
    try:
        r = load_run(run, device)
        report = evaluate(r, shards, split, names, threshold, max_instruments, workers)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        _fail(exc)
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
    typer.echo(f"\nabsent from {split}: {', '.join(main['absent_classes']) or 'none'} "
               "(left out of macro means)")
    typer.echo(f"reports: {out}/report.md, report.json, pr_curves.png, f1_per_class.png"
               + (", compare_predictors.png" if compare else ""))


@compare_app.command()
def compare_runs(
    runs: list[Path] = typer.Argument(..., help="Run folders or checkpoints, e.g. runs/bce runs/iou runs/mse."),
    shards: Path = typer.Option(..., "--shards", help="Shard folder or manifest path."),
    split: str = typer.Option("test"),
    predictor: str = typer.Option("top3", help=f"One of: {', '.join(NAMES)}."),
    out: Path = typer.Option(Path("runs/compare"), help="Report folder."),
    workers: int = typer.Option(0, min=0),
    device: str = typer.Option("auto"),
):
    """Several runs side by side on the same split and predictor (the prior work's loss comparison)."""
    results, labels = {}, {}
    try:
        for path in runs:
            r = load_run(path, device)
            label = f"{r.path.parent.name} ({r.state['train_config']['loss']})"
            results[label] = evaluate(r, shards, split, (predictor,), workers=workers)["results"][predictor]
            labels[label] = str(r.path)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        _fail(exc)
    text = summary_table(results).replace("predictor", "run      ", 1)
    write_reports(out, f"musicid-eval compare-runs ({predictor}, {split})",
                  {"split": split, "predictor": predictor, "runs": labels, "results": results},
                  [(f"Runs with {predictor} on {split}", text)])
    plot_bars({n: {"micro F1": r["micro"]["f1"], "macro F1": r["macro"]["f1"], "mAP": r["mAP"]}
               for n, r in results.items()}, out / "compare_runs.png", f"Runs ({predictor}, {split})", "score")
    typer.echo(text)
    typer.echo(f"reports: {out}/report.md, report.json, compare_runs.png")


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] == "compare-runs":
        compare_app(args=args[1:], prog_name="musicid-eval compare-runs")
    else:
        eval_app(args=args, prog_name="musicid-eval")
