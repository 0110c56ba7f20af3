"""MusicNet's layout on disk (Kaggle/Zenodo or flat): finding recordings, reading the metadata CSV,
and writing a dataset in it (the folder a tool may claim, one recording's files)."""

from __future__ import annotations

import csv
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from musicid.audio import AUDIO_SUFFIXES
from musicid.errors import InputError
from musicid.files import holding, output_folder

from .labels import LABEL_COLUMNS

FOLDERS = ("train", "test")
INCOMPLETE = ".musicid-incomplete"  # in a dataset folder while synth or render writes it
PID_FILE = ".musicid-writer"  # the pid of the synth or render writing a dataset folder
METADATA = "musicnet_metadata.csv"


@dataclass(frozen=True)
class Recording:
    """One recording: its id (file stem), the MusicNet folder it came from, and its two files."""

    id: str
    folder: str
    audio: Path
    labels: Path


def data_dir(root: Path) -> Path:
    """The folder holding `{train,test}_{data,labels}`: `<root>/musicnet/musicnet` or `<root>`
    itself. A dataset that synth or render did not finish is refused: it would be read as if it were
    whole."""
    if not root.exists():
        raise InputError(f"{root}: dataset root does not exist")
    if not root.is_dir():
        raise InputError(f"{root}: dataset root is not a directory")
    if (root / INCOMPLETE).exists():
        raise InputError(
            f"{root}: an unfinished dataset ({(root / INCOMPLETE).read_text().strip()} was "
            "interrupted); rerun that command with --overwrite"
        )
    for cand in (root / "musicnet" / "musicnet", root / "musicnet", root):
        if any((cand / f"{f}_{k}").is_dir() for f in FOLDERS for k in ("data", "labels")):
            return cand
    raise InputError(
        f"{root}: no MusicNet folders found (expected musicnet/musicnet/train_data, train_labels, "
        "... "
        "or train_data/train_labels directly under the root)"
    )


def find_recordings(root: Path) -> tuple[list[Recording], Counter, list[str]]:
    """Pair audio and label files by stem. Unpaired files are skipped: counted, and listed by
    path."""
    base = data_dir(root)
    found: list[Recording] = []
    skipped: Counter = Counter()
    details: list[str] = []
    for folder in FOLDERS:
        audio: dict[str, Path] = {}
        for p in sorted((base / f"{folder}_data").glob("*")):
            if not p.is_file() or p.suffix.lower() not in AUDIO_SUFFIXES:
                skipped["files_not_audio"] += 1
                details.append(f"{p}: not an audio file (by its extension)")
            elif p.stem in audio:
                skipped["recordings_two_audio_files"] += 1
                details.append(
                    f"{p}: a second audio file for recording {p.stem} ({audio[p.stem].name} is "
                    "used)"
                )
            else:
                audio[p.stem] = p
        labels = {p.stem: p for p in sorted((base / f"{folder}_labels").glob("*.csv"))}
        for stem in sorted(audio.keys() - labels.keys()):
            skipped["recordings_audio_without_labels"] += 1
            details.append(f"{audio[stem]}: no label CSV")
        for stem in sorted(labels.keys() - audio.keys()):
            skipped["recordings_labels_without_audio"] += 1
            details.append(f"{labels[stem]}: no audio file")
        found += [
            Recording(s, folder, audio[s], labels[s]) for s in sorted(audio.keys() & labels.keys())
        ]
    ids = Counter(r.id for r in found)
    dup = sorted(i for i, n in ids.items() if n > 1)
    if dup:
        raise InputError(
            f"{base}: recording id(s) in both train and test folders: {', '.join(dup)}"
        )
    if not found:
        raise InputError(f"{root}: no recordings with both audio and labels found under {base}")
    return found, skipped, details


def claim_dataset_folder(
    out: Path, overwrite: bool, source: str, columns: tuple[str, ...] = ()
) -> Path:
    """OUT for a dataset a tool writes: refused when it holds one, unless `overwrite` and that tool
    wrote it: its metadata shows the tool (`source`, and its own `columns`) for every recording, or
    the tool's own unfinished-marker is there (an interrupted run). A real MusicNet is never
    deleted. The marker is put in place until `finish_dataset`."""
    out = output_folder(out)
    meta, marker = out / METADATA, out / INCOMPLETE
    if (out / "musicnet").exists() or meta.exists() or marker.exists():
        if not overwrite:
            raise InputError(
                f"{out}: already holds a dataset (musicnet/); use --overwrite to replace it"
            )
        ours = marker.is_file() and marker.read_text().strip() == source
        if not ours:
            df = pd.read_csv(meta, dtype=str) if meta.is_file() else pd.DataFrame()
            ours = (
                {"source", *columns} <= set(df.columns)
                and set(df["source"].fillna("")) <= {source}
                and not (not columns and df.empty)
            )
        if not ours:
            raise InputError(
                f"{out}: holds a dataset that {source} did not write"
                + (f" (see {METADATA})" if meta.exists() else "")
                + "; choose another OUT"
            )
        shutil.rmtree(out / "musicnet", ignore_errors=True)
        meta.unlink(missing_ok=True)
    marker.write_text(source + "\n")
    return out


@contextmanager
def dataset_writer(
    out: Path, overwrite: bool, source: str, columns: tuple[str, ...] = ()
) -> Iterator[Path]:
    """OUT claimed for a dataset (see `claim_dataset_folder`) and held for this writer alone while
    the block runs: a second synth or render into it is refused, told who holds it."""
    out = output_folder(out)
    with holding(out, source, out / PID_FILE):
        (out / PID_FILE).write_text(f"{os.getpid()}\n")
        try:
            yield claim_dataset_folder(out, overwrite, source, columns)
        finally:
            (out / PID_FILE).unlink(missing_ok=True)


def finish_dataset(out: Path, rows: list[dict], columns: list[str]) -> None:
    """The dataset in `out` is whole: its metadata (a row per recording) is written, its marker
    goes."""
    pd.DataFrame(rows, columns=columns).to_csv(out / METADATA, index=False)
    (out / INCOMPLETE).unlink()


def write_musicnet_recording(
    base: Path,
    folder: str,
    rid: str,
    audio: np.ndarray | Iterable[np.ndarray],
    rate: int,
    rows: list,
) -> None:
    """One recording as MusicNet stores it: `{folder}_data/<rid>.wav` (16-bit PCM) and
    `{folder}_labels/<rid>.csv` (LABEL_COLUMNS rows); `base` is the dataset's musicnet/musicnet
    folder, its folders already made. `audio`: mono samples, or blocks of them written as they
    come."""
    with sf.SoundFile(base / f"{folder}_data" / f"{rid}.wav", "w", rate, 1, "PCM_16") as wav:
        for block in [audio] if isinstance(audio, np.ndarray) else audio:
            wav.write(block)
    with open(base / f"{folder}_labels" / f"{rid}.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(LABEL_COLUMNS)
        writer.writerows(rows)


def read_metadata(root: Path) -> dict[str, str]:
    """Map recording id -> ensemble from `musicnet_metadata.csv` (empty when the file is absent)."""
    for cand in (root / METADATA, data_dir(root) / METADATA):
        if cand.is_file():
            try:
                df = pd.read_csv(cand, dtype=str)
            except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                raise InputError(f"{cand}: cannot parse metadata CSV ({exc})") from exc
            for col in ("id", "ensemble"):
                if col not in df.columns:
                    raise InputError(f"{cand}: metadata CSV is missing column {col}")
            return dict(
                zip(df["id"].str.strip(), df["ensemble"].fillna("").str.strip(), strict=True)
            )
    return {}
