"""Turning probabilities [N, 11] into instrument sets (DESIGN §6).

- `topN`: the N most probable instruments.
- `threshold`: probability >= t, with the most probable instrument always on (the prior work's rule).
- `prior`, `valmean`, `noise`: the same rule on bias-corrected scores p - b (on when p - b > 0, the
  best-corrected instrument always on); b is the train label frequency, the mean validation prediction,
  or the mean prediction on white-noise input.
- `calibrated`: per-class thresholds that maximise each class's F1 on validation.
- `hybrid`: the calibrated thresholds, but at least one and at most `max_instruments` instruments on
  (ranked by margin above threshold).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BIASED = ("prior", "valmean", "noise")
FITTED = (*BIASED, "calibrated", "hybrid")  # need a calibration fitted on validation data
NAMES = tuple(f"top{n}" for n in range(1, 12)) + ("threshold", *BIASED, "calibrated", "hybrid")


@dataclass
class Calibration:
    """What the fitted predictors need: per-class thresholds and biases, all from train/val, never test."""

    thresholds: list[float] = field(default_factory=lambda: [0.5] * 11)
    biases: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"thresholds": self.thresholds, "biases": self.biases}

    @classmethod
    def from_checkpoint(cls, state: dict) -> Calibration:
        """What a checkpoint holds: eval's fitted calibration, else the trainer's val thresholds."""
        cal = state.get("calibration") or {}
        return cls(thresholds=list(cal.get("thresholds", state["thresholds"])), biases=cal.get("biases", {}))


def _with_argmax(on: np.ndarray, scores: np.ndarray) -> np.ndarray:
    on = on.copy()
    on[np.arange(len(scores)), scores.argmax(axis=1)] = True
    return on


def top_n(probs: np.ndarray, n: int) -> np.ndarray:
    on = np.zeros(probs.shape, dtype=bool)
    idx = np.argsort(-probs, axis=1, kind="stable")[:, :n]
    np.put_along_axis(on, idx, True, axis=1)
    return on


def predict(name: str, probs: np.ndarray, cal: Calibration | None = None, threshold: float = 0.5,
            max_instruments: int = 3) -> np.ndarray:
    """Boolean [N, 11] instrument sets for predictor `name`."""
    if name.startswith("top") and name[3:].isdigit() and 1 <= int(name[3:]) <= probs.shape[1]:
        return top_n(probs, int(name[3:]))
    if name == "threshold":
        return _with_argmax(probs >= threshold, probs)
    if name not in NAMES:
        raise ValueError(f"unknown predictor {name!r}; choose one of {', '.join(NAMES)}")
    if cal is None:
        raise ValueError(f"predictor {name!r} needs a calibration fitted on the validation split")
    if name in BIASED:
        if name not in cal.biases:
            raise ValueError(f"predictor {name!r}: no {name} bias in this run's calibration")
        scores = probs - np.asarray(cal.biases[name])
        return _with_argmax(scores > 0, scores)
    margin = probs - np.asarray(cal.thresholds)
    on = margin >= 0
    if name == "calibrated":
        return on
    on = _with_argmax(on, margin)  # hybrid: at least one ...
    too_many = on.sum(axis=1) > max_instruments  # ... and at most max_instruments, by margin
    if too_many.any():
        keep = top_n(np.where(on, margin, -np.inf)[too_many], max_instruments)
        on[too_many] = keep
    return on
