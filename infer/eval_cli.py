"""`musicid-eval RUN --shards DIR`: a run on a shard split with any predictor, at the window or
frame level, `--compare` for all predictors; `musicid-eval compare-runs RUN RUN ...`: runs side by
side, each difference with its bootstrap interval."""

from __future__ import annotations

from pathlib import Path

import typer

from musicid.cli import DefaultGroup, choices, comma_separated, command, new_app, run
from musicid.files import output_folder, refuse_existing, write_json_atomic, write_text_atomic
from musicid.run import DEVICE, DEVICES, resolve_model
from musicid.splits import SPLITS
from musicid.validation import THRESHOLD

from .bootstrap import Resampler, intervals
from .clips import clips_table, score_clips
from .evaluate import LEVELS, EvalOptions, evaluate
from .loaded import load_run
from .predictors import FITTED, TIMELINE
from .predictors import NAMES as PREDICTORS
from .report import (
    events_tables,
    interval_table,
    per_class_table,
    per_recording_table,
    plot_bars,
    plot_pr_curves,
    plot_recording_heatmap,
    plot_timeline,
    published_table,
    summary_table,
    write_reports,
)
from .sed import evaluate_folder, read_folder

COMPARED = ("top1", "top2", "top3", "threshold", *FITTED)  # --compare: every kind of predictor
REPORTS = Path("eval")  # where reports go when no --out is given, in the working directory
app = new_app(cls=DefaultGroup, help=__doc__)
SHARD_URL_HELP = (
    "Read shards from this URL template instead of beside the manifest, {name} standing for "
    "each shard's name (e.g. 'pipe:aws s3 cp s3://bucket/shards/{name} -')."
)
INSTRUMENTS_HELP = (
    "Score only these classes, comma-separated "
    "(e.g. piano,violin,viola,cello,clarinet,bassoon,horn)."
)


Split = choices("Split", SPLITS)
Predictor = choices("Predictor", PREDICTORS)
TimelinePredictor = choices("TimelinePredictor", TIMELINE)
E = EvalOptions  # defaults are read from the options record, declared there once
Level = choices("Level", LEVELS)


def _instruments(value: str | None) -> tuple[str, ...] | None:
    return comma_separated(value) if value else None


def _public(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("rows", "sets")}


