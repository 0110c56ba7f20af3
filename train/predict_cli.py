"""`musicid-predict`: instruments over time for audio files or folders."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf
import typer

from pipeline.audio import AudioError

from .evaluate import load_run
from .predictors import NAMES
from .timeline import WRITERS

FORMATS = tuple(WRITERS)
app = typer.Typer(add_completion=False)


def audio_files(inputs: list[Path]) -> list[Path]:
    """Files as given, folders searched recursively for extensions libsndfile reads."""
    exts = {f".{e.lower()}" for e in sf.available_formats()} | {".wav", ".flac", ".ogg", ".mp3", ".oga", ".aif"}
    out = []
    for p in inputs:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in exts)
        else:
            out.append(p)
    return out


@app.command()
def run_predict(
    inputs: list[Path] = typer.Argument(..., help="Audio files or folders (searched recursively)."),
    model: Path = typer.Option(..., "--model", help="Run folder (best.pt) or checkpoint."),
    out_dir: Path = typer.Option(None, "-o", "--out-dir", help="Output folder (default: next to each input)."),
    predictor: str = typer.Option(None, help="Predictor (default: the model's, usually calibrated)."),
    hop: float = typer.Option(None, min=0.01, help="Seconds between windows (default: the training hop)."),
    formats: str = typer.Option("csv,json,png", "--format", help="Comma-separated: csv, json, png."),
    top_k: int = typer.Option(0, min=0, help="List at most K instruments per file on stdout (0 = all found)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    chunk: float = typer.Option(30.0, min=1.0, help="Seconds of audio decoded at a time."),
):
    """Which instruments play, and when: a summary per file, and CSV/JSON/PNG timelines."""
    wanted = [f.strip() for f in formats.split(",") if f.strip()]
    bad = [f for f in wanted if f not in FORMATS]
    if bad or (predictor and predictor not in NAMES):
        msg = f"--format takes {', '.join(FORMATS)}" if bad else f"--predictor must be one of {', '.join(NAMES)}"
        typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    try:
        run = load_run(model, device)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        typer.secho(f"error: model: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    from .predict import predict_file

    files, failed = audio_files(inputs), 0
    if not files:
        typer.secho("error: no audio files found in the given inputs", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    for path in files:
        try:
            pred = predict_file(path, run, predictor, hop, chunk)
        except (AudioError, sf.LibsndfileError, RuntimeError, ValueError) as exc:
            failed += 1
            typer.secho(f"FAILED {path}: {exc}", fg=typer.colors.RED, err=True)
            continue
        folder = out_dir or path.parent
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / f"{path.stem}.instruments"
        for fmt in wanted:
            WRITERS[fmt](pred, Path(f"{stem}.{fmt}"))
        found = pred.summary()[: top_k or None]
        typer.echo(f"{path} ({pred.duration_s:.1f} s, {len(pred.starts)} windows, {pred.predictor}):")
        for row in found:
            typer.echo(f"  {row['name']:<12} {100 * row['share_of_time']:5.1f}% of time  "
                       f"mean p {row['mean_probability']:.2f}")
        if not found:
            typer.echo("  no instrument found")
        typer.echo(f"  -> {stem}.{{{','.join(wanted)}}}")
    if failed:
        typer.secho(f"{failed} of {len(files)} file(s) failed", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


def main() -> None:
    app(prog_name="musicid-predict")
