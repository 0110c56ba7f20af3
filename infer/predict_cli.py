"""`musicid-predict`: instruments over time for audio files or folders."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from musicid.audio import AUDIO_SUFFIXES, CHUNK_S
from musicid.cli import choices, command, run
from musicid.errors import AudioError, InputError
from musicid.files import output_folder, refuse_existing
from musicid.network import DEVICE, DEVICES
from musicid.run import resolve_model

from .loaded import load_run
from .outputs import FORMATS, check_formats, predict_and_save
from .page import write_index
from .predict import default_predictor
from .predictors import NAMES as PREDICTORS
from .predictors import check_predictor

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
Predictor = choices("Predictor", PREDICTORS)
log = logging.getLogger("musicid")


def audio_files(inputs: list[Path]) -> tuple[list[Path], int]:
    """Files as given; folders searched recursively for audio extensions. Returns the files and how many
    other files the folders held (reported, not silently dropped)."""
    out, other = [], 0
    for p in inputs:
        if p.is_dir():
            for f in sorted(f for f in p.rglob("*") if f.is_file()):
                if f.suffix.lower() in AUDIO_SUFFIXES:
                    out.append(f)
                else:
                    other += 1
        else:
            out.append(p)
    return list(dict.fromkeys(out)), other


def output_stems(files: list[Path], out_dir: Path | None) -> dict[Path, Path]:
    """`<folder>/<stem>.instruments` per input; inputs that would share one (song.wav and song.flac, or
    d1/song.wav and d2/song.wav with -o) keep their extension, then their parent folders, in the name."""
    def stem(f: Path, depth: int) -> Path:
        folders = list(f.resolve().parent.parts[1:])[len(f.resolve().parent.parts) - depth:] if depth > 1 else []
        name = "_".join([*folders, f.name]) if depth else f.stem
        return (out_dir or f.parent) / f"{name}.instruments"

    depth = {f: 0 for f in files}
    while True:
        stems = {f: stem(f, depth[f]) for f in files}
        clash = {f for f in files if list(stems.values()).count(stems[f]) > 1}
        if not clash:
            return stems
        for f in clash:
            if depth[f] > len(f.resolve().parts):
                raise InputError(f"{f}: its outputs would overwrite another input's; give separate -o folders")
            depth[f] += 1


@app.command()
@command
def predict_cmd(
    inputs: list[Path] = typer.Argument(..., help="Audio files or folders (searched recursively)."),
    model: Path = typer.Option(None, "--model", help="Run folder (best.pt) or checkpoint (default: the model "
                                                     "shipped in the package, musicid/model/model.pt)."),
    out_dir: Path = typer.Option(None, "-o", "--out-dir", help="Output folder (default: next to each input)."),
    predictor: Predictor = typer.Option(None, help="Predictor (default: the model's, usually calibrated)."),
    hop: float = typer.Option(None, min=0.01, help="Seconds between windows (default: the training hop)."),
    formats: str = typer.Option("csv,json,png", "--format", help=f"Comma-separated: {', '.join(FORMATS)} (html: a "
                                "page to listen along, with index.html for several inputs)."),
    embed_audio: bool = typer.Option(False, "--embed-audio", help="html: put the audio inside the page (Ogg/Opus, "
                                     "at most 20 min) so it can be mailed; default: a relative link to the input."),
    top_k: int = typer.Option(0, min=0, help="List at most K instruments per file on stdout (0 = all found)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace outputs that already exist."),
    device: str = typer.Option(DEVICE, help=" | ".join(DEVICES) + "."),
    chunk: float = typer.Option(CHUNK_S, min=1.0, help="Seconds of audio decoded at a time."),
):
    """Which instruments play, and when: a summary per file, and CSV/JSON/PNG timelines and HTML pages."""
    wanted = check_formats([f.strip() for f in formats.split(",") if f.strip()])
    r = load_run(resolve_model(model), device)
    chosen = predictor.value if predictor else default_predictor(r)
    check_predictor(chosen, r.calibration)
    files, other = audio_files(inputs)
    if other:
        log.info("skipped %d file(s) without an audio extension in the given folders", other)
    if not files:
        raise InputError("no audio files found in the given inputs")
    if out_dir:
        output_folder(out_dir)
    stems = output_stems(files, out_dir)
    index = (out_dir or Path(os.path.commonpath([s.parent.resolve() for s in stems.values()]))) / "index.html"
    with_index = "html" in wanted and len(files) > 1
    refuse_existing([Path(f"{s}.{fmt}") for s in stems.values() for fmt in wanted] + [index] * with_index, overwrite)
    failed, pages = 0, []
    for path in files:
        try:
            pred = predict_and_save(path, stems[path], wanted, r, chosen, hop, chunk, embed_audio)
        except AudioError as exc:
            failed += 1
            typer.secho(f"FAILED {exc}", fg=typer.colors.RED, err=True)
            continue
        pages.append((Path(f"{stems[path]}.html"), pred))
        found = pred.summary()[: top_k or None]
        typer.echo(f"{path} ({pred.duration_s:.1f} s, {len(pred.starts)} windows, {pred.predictor}):")
        for row in found:
            typer.echo(f"  {row['name']:<12} {100 * row['share_of_time']:5.1f}% of time  "
                       f"mean p {row['mean_probability']:.2f}")
        if not found:
            typer.echo("  no instrument found")
        typer.echo(f"  -> {stems[path]}.{{{','.join(wanted)}}}")
    if with_index and pages:
        write_index(pages, index)
        typer.echo(f"index of the pages: {index}")
    if failed:
        typer.secho(f"{failed} of {len(files)} file(s) failed", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


def main() -> None:
    run(app, "musicid-predict")
