"""Metrics of predicted instrument sets against labels: per class and aggregated (micro, macro, mAP)."""

from __future__ import annotations

import numpy as np

from .metrics import f1_counts, per_class_ap


def _prf(tp, fp, fn):
    p = np.divide(tp, tp + fp, out=np.zeros(np.shape(tp), dtype=float), where=(tp + fp) > 0)
    r = np.divide(tp, tp + fn, out=np.zeros(np.shape(tp), dtype=float), where=(tp + fn) > 0)
    f = np.divide(2 * p * r, p + r, out=np.zeros(np.shape(tp), dtype=float), where=(p + r) > 0)
    return p, r, f


def score_sets(pred: np.ndarray, probs: np.ndarray, labels: np.ndarray, names: list[str]) -> dict:
    """All metrics for one predictor. Classes with no positives in `labels` are marked absent and left out
    of every macro mean (their false positives still count in the micro figures)."""
    pred, truth = pred.astype(bool), labels.astype(bool)
    tp, fp, fn = f1_counts(pred, truth)
    p, r, f = _prf(tp, fp, fn)
    ap = per_class_ap(probs, labels)
    present = (tp + fn) > 0
    mp, mr, mf = (float(x) for x in _prf(tp.sum(), fp.sum(), fn.sum()))
    per_class = {
        n: {"support": int(tp[c] + fn[c]), "present": bool(present[c]), "predicted": int(tp[c] + fp[c]),
            "precision": float(p[c]) if present[c] else None, "recall": float(r[c]) if present[c] else None,
            "f1": float(f[c]) if present[c] else None, "ap": float(ap[c]) if present[c] else None}
        for c, n in enumerate(names)
    }

    def macro(x):
        return float(np.mean(x[present])) if present.any() else None

    return {
        "samples": int(len(labels)),
        "micro": {"precision": mp, "recall": mr, "f1": mf},
        "macro": {"precision": macro(p), "recall": macro(r), "f1": macro(f), "classes": int(present.sum())},
        "mAP": macro(ap),
        "prior_accuracy": mr,  # the prior work's "accuracy": instruments found / instruments playing
        "fp_per_sample": float(fp.sum() / max(len(labels), 1)),
        "exact_match": float((pred == truth).all(axis=1).mean()) if len(labels) else None,
        "mean_predicted": float(pred.sum(axis=1).mean()) if len(labels) else None,
        "mean_true": float(truth.sum(axis=1).mean()) if len(labels) else None,
        "absent_classes": [n for c, n in enumerate(names) if not present[c]],
        "per_class": per_class,
    }
