"""Writing a `Prediction`: per-window CSV, summary + events JSON, the event list (TSV, as
sound-event detection tools read it) and an instrument x time picture."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from musicid.files import atomic_path, write_json_atomic
from musicid.vocab import NAMES

from .figures import pyplot, save_figure
from .predict import Prediction

KNOWN = (
    f"The model knows these {len(NAMES)} instruments only: {', '.join(NAMES)}. Anything else (a "
    "guitar, "
    "a voice, drums) is named as the nearest of them, or not at all."
)
EVENT_COLUMNS = ("filename", "onset", "offset", "event_label")  # DCASE / sed_eval event lists


def resolution(pred: Prediction) -> str:
    """The time resolution in words."""
    hop, window = round(pred.hop_s, 2), round(pred.window_s, 2)
    return f"one decision every {hop:g} s, each from {window:g} s of audio"


def write_csv(pred: Prediction, path: Path) -> None:
    """A row per window: where it starts and ends (windows overlap), the probabilities, what is
    named in the stretch it stands for (`region_start_s`..`region_end_s`: the windows' regions tile
    the timeline)."""
    edges = pred.regions()
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["start_s", "end_s", "region_start_s", "region_end_s", *pred.names, "named"])
        for i in range(len(pred.starts)):
            on = "+".join(n for n, a in zip(pred.names, pred.active[i], strict=True) if a)
            w.writerow(
                [
                    f"{pred.starts[i]:.3f}",
                    f"{pred.ends[i]:.3f}",
                    f"{edges[i]:.3f}",
                    f"{edges[i + 1]:.3f}",
                    *(f"{p:.4f}" for p in pred.probs[i]),
                    on,
                ]
            )


def write_events(pred: Prediction, path: Path) -> None:
    """The event list: `filename onset offset event_label`, tab-separated with a header, one row per
    stretch of time an instrument is named (the JSON's segments)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(EVENT_COLUMNS)
        w.writerows([pred.path.name, f"{s:.3f}", f"{e:.3f}", name] for s, e, name in pred.events())


def document(pred: Prediction) -> dict:
    """What the JSON holds (and the page shows)."""
    return {
        "file": pred.path.name,
        "duration_s": round(pred.duration_s, 3),
        "model": pred.model,
        "predictor": pred.predictor,
        "time_resolution": resolution(pred),
        "hop_s": round(pred.hop_s, 4),
        "window_s": round(pred.window_s, 4),
        "windows": len(pred.starts),
        "known_instruments": list(NAMES),
        "note": KNOWN,
        "instruments": pred.summary(),
        "runner_ups": pred.runner_ups(),
        "events": [
            {"onset": round(s, 3), "offset": round(e, 3), "instrument": n}
            for s, e, n in pred.events()
        ],
    }


def write_json(pred: Prediction, path: Path) -> None:
    write_json_atomic(path, {**document(pred), "path": str(pred.path)})


def clock(seconds: float, _pos=None) -> str:
    """m:ss, rounded to the second (also a matplotlib tick formatter)."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


def write_png(pred: Prediction, path: Path) -> None:
    """Probabilities as a heat map (instrument x time, each window over its region), the named
    stretches outlined in white, and a line on what the model knows."""
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter

    n = len(pred.names)
    fig, ax = plt.subplots(figsize=(min(24, 6 + pred.duration_s / 20), 0.45 * n + 2.0))
    im = ax.pcolormesh(
        pred.regions(), np.arange(n + 1) - 0.5, pred.probs.T, cmap="magma", vmin=0, vmax=1
    )
    ax.invert_yaxis()
    for c, (_, stretch) in enumerate(pred.segments().items()):
        for s, e in stretch:
            ax.add_patch(
                plt.Rectangle(
                    (s, c - 0.42), e - s, 0.84, fill=False, edgecolor="white", linewidth=1.2
                )
            )
    ax.set_yticks(range(n), pred.names)
    ax.set_xlim(0, pred.duration_s)
    ax.xaxis.set_major_formatter(
        FuncFormatter(clock) if pred.duration_s >= 120 else FuncFormatter(lambda v, _p: f"{v:g} s")
    )
    ax.set_xlabel(
        f"time (min:s); {resolution(pred)}"
        if pred.duration_s >= 120
        else f"time; {resolution(pred)}"
    )
    ax.set_title(
        f"{pred.path.name}: probability of each instrument, named stretches outlined "
        f"({pred.predictor})"
    )
    fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01, label="probability")
    fig.text(0.01, -0.02, KNOWN, fontsize=8, wrap=True, va="top")
    save_figure(fig, path)


WRITERS = {"csv": write_csv, "json": write_json, "png": write_png, "events": write_events}
SUFFIXES = {
    "csv": ".instruments.csv",
    "json": ".instruments.json",
    "png": ".instruments.png",
    "html": ".instruments.html",
    "events": ".events.tsv",
}
