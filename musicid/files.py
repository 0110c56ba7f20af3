"""Writing files so that readers never see half of one and nothing a user owns is replaced
unasked."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError


@contextmanager
def atomic_path(path: Path, overwrite: bool = True) -> Iterator[Path]:
    """A temporary name beside `path` to write to; moved onto `path` when the block succeeds
    (`publish`), removed when it fails, so neither a crash nor a full disk leaves a half-written
    file under the final name."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        publish(tmp, path, overwrite)
    finally:
        tmp.unlink(missing_ok=True)


def publish(tmp: Path, path: Path, overwrite: bool = True) -> None:
    """Move a finished file onto `path`. What is there is replaced only with `overwrite`; without,
    the file is created exclusively (a hard link, atomic), so that of two commands writing one
    output at once the second is refused, not silently replacing the first's."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise InputError(
            f"{path}: already exists (another command wrote it meanwhile); use --overwrite to "
            "replace it"
        ) from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise InputError(f"{path}: already exists; use --overwrite to replace it") from None
        os.replace(tmp, path)


def write_text_atomic(path: Path, text: str, overwrite: bool = True) -> None:
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))


def read_json(path: Path, what: str) -> dict:
    """A JSON object from disk, or an InputError naming the file and what it should have been."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: no such {what}" if not path.exists() else f"{path}: is not a file"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: {what} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a {what} (a JSON object was expected)")
    return data


@contextmanager
def holding(folder: Path, what: str, pid_file: Path) -> Iterator[None]:
    """Hold `folder` for one writer (an flock on the folder): a second `what` into it is refused,
    told the pid the first wrote into `pid_file` (which the holder writes once it holds the
    folder)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = pid_file.read_text().strip() if pid_file.is_file() else "unknown"
            raise InputError(
                f"{folder}: another {what} (pid {pid}) is writing here; wait for it to finish, or "
                "choose another folder"
            ) from None
        yield
    finally:
        os.close(fd)


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
