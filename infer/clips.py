"""Scoring a model on labelled real clips: a folder with `labels.csv` (`file,instruments`: names of
the 11 separated by `;` or `+`, or `other:<what>` for an instrument outside them) and the audio
beside it (in `audio/` or the folder itself). Each clip's probability of a class is its highest
window probability (the instrument is somewhere in the clip). Reported: top-1 and top-3 over the
single-instrument clips, clip mAP over the classes present, per class, and for the clips of other
instruments how sure the model is (its highest probability) against the calibrated thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from musicid.errors import InputError
from musicid.metrics import per_class_ap
from musicid.run import CALIBRATED
from musicid.validation import THRESHOLD
from musicid.vocab import NAMES

from .loaded import LoadedRun
from .predict import predict_file
from .report import Table, fmt

LOWER = {n.lower(): i for i, n in enumerate(NAMES)}


@dataclass(frozen=True)
class Clip:
    file: Path
    classes: tuple[int, ...]  # indices into NAMES; empty for an instrument outside the 11
    other: str  # what it is when outside the 11


def read_clips(folder: Path) -> list[Clip]:
    """The clips of a folder in realdev's shape, each label checked; an unknown name is an error
    naming it."""
    folder = Path(folder)
    table = folder / "labels.csv"
    if not table.is_file():
        raise InputError(f"{folder}: no labels.csv (columns file,instruments)")
    try:
        df = pd.read_csv(table, dtype=str).fillna("")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{table}: not a readable CSV ({exc})") from exc
    if not {"file", "instruments"} <= set(df.columns):
        raise InputError(f"{table}: needs columns file and instruments")
    audio = folder / "audio" if (folder / "audio").is_dir() else folder
    clips = []
    for row, (name, label) in enumerate(zip(df["file"], df["instruments"], strict=True), start=2):
        path = audio / name
        if not name or not path.is_file():
            raise InputError(f"{table}: line {row}: no audio file {path}")
        parts = [p.strip() for p in label.replace("+", ";").split(";") if p.strip()]
        if not parts:
            raise InputError(
                f"{table}: line {row}: no instruments given (use other:<what> for none of the 11)"
            )
        others = [p for p in parts if p.lower().startswith("other")]
        unknown = [p for p in parts if p not in others and p.lower() not in LOWER]
        if unknown:
            raise InputError(
                f"{table}: line {row}: unknown instrument {unknown[0]!r}; use {', '.join(NAMES)} "
                "or other:<what>"
            )
        clips.append(
            Clip(
                path,
                tuple(sorted(LOWER[p.lower()] for p in parts if p not in others)),
                ";".join(others),
            )
        )
    if not clips:
        raise InputError(f"{table}: no clips (a header and no rows)")
    return clips


def score_clips(run: LoadedRun, folder: Path) -> dict:
    """The figures above for `run` on the clips of `folder`, with one row per clip."""
    clips = read_clips(folder)
    probs = np.stack([predict_file(c.file, run, "top1").probs.max(axis=0) for c in clips])
    labels = np.zeros_like(probs, dtype=np.uint8)
    for i, c in enumerate(clips):
        labels[i, list(c.classes)] = 1
    order = np.argsort(-probs, axis=1)
    solo = [i for i, c in enumerate(clips) if len(c.classes) == 1]
    top1 = [order[i, 0] == clips[i].classes[0] for i in solo]
    top3 = [clips[i].classes[0] in order[i, :3] for i in solo]
    present = labels.any(axis=0)
    ap = per_class_ap(probs[:, present], labels[:, present])
    others = [i for i, c in enumerate(clips) if not c.classes]
    thresholds = (
        np.asarray(run.calibration.thresholds)
        if run.calibration
        else np.full(len(NAMES), THRESHOLD)
    )
    per_class = {}
    for c, name in enumerate(NAMES):
        mine = [i for i in solo if clips[i].classes[0] == c]
        per_class[name] = {
            "clips": len(mine),
            "top1": float(np.mean([order[i, 0] == c for i in mine])) if mine else None,
            "ap": float(ap[list(np.flatnonzero(present)).index(c)]) if present[c] else None,
        }
    return {
        "clips": len(clips),
        "solo_clips": len(solo),
        "top1": float(np.mean(top1)) if solo else None,
        "top3": float(np.mean(top3)) if solo else None,
        "clip_mAP": float(np.nanmean(ap)) if present.any() else None,
        "per_class": per_class,
        "others": {
            "clips": len(others),
            "mean_top_probability": float(probs[others].max(axis=1).mean()) if others else None,
            "over_threshold": int((probs[others] >= thresholds).any(axis=1).sum()) if others else 0,
            "thresholds": CALIBRATED if run.calibration else f"{THRESHOLD:g}",
        },
        "rows": [
            {
                "file": c.file.name,
                "truth": "+".join(NAMES[k] for k in c.classes) or c.other,
                "top3": [NAMES[k] for k in order[i, :3]],
                "top3_p": [round(float(probs[i, k]), 3) for k in order[i, :3]],
            }
            for i, c in enumerate(clips)
        ],
    }


def clips_table(result: dict) -> str:
    """The figures, a table per class and a table of clips (Markdown)."""
    o = result["others"]
    per_class = Table(
        ["class", "clips", "top-1", "AP"],
        [
            [name, str(c["clips"]), fmt(c["top1"]), fmt(c["ap"])]
            for name, c in result["per_class"].items()
        ],
    )
    per_clip = Table(
        ["file", "truth", "top 3 (p)"],
        [
            [
                r["file"],
                r["truth"],
                ", ".join(f"{n} {p:.2f}" for n, p in zip(r["top3"], r["top3_p"], strict=True)),
            ]
            for r in result["rows"]
        ],
    )
    return "\n".join(
        [
            f"clips {result['clips']} ({result['solo_clips']} single-instrument): top-1 "
            f"{fmt(result['top1'])}, top-3 {fmt(result['top3'])}, clip mAP "
            f"{fmt(result['clip_mAP'])}",
            f"instruments outside the 11: {o['clips']} clips, mean highest probability "
            f"{fmt(o['mean_top_probability'])}, {o['over_threshold']} over a {o['thresholds']} "
            "threshold",
            "",
            per_class.markdown(),
            "",
            per_clip.markdown(),
        ]
    )