@app.command("run")
@command
def run_eval(
    run_path: Path = typer.Argument(
        ..., metavar="RUN", help="Run folder (uses best.pt) or a checkpoint file."
    ),
    shards: Path = typer.Option(..., "--shards", help="Shard folder or manifest path."),
    split: Split = typer.Option(E.split, help="The split to score."),
    predictor: Predictor = typer.Option(
        E.predictors[0], help="How probabilities become instrument sets."
    ),
    compare: bool = typer.Option(
        False, "--compare", help="Every predictor on the same split, one table."
    ),
    level: Level = typer.Option(
        E.level, help="Score 1 s windows, or frames (windows averaged per frame)."
    ),
    frame_rate: float = typer.Option(
        None, min=0.1, help="Frame level on a coarser grid (frames per second)."
    ),
    instruments: str = typer.Option(None, help=INSTRUMENTS_HELP),
    timeline: str = typer.Option(
        None, help="Also plot truth vs prediction over time for this recording id."
    ),
    bootstrap: int = typer.Option(
        E.n_boot, min=10, help="Bootstrap resamples of recordings for the 95% intervals."
    ),
    seed: int = typer.Option(E.seed, help="Seed of the bootstrap."),
    out: Path = typer.Option(
        None,
        help="Report folder (default: eval/RUNNAME-SPLIT[-frame] here; nothing is "
        "written into the run folder).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the reports already in OUT."
    ),
    threshold: float = typer.Option(
        E.threshold, min=0.0, max=1.0, help="For the `threshold` predictor."
    ),
    max_instruments: int = typer.Option(
        E.max_instruments, min=1, help="For the `hybrid` predictor."
    ),
    shard_url: str = typer.Option(None, help=SHARD_URL_HELP),
    workers: int = typer.Option(E.workers, min=0, help="DataLoader workers."),
    device: str = typer.Option(DEVICE, help=" | ".join(DEVICES) + "."),
):
    """Evaluate a run: per-class and aggregated metrics with intervals, per-recording results,
    report.{json,md}, PR curves, F1 bars, a recordings x instruments heat map."""
    names = tuple(dict.fromkeys((predictor.value, *COMPARED))) if compare else (predictor.value,)
    opts = EvalOptions(
        split.value,
        names,
        threshold,
        max_instruments,
        level.value,
        frame_rate,
        _instruments(instruments),
        bootstrap,
        seed,
        workers,
        shard_url,
    )
    r = load_run(run_path, device)
    out = (
        out
        or REPORTS
        / f"{r.path.parent.name}-{split.value}{'-frame' if level.value == 'frame' else ''}"
    )
    refuse_existing([out / "report.json", out / "report.md"], overwrite)
    report = evaluate(r, shards, opts)
    rows = report["rows"]
    if timeline is not None and timeline not in set(rows.recordings):
        raise typer.BadParameter(
            f"--timeline: no recording {timeline!r} in the {split.value} split"
        )
    main = report["results"][predictor.value]
    cls = report["instruments"]
    unit = "frames" if level.value == "frame" else "windows"
    tables = [
        (
            f"{predictor.value} per instrument ({split.value}, {level.value} level, "
            f"{main['samples']} {unit})",
            per_class_table(main),
        ),
        (
            f"{predictor.value}: 95% intervals over {len(report['per_recording'])} recordings "
            f"({bootstrap} resamples)",
            interval_table(report["intervals"]),
        ),
        ("Summary", summary_table({n: report["results"][n] for n in names})),
        (f"{predictor.value} F1 per recording", per_recording_table(report["per_recording"], cls)),
    ]
    notes = []
    if level.value == "frame":
        text, note = published_table(main)
        tables.append(("Published results (Hung & Yang, ISMIR 2018) beside ours", text))
        notes.append(note)
    fallback = (report["calibration"] or {}).get("fallback_classes") or []
    notes.append(
        f"Calibration fallback (val lacks the class, threshold {THRESHOLD:g}): "
        + (", ".join(fallback) or "none")
    )
    write_reports(
        out,
        f"musicid-eval: {r.path} on {split.value} ({level.value} level)",
        _public(report),
        tables,
        notes,
    )
    plot_pr_curves(rows.probs, rows.labels, cls, out / "pr_curves.png")
    plot_bars(
        {n: {"F1": c["f1"]} for n, c in main["per_class"].items()},
        out / "f1_per_class.png",
        f"F1 per instrument ({predictor.value}, {split.value})",
        "F1",
    )
    plot_recording_heatmap(report["per_recording"], cls, out / "f1_per_recording.png")
    if timeline is not None:
        plot_timeline(
            rows, report["sets"][predictor.value], timeline, cls, out / f"timeline-{timeline}.png"
        )
    if compare:
        plot_bars(
            {
                n: {
                    "micro F1": report["results"][n]["micro"]["f1"],
                    "macro F1": report["results"][n]["macro"]["f1"],
                    "recall": report["results"][n]["prior_accuracy"],
                }
                for n in names
            },
            out / "compare_predictors.png",
            f"Predictors on {split.value}",
            "score",
        )
    for heading, t in tables:
        typer.echo(f"\n{heading}\n{t.text()}")
    for note in notes:
        typer.echo(f"\n{note}")
    typer.echo(
        f"\nabsent from {split.value}: {', '.join(main['absent_classes']) or 'none'} (left out of "
        "macro means)"
    )
    typer.echo(
        f"reports: {out}/report.md, report.json, pr_curves.png, f1_per_class.png, "
        "f1_per_recording.png"
        + (", compare_predictors.png" if compare else "")
        + (f", timeline-{timeline}.png" if timeline else "")
    )


