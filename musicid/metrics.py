"""Multi-label metrics of predicted instrument sets, and per-class threshold calibration, on
scikit-learn.

Classes with no positives in the evaluated labels are marked absent and left out of every macro mean
(their false positives still count in the micro figures): a split without oboe says nothing about
oboe.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    precision_recall_fscore_support,
)


def per_class_ap(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """AP per class; NaN for a class without positives."""
    return np.array(
        [
            average_precision_score(labels[:, c], probs[:, c]) if labels[:, c].any() else np.nan
            for c in range(labels.shape[1])
        ]
    )


def macro_f1(pred: np.ndarray, labels: np.ndarray) -> float:
    """Mean F1 over the classes present in `labels`."""
    present = labels.astype(bool).any(axis=0)
    if not present.any():
        return float("nan")
    return float(
        precision_recall_fscore_support(
            labels[:, present], pred[:, present], average="macro", zero_division=0
        )[2]
    )


def calibrate_thresholds(
    probs: np.ndarray, labels: np.ndarray, default: float
) -> tuple[np.ndarray, list[int]]:
    """Per-class threshold (on when p >= t) maximising F1 on (validation) data; `default` for
    classes without positives there, whose indices are returned too."""
    out = np.full(labels.shape[1], default, dtype=np.float64)
    fallback = []
    for c in range(labels.shape[1]):
        if not labels[:, c].any():
            fallback.append(c)
            continue
        precision, recall, thresholds = precision_recall_curve(labels[:, c], probs[:, c])
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        out[c] = float(thresholds[np.argmax(f1)])
    return out, fallback


def score_sets(pred: np.ndarray, probs: np.ndarray, labels: np.ndarray, names: list[str]) -> dict:
    """All metrics of one predictor's sets: per class, micro, macro (present classes), mAP, and the
    prior work's figures (micro recall as "accuracy", false positives per sample)."""
    pred, truth = pred.astype(bool), labels.astype(bool)
    p, r, f, support = precision_recall_fscore_support(truth, pred, average=None, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(truth, pred, average="micro", zero_division=0)
    ap = per_class_ap(probs, labels)
    present = support > 0
    fp = (pred & ~truth).sum(axis=0)
    per_class = {
        n: {
            "support": int(support[c]),
            "present": bool(present[c]),
            "predicted": int(pred[:, c].sum()),
            **{
                k: float(v[c]) if present[c] else None
                for k, v in (("precision", p), ("recall", r), ("f1", f), ("ap", ap))
            },
        }
        for c, n in enumerate(names)
    }

    def macro(x):
        return float(np.mean(x[present])) if present.any() else None

    n = len(labels)
    return {
        "samples": int(n),
        "micro": {"precision": float(mp), "recall": float(mr), "f1": float(mf)},
        "macro": {
            "precision": macro(p),
            "recall": macro(r),
            "f1": macro(f),
            "classes": int(present.sum()),
        },
        "mAP": macro(ap),
        # the prior work's "accuracy": instruments found / instruments playing
        "prior_accuracy": float(mr),
        "fp_per_sample": float(fp.sum() / max(n, 1)),
        "exact_match": float((pred == truth).all(axis=1).mean()) if n else None,
        "mean_predicted": float(pred.sum(axis=1).mean()) if n else None,
        "mean_true": float(truth.sum(axis=1).mean()) if n else None,
        "absent_classes": [name for c, name in enumerate(names) if not present[c]],
        "per_class": per_class,
    }
