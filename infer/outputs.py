"""A file's outputs: `predict_and_save` predicts one audio file and writes the formats asked for beside a
stem (`<stem>.csv`, `.json`, `.png`, `.html`), so that the CLI, like any script, is a loop over files."""

from __future__ import annotations

from pathlib import Path

from musicid.audio import CHUNK_S
from musicid.errors import InputError

from .loaded import LoadedRun
from .page import write_html
from .predict import Prediction, predict_file
from .timeline import WRITERS

FORMATS = (*WRITERS, "html")


def check_formats(formats: list[str]) -> list[str]:
    if not formats or any(f not in FORMATS for f in formats):
        raise InputError(f"--format takes a comma-separated list of {', '.join(FORMATS)}, not {','.join(formats)!r}")
    return formats


def predict_and_save(path: Path, stem: Path, formats: list[str], model: LoadedRun | Path | str | None = None,
                     predictor: str | None = None, hop_s: float | None = None, chunk_s: float = CHUNK_S,
                     embed_audio: bool = False) -> Prediction:
    """Predict `path` (default model: the shipped one) and write `<stem>.<format>` for each format."""
    pred = predict_file(path, model, predictor, hop_s, chunk_s)
    for fmt in check_formats(formats):
        out = Path(f"{stem}.{fmt}")
        write_html(pred, out, embed_audio=embed_audio) if fmt == "html" else WRITERS[fmt](pred, out)
    return pred
