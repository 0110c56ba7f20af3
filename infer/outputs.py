"""A file's outputs: `predict_and_save` predicts one audio file and writes the formats asked for
beside a base name (`<base>.instruments.csv`, `.instruments.json`, `.instruments.png`,
`.instruments.html`, `<base>.events.tsv`), so that the CLI, like any script, is a loop over
files."""

from __future__ import annotations

from pathlib import Path

from musicid.audio import CHUNK_S
from musicid.errors import InputError
from musicid.files import atomic_path

from .loaded import LoadedRun
from .predict import Prediction, predict_file
from .timeline import SUFFIXES, WRITERS

FORMATS = tuple(SUFFIXES)


def check_formats(formats: list[str]) -> list[str]:
    """The formats asked for, each one known; an unknown one is named with the valid ones."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InputError(
            f"--format: {'unknown ' + repr(unknown[0]) if unknown else 'nothing given'}; choose "
            f"from {', '.join(FORMATS)} (comma-separated)"
        )
    return formats


def output_file(base: Path, fmt: str) -> Path:
    """Where format `fmt` of an input goes, given its base name."""
    return Path(f"{base}{SUFFIXES[fmt]}")


def predict_and_save(
    path: Path,
    base: Path,
    formats: list[str],
    model: LoadedRun | Path | str | None = None,
    predictor: str | None = None,
    hop_s: float | None = None,
    chunk_s: float = CHUNK_S,
    embed_audio: bool = False,
    overwrite: bool = False,
) -> Prediction:
    """Predict `path` (default model: the shipped one) and write each format asked for beside
    `base`. An output that exists is replaced only with `overwrite`, also when another process wrote
    it meanwhile."""
    check_formats(formats)
    pred = predict_file(path, model, predictor, hop_s, chunk_s)
    for fmt in formats:
        with atomic_path(output_file(base, fmt), overwrite) as tmp:
            if fmt == "html":
                from .page import write_html

                write_html(pred, tmp, embed_audio=embed_audio)
            else:
                WRITERS[fmt](pred, tmp)
    return pred
