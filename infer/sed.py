"""Scoring events on real mixtures, as sound-event detection does (`musicid-eval events FOLDER`).

A folder holds `audio/` and `reference.tsv`, the events of the 11 classes in the DCASE / sed_eval
event-list convention (tab-separated, header `filename onset offset event_label`, seconds; a row
with the file name alone lists a file without events), and optionally `others.tsv`, the same for
instruments outside the 11 (their own names as labels): not events to detect, the time where naming
one of the 11 is wrong.

Reported, per class and micro/macro, from the `sed_eval` package: segment-based F1 and error rate
over 1 s segments, and event-based F1 (onset collar 0.5 s, offset collar max(0.5 s, 20 % of the
reference event)). Beside them: a threshold-free figure, segment-based AP (per class, each 1 s
segment scored by the highest probability of the windows over it, against whether the class plays in
it; mAP over the classes present), the instruments named per file that never play in it, and the
share of the time where only outsiders play (others.tsv, and no event of the 11) in which one of the
11 is named.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicid.audio import AUDIO_SUFFIXES
from musicid.errors import InputError
from musicid.events import SEGMENT_S
from musicid.metrics import per_class_ap
from musicid.vocab import NAMES

from .loaded import LoadedRun
from .predict import Prediction, predict_file

COLUMNS = ["filename", "onset", "offset", "event_label"]
Event = tuple[float, float, str]


@dataclass
class Folder:
    """A folder of mixtures: each audio file with its reference events and its outsiders'
    stretches."""

    audio: dict[str, Path]  # file name -> path
    reference: dict[str, list[Event]]
    others: dict[str, list[Event]]


def read_events(path: Path, labels: tuple[str, ...] | None) -> dict[str, list[Event]]:
    """An event list, checked row by row: the header, numbers, onset < offset, labels among `labels`
    (None: any name). A row with the file name alone lists a file without events."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable event list ({exc})") from exc
    if not rows or rows[0] != COLUMNS:
        found = rows[0] if rows else "nothing"
        raise InputError(
            f"{path}: line 1: expected the tab-separated header {' '.join(COLUMNS)}, found {found}"
        )
    events: dict[str, list[Event]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}: line {line}"
        if len(row) == 1 or (len(row) == 4 and not any(c.strip() for c in row[1:])):
            events.setdefault(row[0], [])
            continue
        if len(row) != 4:
            raise InputError(f"{where}: expected 4 tab-separated columns, found {len(row)}")
        name, onset, offset, label = row
        try:
            t0, t1 = float(onset), float(offset)
        except ValueError:
            raise InputError(
                f"{where}: onset and offset must be numbers (seconds), found {onset!r}, {offset!r}"
            ) from None
        if not (math.isfinite(t0) and math.isfinite(t1)) or t0 < 0 or t0 >= t1:
            raise InputError(f"{where}: needs 0 <= onset < offset, found {onset} and {offset}")
        if labels is not None and label not in labels:
            raise InputError(
                f"{where}: {label!r} is not one of the {len(labels)} instruments "
                f"({', '.join(labels)})"
            )
        events.setdefault(name, []).append((t0, t1, label))
    return events


