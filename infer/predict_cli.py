"""`musicid-predict`: instruments over time for audio files or folders.

Arguments are checked before anything heavy is imported or a model loads: `--help` and mistakes
answer at once. The model is loaded once for all files."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from musicid.audio import AUDIO_SUFFIXES, CHUNK_S
from musicid.cli import choices, comma_separated, command, new_app, run
from musicid.errors import AudioError, InputError
from musicid.files import output_folder, refuse_existing, write_text_atomic
from musicid.run import DEVICE, DEVICES, resolve_model

from .loaded import RUNTIMES, load_run
from .outputs import FORMATS, check_formats, output_file, predict_and_save
from .predict import Prediction, default_predictor
from .predictors import TIMELINE, check_predictor, describe
from .timeline import KNOWN, resolution

app = new_app()
Predictor = choices("Predictor", TIMELINE)
Runtime = choices("Runtime", RUNTIMES)
DEFAULT_FORMATS = "csv,json,png,events"
log = logging.getLogger("musicid")


def audio_files(inputs: list[Path]) -> tuple[list[Path], int]:
    """Files as given; folders searched recursively for audio extensions. Returns the files and how
    many other files the folders held (reported, not silently dropped)."""
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


def output_bases(files: list[Path], out_dir: Path | None) -> dict[Path, Path]:
    """`<folder>/<stem>` per input, its outputs' base name; inputs that would share one (song.wav
    and song.flac, or d1/song.wav and d2/song.wav with -o) keep their extension, then their parent
    folders, in the name."""

    def stem(f: Path, depth: int) -> Path:
        folders = (
            list(f.resolve().parent.parts[1:])[len(f.resolve().parent.parts) - depth :]
            if depth > 1
            else []
        )
        name = "_".join([*folders, f.name]) if depth else f.stem
        return (out_dir or f.parent) / name

    depth = {f: 0 for f in files}
    while True:
        stems = {f: stem(f, depth[f]) for f in files}
        clash = {f for f in files if list(stems.values()).count(stems[f]) > 1}
        if not clash:
            return stems
        for f in clash:
            if depth[f] > len(f.resolve().parts):
                raise InputError(
                    f"{f}: its outputs would overwrite another input's; give separate -o folders"
                )
            depth[f] += 1


def check_inputs(inputs: list[Path]) -> None:
    """Every input exists, before any model loads; a stray `true` after a flag is named as such."""
    for p in inputs:
        if not p.exists():
            if str(p).lower() in ("true", "false", "yes", "no", "on", "off"):
                raise InputError(
                    f"{p}: not a file; options such as --overwrite are flags and take no value"
                )
            raise InputError(f"{p}: no such file or folder")


def summary_lines(pred: Prediction, top_k: int) -> list[str]:
    """What stdout says about one file: the instruments named, how sure the model is while naming
    them, the runner-ups when at most one is named."""
    found = pred.summary()[: top_k or None]
    lines = [
        f"  {r['name']:<12} named {100 * r['share_of_time']:5.1f}% of the time   probability while "
        "named: "
        f"mean {r['mean_probability_named']:.2f}, peak {r['peak_probability_named']:.2f}"
        for r in found
    ]
    if not found:
        lines.append("  no instrument named")
    below = pred.runner_ups()
    if below:
        lines.append(
            "  below the threshold: "
            + ", ".join(f"{r['name']} (peak {r['peak_probability']:.2f})" for r in below)
        )
    return lines


@app.command()
@command
def predict_cmd(
    inputs: list[Path] = typer.Argument(..., help="Audio files or folders (searched recursively)."),
    model: Path = typer.Option(
        None,
        "--model",
        help="A run folder, checkpoint (.pt) or ONNX export (default: the "
        "model shipped in the package).",
    ),
    out: Path = typer.Option(
        None, "-o", "--out", "--out-dir", help="Output folder (default: next to each input)."
    ),
    predictor: Predictor = typer.Option(
        None,
        help="How probabilities become named instruments (default: the "
        f"model's, events). {describe(TIMELINE)}.",
    ),
    hop: float = typer.Option(
        None, min=0.01, help="Seconds between windows (default: the model's, 0.5)."
    ),
    formats: str = typer.Option(
        DEFAULT_FORMATS,
        "--format",
        help=f"Comma-separated, of {', '.join(FORMATS)} "
        "(events: a tab-separated event list; html: a page to listen along, with index.html "
        "for several inputs).",
    ),
    embed_audio: bool = typer.Option(
        False,
        "--embed-audio",
        help="html: put the audio inside the page (Ogg/Opus, "
        "at most 20 min) so it can be mailed (default: a relative link to the input).",
    ),
    top_k: int = typer.Option(
        0, min=0, help="List at most K instruments per file on stdout (default 0: all)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace outputs that already exist."
    ),
    runtime: Runtime = typer.Option(
        RUNTIMES[0],
        help="auto: ONNX Runtime where the model has an ONNX export, "
        "else PyTorch; onnx or torch to insist.",
    ),
    device: str = typer.Option(DEVICE, help=f"PyTorch only: {' | '.join(DEVICES)}."),
    chunk: float = typer.Option(
        CHUNK_S, min=1.0, help=f"Seconds of audio decoded at a time (default {CHUNK_S:g})."
    ),
):
    """Which instruments play, and when: a summary per file on stdout, and per file a CSV, JSON and
    PNG timeline, an event list and a listening page, as --format asks."""
    wanted = check_formats(list(comma_separated(formats)))
    check_inputs(inputs)
    files, other = audio_files(inputs)
    if other:
        log.info("skipped %d file(s) without an audio extension in the given folders", other)
    if not files:
        raise InputError("no audio files found in the given inputs")
    if out:
        output_folder(out)
    bases = output_bases(files, out)
    index = (
        out or Path(os.path.commonpath([b.parent.resolve() for b in bases.values()]))
    ) / "index.html"
    with_index = "html" in wanted and len(files) > 1
    refuse_existing(
        [output_file(b, fmt) for b in bases.values() for fmt in wanted] + [index] * with_index,
        overwrite,
    )
    r = load_run(resolve_model(model), device, runtime.value)
    chosen = predictor.value if predictor else default_predictor(r)
    check_predictor(chosen, r.calibration, TIMELINE)
    failed, pages = 0, []
    for path in files:
        try:
            pred = predict_and_save(
                path, bases[path], wanted, r, chosen, hop, chunk, embed_audio, overwrite
            )
        except AudioError as exc:
            failed += 1
            typer.secho(f"FAILED {exc}", fg=typer.colors.RED, err=True)
            continue
        pages.append((output_file(bases[path], "html"), pred))
        typer.echo(f"{path} ({pred.duration_s:.1f} s; {resolution(pred)}):")
        for line in summary_lines(pred, top_k):
            typer.echo(line)
        typer.echo("  -> " + ", ".join(str(output_file(bases[path], fmt)) for fmt in wanted))
    if with_index and pages:
        from .page import index_page

        write_text_atomic(index, index_page(pages, index), overwrite)
        typer.echo(f"index of the pages: {index}")
    if pages:
        typer.echo(f"model: {r.name} ({r.runtime}), predictor {chosen}\n{KNOWN}")
    if failed:
        typer.secho(f"{failed} of {len(files)} file(s) failed", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


def main() -> None:
    run(app, "musicid-predict")
