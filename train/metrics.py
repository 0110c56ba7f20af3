"""Threshold-free and thresholded multi-label metrics, and per-class threshold calibration (NumPy only)."""

from __future__ import annotations

import numpy as np


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """AP of one class (area under the step PR curve, as scikit-learn computes it); NaN with no positives."""
    labels = labels.astype(bool)
    n_pos = labels.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each run of equal scores
    tp = np.cumsum(y)[distinct]
    fp = (distinct + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def per_class_ap(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array([average_precision(probs[:, c], labels[:, c]) for c in range(labels.shape[1])])


def f1_counts(pred: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class true positives, false positives, false negatives of boolean predictions."""
    pred, labels = pred.astype(bool), labels.astype(bool)
    return (pred & labels).sum(0), (pred & ~labels).sum(0), (~pred & labels).sum(0)


def macro_f1(pred: np.ndarray, labels: np.ndarray) -> float:
    """Mean F1 over the classes present in `labels` (absent classes are left out, not counted as 0)."""
    tp, fp, fn = f1_counts(pred, labels)
    present = (tp + fn) > 0
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    return float(f1[present].mean()) if present.any() else float("nan")


def calibrate_thresholds(probs: np.ndarray, labels: np.ndarray, default: float = 0.5) -> np.ndarray:
    """Per-class threshold maximising F1 on (validation) data; `default` for classes without positives."""
    out = np.full(labels.shape[1], default, dtype=np.float64)
    for c in range(labels.shape[1]):
        y = labels[:, c].astype(bool)
        if not y.any():
            continue
        order = np.argsort(-probs[:, c], kind="mergesort")
        s, yy = probs[order, c], y[order]
        tp = np.cumsum(yy)
        fp = np.cumsum(~yy)
        f1 = 2 * tp / (tp + fp + y.sum())
        last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # a threshold can only sit between distinct scores
        best = last[np.argmax(f1[last])]
        nxt = s[best + 1] if best + 1 < len(s) else 0.0
        out[c] = float((s[best] + nxt) / 2)
    return out
