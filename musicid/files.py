"""Writing files so that readers never see half of one and nothing a user owns is replaced unasked."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name beside `path` to write to; renamed onto `path` when the block succeeds, removed when
    it fails, so neither a crash nor a full disk leaves a half-written file under the final name."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))


def read_json(path: Path, what: str) -> dict:
    """A JSON object from disk, or an InputError naming the file and what it should have been."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such {what}" if not path.exists() else f"{path}: is not a file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: {what} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a {what} (a JSON object was expected)")
    return data


def output_folder(path: Path) -> Path:
    """Create an output folder; an existing file of that name is an error, not a traceback."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a folder; choose another output folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


def refuse_existing(paths: list[Path], overwrite: bool) -> None:
    """Outputs are never replaced silently: existing ones need `overwrite`."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise InputError(f"{existing[0]}: already exists{more}; use --overwrite to replace")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