@app.command("compare-runs")
@command
def compare_runs(
    runs: list[Path] = typer.Argument(
        ..., help="Run folders or checkpoints, e.g. runs/bce runs/iou runs/mse."
    ),
    shards: Path = typer.Option(..., "--shards", help="Shard folder or manifest path."),
    split: Split = typer.Option(E.split, help="The split to score."),
    predictor: Predictor = typer.Option(
        E.predictors[0], help="How probabilities become instrument sets."
    ),
    level: Level = typer.Option(E.level, help="Score 1 s windows, or frames."),
    instruments: str = typer.Option(None, help=INSTRUMENTS_HELP),
    bootstrap: int = typer.Option(
        E.n_boot, min=10, help="Bootstrap resamples of recordings for the intervals."
    ),
    seed: int = typer.Option(E.seed, help="Seed of the bootstrap."),
    out: Path = typer.Option(REPORTS / "compare", help="Report folder."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the reports already in OUT."
    ),
    shard_url: str = typer.Option(None, help=SHARD_URL_HELP),
    workers: int = typer.Option(E.workers, min=0, help="DataLoader workers."),
    device: str = typer.Option(DEVICE, help=" | ".join(DEVICES) + "."),
):
    """Several runs side by side on the same split and predictor (the prior work's loss comparison);
    each difference from the first run with its paired bootstrap interval over recordings."""
    opts = EvalOptions(
        split.value,
        (predictor.value,),
        level=level.value,
        instruments=_instruments(instruments),
        n_boot=bootstrap,
        seed=seed,
        workers=workers,
        url_template=shard_url,
    )
    refuse_existing([out / "report.json", out / "report.md"], overwrite)
    results, labels, resamplers = {}, {}, []
    for path in runs:
        r = load_run(path, device)
        label = f"{r.path.parent.name} ({r.card.train_config.get('loss', '?')})"
        label = label if label not in results else f"{label} #{len(results) + 1}"
        report = evaluate(r, shards, opts)
        results[label] = report["results"][predictor.value]
        labels[label] = str(r.path)
        resamplers.append(Resampler(report["rows"], report["sets"][predictor.value]))
    diffs = intervals(resamplers, bootstrap, seed)
    tables = [
        (
            f"Runs with {predictor.value} on {split.value} ({level.value} level)",
            summary_table(results, "run"),
        )
    ]
    tables += [
        (
            f"{label}: 95% intervals over recordings"
            + (f", difference from {next(iter(results))}" if i else ""),
            interval_table(d),
        )
        for i, (label, d) in enumerate(zip(results, diffs, strict=True))
    ]
    write_reports(
        out,
        f"musicid-eval compare-runs ({predictor.value}, {split.value})",
        {
            "split": split.value,
            "predictor": predictor.value,
            "level": level.value,
            "runs": labels,
            "results": results,
            "intervals": dict(zip(results, diffs, strict=True)),
        },
        tables,
    )
    plot_bars(
        {
            n: {"micro F1": r["micro"]["f1"], "macro F1": r["macro"]["f1"], "mAP": r["mAP"]}
            for n, r in results.items()
        },
        out / "compare_runs.png",
        f"Runs ({predictor.value}, {split.value})",
        "score",
    )
    for heading, t in tables:
        typer.echo(f"\n{heading}\n{t.text()}")
    typer.echo(f"reports: {out}/report.md, report.json, compare_runs.png")


@app.command("clips")
@command
def clips_cmd(
    folder: Path = typer.Argument(
        ..., help="Labelled clips: labels.csv (file,instruments) and audio/ beside it."
    ),
    model: Path = typer.Option(
        None, "--model", help="Run folder or checkpoint (default: the shipped model)."
    ),
    out: Path = typer.Option(None, help="Also write clips.json and clips.md here."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace clips.json and clips.md in OUT."
    ),
    device: str = typer.Option(DEVICE, help=" | ".join(DEVICES) + "."),
):
    """Score a model on labelled real clips: solo top-1/top-3, clip mAP, per class, and how sure it
    is on instruments outside the 11."""
    if out is not None:
        refuse_existing([out / "clips.json", out / "clips.md"], overwrite)
    r = load_run(resolve_model(model), device)
    result = score_clips(r, folder)
    text = clips_table(result)
    typer.echo(f"{r.path} on {folder}\n{text}")
    if out is not None:
        output_folder(out)
        write_json_atomic(
            out / "clips.json", {"model": str(r.path), "folder": str(folder), **result}
        )
        write_text_atomic(
            out / "clips.md", f"# musicid-eval clips: {r.path} on {folder}\n\n{text}\n"
        )
        typer.echo(f"reports: {out}/clips.json, clips.md")


@app.command("events")
@command
def events_cmd(
    folder: Path = typer.Argument(
        ...,
        help="Mixtures: audio/ and reference.tsv (DCASE event list), optionally "
        "others.tsv (instruments outside the 11).",
    ),
    model: Path = typer.Option(
        None, "--model", help="Run folder, checkpoint or ONNX export (default: the shipped model)."
    ),
    predictor: TimelinePredictor = typer.Option(
        None, help="How probabilities become events (default: the model's, events)."
    ),
    out: Path = typer.Option(
        None, "-o", "--out", help="Report folder (default: eval/events-FOLDERNAME here)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the reports already in OUT."
    ),
    device: str = typer.Option(DEVICE, help=f"PyTorch only: {' | '.join(DEVICES)}."),
):
    """Score a model's events on real mixtures with sed_eval: segment-based F1 and error rate (1 s),
    event-based F1 (collars 0.5 s / 20 %), segment-based AP, instruments named that never play, and
    outsiders named as one of the 11."""
    out = out or REPORTS / f"events-{Path(folder).resolve().name}"
    refuse_existing([out / "report.json", out / "report.md"], overwrite)
    read_folder(folder)  # every file and row checked before the model loads
    r = load_run(resolve_model(model), device)
    result = evaluate_folder(r, folder, predictor.value if predictor else None)
    tables = events_tables(result)
    title = f"musicid-eval events: {r.name} on {Path(folder).name} ({result['predictor']})"
    write_reports(out, title, {"model": r.name, "folder": str(folder), **result}, tables)
    for heading, t in tables:
        typer.echo(f"\n{heading}\n{t.text()}")
    typer.echo(f"reports: {out}/report.md, report.json")


def main() -> None:
    run(app, "musicid-eval")
