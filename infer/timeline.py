"""Writing a `Prediction`: per-window CSV, summary + segments JSON, and an instrument x time picture."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from musicid.files import atomic_path, write_json_atomic  # noqa: E402

from .predict import Prediction  # noqa: E402
from .report import save_figure  # noqa: E402


def write_csv(pred: Prediction, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["start_s", "end_s", *pred.names, "predicted"])
        for i in range(len(pred.starts)):
            on = "+".join(n for n, a in zip(pred.names, pred.active[i], strict=True) if a)
            w.writerow([f"{pred.starts[i]:.3f}", f"{pred.ends[i]:.3f}", *(f"{p:.4f}" for p in pred.probs[i]), on])


def write_json(pred: Prediction, path: Path) -> None:
    doc = {"file": str(pred.path), "duration_s": round(pred.duration_s, 3), "model": pred.model,
           "predictor": pred.predictor, "windows": len(pred.starts),
           "window_s": round(float(pred.ends[0] - pred.starts[0]), 4) if len(pred.starts) else None,
           "instruments": pred.summary()}
    write_json_atomic(path, doc)


def clock(seconds: float, _pos=None) -> str:
    """m:ss, rounded to the second (also a matplotlib tick formatter)."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


def write_png(pred: Prediction, path: Path) -> None:
    """Probabilities as a heat map (instrument x time, each window over its region), predicted activity
    outlined in white."""
    n = len(pred.names)
    fig, ax = plt.subplots(figsize=(min(24, 6 + pred.duration_s / 20), 0.45 * n + 1.6))
    im = ax.pcolormesh(pred.regions(), np.arange(n + 1) - 0.5, pred.probs.T, cmap="magma", vmin=0, vmax=1)
    ax.invert_yaxis()
    for c, (_, spans) in enumerate(pred.segments().items()):
        for s, e in spans:
            ax.add_patch(plt.Rectangle((s, c - 0.42), e - s, 0.84, fill=False, edgecolor="white", linewidth=1.2))
    ax.set_yticks(range(n), pred.names)
    ax.set_xlim(0, pred.duration_s)
    ax.xaxis.set_major_formatter(FuncFormatter(clock) if pred.duration_s >= 120 else FuncFormatter(
        lambda v, _p: f"{v:g} s"))
    ax.set_xlabel("time (min:s)" if pred.duration_s >= 120 else "time")
    ax.set_title(f"{pred.path.name}: instrument probabilities, predicted activity outlined ({pred.predictor})")
    fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01, label="probability")
    save_figure(fig, path)


WRITERS = {"csv": write_csv, "json": write_json, "png": write_png}