def read_folder(folder: Path) -> Folder:
    """The mixtures of `folder`, every file and row checked before anything is predicted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder (expected audio/ and reference.tsv)")
    table, audio_dir = folder / "reference.tsv", folder / "audio"
    if not table.is_file():
        raise InputError(
            f"{folder}: no reference.tsv (the events of the 11 instruments, DCASE event list)"
        )
    if not audio_dir.is_dir():
        raise InputError(f"{folder}: no audio/ folder")
    audio = {
        p.name: p
        for p in sorted(audio_dir.iterdir())
        if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
    }
    if not audio:
        raise InputError(f"{audio_dir}: holds no audio files")
    reference = read_events(table, NAMES)
    others = read_events(folder / "others.tsv", None) if (folder / "others.tsv").is_file() else {}
    for where, listed in ((table, reference), (folder / "others.tsv", others)):
        missing = sorted(set(listed) - set(audio))
        if missing:
            raise InputError(f"{where}: lists {missing[0]}, which is not in {audio_dir}")
    unlisted = sorted(set(audio) - set(reference))
    if unlisted:
        raise InputError(
            f"{audio_dir / unlisted[0]}: not in {table.name} (a file without events is a row with "
            "its "
            "name alone)"
        )
    return Folder(audio, reference, others)


def _past_end(events: dict[str, list[Event]], durations: dict[str, float], where: str) -> None:
    for name, evs in events.items():
        for t0, t1, label in evs:
            # a tenth of a segment: rounding of the list's times
            if t1 > durations[name] + SEGMENT_S / 10:
                raise InputError(
                    f"{where}: {name}: {label} {t0:g}-{t1:g} s ends after the file "
                    f"({durations[name]:.2f} s)"
                )


def _containers(events: dict[str, list[Event]]):
    import dcase_util

    return {
        name: dcase_util.containers.MetaDataContainer(
            [
                {"filename": name, "onset": t0, "offset": t1, "event_label": label}
                for t0, t1, label in evs
            ]
        )
        for name, evs in events.items()
    }


def _time_on(spans: list[tuple[float, float]], grid: np.ndarray) -> np.ndarray:
    """Which points of a time grid fall in any of `spans`."""
    on = np.zeros(len(grid), dtype=bool)
    for t0, t1 in spans:
        on |= (grid >= t0) & (grid < t1)
    return on


def score(
    reference: dict[str, list[Event]],
    estimated: dict[str, list[Event]],
    durations: dict[str, float],
    others: dict[str, list[Event]] | None = None,
    segment_probs: dict[str, np.ndarray] | None = None,
) -> dict:
    """The report's figures for event lists of the 11 classes (file -> events), each file
    `durations` long. `segment_probs`: per file, [segments, 11] probabilities of each 1 s segment
    (segment-based AP)."""
    with warnings.catch_warnings():
        # dcase_util's pkg_resources, sed_eval's means of classes never named
        warnings.simplefilter("ignore")
        return _score(reference, estimated, durations, others or {}, segment_probs)


def _score(reference, estimated, durations, others, segment_probs) -> dict:
    import sed_eval

    seg = sed_eval.sound_event.SegmentBasedMetrics(list(NAMES), time_resolution=SEGMENT_S)
    ev = sed_eval.sound_event.EventBasedMetrics(list(NAMES), t_collar=0.5, percentage_of_length=0.2)
    refs, ests = _containers(reference), _containers({n: estimated.get(n, []) for n in reference})
    for name in sorted(reference):
        seg.evaluate(refs[name], ests[name], evaluated_length_seconds=durations[name])
        ev.evaluate(refs[name], ests[name])
    s_all, s_cls = seg.results_overall_metrics(), seg.results_class_wise_metrics()
    e_all, e_cls = ev.results_overall_metrics(), ev.results_class_wise_metrics()
    s_avg, e_avg = seg.results_class_wise_average_metrics(), ev.results_class_wise_average_metrics()

    def num(x) -> float | None:
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

    per_class = {
        n: {
            "segment_f1": num(s_cls[n]["f_measure"]["f_measure"]),
            "segment_error_rate": num(s_cls[n]["error_rate"]["error_rate"]),
            "event_f1": num(e_cls[n]["f_measure"]["f_measure"]),
            "reference_events": sum(label == n for evs in reference.values() for *_, label in evs),
            "estimated_events": sum(label == n for evs in estimated.values() for *_, label in evs),
        }
        for n in NAMES
    }
    out = {
        "files": len(reference),
        "seconds": round(sum(durations[n] for n in reference), 2),
        "segment": {
            "micro_f1": num(s_all["f_measure"]["f_measure"]),
            "macro_f1": num(s_avg["f_measure"]["f_measure"]),
            "error_rate": num(s_all["error_rate"]["error_rate"]),
        },
        "event": {
            "micro_f1": num(e_all["f_measure"]["f_measure"]),
            "macro_f1": num(e_avg["f_measure"]["f_measure"]),
        },
        "reference_events": sum(len(v) for v in reference.values()),
        "estimated_events": sum(len(estimated.get(n, [])) for n in reference),
    }
    never = {
        n: sorted(
            {label for *_, label in estimated.get(n, [])} - {label for *_, label in reference[n]}
        )
        for n in reference
    }
    out["named_never_playing"] = {
        "per_file": sum(map(len, never.values())) / len(reference),
        "files": {n: v for n, v in never.items() if v},
    }
    out["others_only"] = _others_only(reference, estimated, durations, others)
    if segment_probs is not None:
        probs, labels = [], []
        for name in sorted(reference):
            grid = segment_probs[name]
            probs.append(segment_probs[name])
            labels.append(
                np.stack([_segment_touched(reference[name], c, len(grid)) for c in NAMES], axis=1)
            )
        ap = per_class_ap(np.concatenate(probs), np.concatenate(labels).astype(np.uint8))
        for n, value in zip(NAMES, ap, strict=True):
            per_class[n]["segment_ap"] = num(value)
        out["segment"]["mAP"] = num(np.nanmean(ap)) if np.isfinite(ap).any() else None
    out["per_class"] = per_class
    return out


def _segment_touched(events: list[Event], label: str, n: int) -> np.ndarray:
    """The 1 s segments any event of `label` overlaps (sed_eval's segment activity)."""
    on = np.zeros(n, dtype=bool)
    for t0, t1, lab in events:
        if lab == label:
            on[
                int(t0 // SEGMENT_S) : max(int(math.ceil(t1 / SEGMENT_S)), int(t0 // SEGMENT_S) + 1)
            ] = True
    return on


OTHERS_GRID_S = 0.01  # the time grid on which the outsiders-only share is measured


def _others_only(reference, estimated, durations, others) -> dict:
    """The time where only instruments outside the 11 play (in others.tsv, no reference event), and
    the share of it in which one of the 11 is named."""
    alone = named = 0.0
    for name in reference:
        grid = np.arange(0, durations[name], OTHERS_GRID_S) + OTHERS_GRID_S / 2
        only = _time_on([(a, b) for a, b, _ in others.get(name, [])], grid)
        only &= ~_time_on([(a, b) for a, b, _ in reference[name]], grid)
        said = _time_on([(a, b) for a, b, _ in estimated.get(name, [])], grid)
        alone += only.sum() * OTHERS_GRID_S
        named += (only & said).sum() * OTHERS_GRID_S
    return {
        "seconds": round(alone, 2),
        "named_seconds": round(named, 2),
        "share_named": round(named / alone, 4) if alone else None,
    }


def segment_probabilities(pred: Prediction) -> np.ndarray:
    """[segments, 11]: per 1 s segment, the highest probability of the windows whose region overlaps
    it."""
    edges = pred.regions()
    n = int(math.ceil(pred.duration_s / SEGMENT_S))
    out = np.zeros((n, len(pred.names)))
    for i in range(len(pred.starts)):
        first = int(edges[i] // SEGMENT_S)
        last = max(int(math.ceil(edges[i + 1] / SEGMENT_S)), first + 1)
        out[first:last] = np.maximum(out[first:last], pred.probs[i])
    return out


def evaluate_folder(run: LoadedRun, folder: Path, predictor: str | None = None) -> dict:
    """Predict every mixture of `folder` with `run` and score its events (see `score`)."""
    mixtures = read_folder(folder)
    preds = {name: predict_file(path, run, predictor) for name, path in mixtures.audio.items()}
    durations = {name: p.duration_s for name, p in preds.items()}
    _past_end(mixtures.reference, durations, str(Path(folder) / "reference.tsv"))
    _past_end(mixtures.others, durations, str(Path(folder) / "others.tsv"))
    estimated = {name: [(s, e, label) for s, e, label in p.events()] for name, p in preds.items()}
    report = score(
        mixtures.reference,
        estimated,
        durations,
        mixtures.others,
        {name: segment_probabilities(p) for name, p in preds.items()},
    )
    report["predictor"] = next(iter(preds.values())).predictor
    report["estimated"] = {
        name: [[round(s, 3), round(e, 3), label] for s, e, label in evs]
        for name, evs in estimated.items()
    }
    return report
