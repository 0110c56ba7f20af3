"""Turning probabilities [N, 11] into instrument sets.

Per window (evaluation on shards scores these):
- `topN`: the N most probable instruments.
- `threshold`: probability >= t, with the most probable instrument always on (the prior work's
  rule).
- `prior`, `valmean`, `noise`: the same rule on bias-corrected scores p - b (on when p - b > 0, the
  best-corrected instrument always on); b is the train label frequency, the mean validation
  prediction, or the mean prediction on white-noise input.
- `calibrated`: per-class thresholds that maximise each class's F1 on validation.
- `hybrid`: the calibrated thresholds, but at least one and at most `max_instruments` instruments on
  (ranked by margin above threshold).
Over a recording's timeline (prediction):
- `events`: per class, the calibration's event rule (smoothing, hysteresis, minimum gap and event
  lengths, fitted on validation; musicid.events) over the windows in time order.
"""

from __future__ import annotations

import numpy as np

from musicid.errors import InputError
from musicid.events import decode
from musicid.run import BIASES as BIASED
from musicid.run import CALIBRATED, EVENTS, THRESHOLD, Calibration
from musicid.vocab import N_INSTRUMENTS

FITTED = (*BIASED, CALIBRATED, "hybrid")  # need a calibration fitted on validation data
NAMES = tuple(f"top{n}" for n in range(1, N_INSTRUMENTS + 1)) + ("threshold", *FITTED)  # per window
TIMELINE = (*NAMES, EVENTS)  # what a timeline (musicid-predict) may use
MAX_INSTRUMENTS = 3  # the `hybrid` predictor's ceiling
HELP = {
    "topN": "the N most probable instruments in each window",
    "threshold": "probability at least --threshold (0.5), the most probable always named",
    "prior, valmean, "
    "noise": "the prior work's: probability minus a bias (train frequency, mean val "
    "prediction, mean prediction on noise) above 0",
    CALIBRATED: "per-instrument thresholds fitted on validation, window by window",
    "hybrid": "calibrated, but at least 1 and at most 3 instruments per window",
    EVENTS: "calibrated thresholds smoothed over time (events fitted on validation)",
}


def describe(names: tuple[str, ...]) -> str:
    """One line per predictor for --help, for those of `names`."""
    shown = [k for k in HELP if k in names or k == "topN" or any(n in names for n in k.split(", "))]
    return "; ".join(f"{k}: {HELP[k]}" for k in shown)


def _with_argmax(on: np.ndarray, scores: np.ndarray) -> np.ndarray:
    on = on.copy()
    on[np.arange(len(scores)), scores.argmax(axis=1)] = True
    return on


def top_n(probs: np.ndarray, n: int) -> np.ndarray:
    on = np.zeros(probs.shape, dtype=bool)
    idx = np.argsort(-probs, axis=1, kind="stable")[:, :n]
    np.put_along_axis(on, idx, True, axis=1)
    return on


def check_predictor(name: str, cal: Calibration | None, allowed: tuple[str, ...] = NAMES) -> None:
    """The one place a predictor name and its need for a calibration are checked."""
    if name not in allowed:
        raise InputError(f"unknown predictor {name!r}; choose one of {', '.join(allowed)}")
    if name in (*FITTED, EVENTS) and cal is None:
        raise InputError(
            f"predictor {name!r} needs a calibration fitted on a val split, and this model has "
            "none "
            "(musicid-train writes one beside each checkpoint it saves)"
        )


def predict(
    name: str,
    probs: np.ndarray,
    cal: Calibration | None = None,
    threshold: float = THRESHOLD,
    max_instruments: int = MAX_INSTRUMENTS,
) -> np.ndarray:
    """Boolean [N, 11] instrument sets for the window predictor `name`."""
    check_predictor(name, cal)
    if name.startswith("top"):
        return top_n(probs, int(name[3:]))
    if name == "threshold":
        return _with_argmax(probs >= threshold, probs)
    if name in BIASED:
        scores = probs - np.asarray(cal.biases[name])
        return _with_argmax(scores > 0, scores)
    margin = probs - np.asarray(cal.thresholds)
    on = margin >= 0
    if name == CALIBRATED:
        return on
    on = _with_argmax(on, margin)  # hybrid: at least one ...
    too_many = on.sum(axis=1) > max_instruments  # ... and at most max_instruments, by margin
    if too_many.any():
        on[too_many] = top_n(np.where(on, margin, -np.inf)[too_many], max_instruments)
    return on


def predict_timeline(
    name: str, probs: np.ndarray, edges: np.ndarray, cal: Calibration | None
) -> np.ndarray:
    """Instrument sets [W, 11] of one recording's windows in time order (`edges`: the regions they
    stand for): the events rule over time, or any window predictor window by window."""
    check_predictor(name, cal, TIMELINE)
    return decode(probs, edges, cal.event_rules()) if name == EVENTS else predict(name, probs, cal)


def rule_of(name: str, cal: Calibration | None, threshold: float = THRESHOLD) -> dict:
    """What a predictor applies, for people reading a timeline: thresholds, biases, or a count."""
    if name.startswith("top"):
        return {"top": int(name[3:])}
    if name == "threshold":
        return {"thresholds": [threshold] * N_INSTRUMENTS}
    if name in BIASED:
        return {"bias": [round(b, 4) for b in cal.biases[name]]}
    if name == EVENTS:
        return {"events": [r.to_dict() for r in cal.event_rules()]}
    return {"thresholds": [round(t, 4) for t in cal.thresholds]}
