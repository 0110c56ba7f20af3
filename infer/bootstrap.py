"""Per-recording results and 95 % bootstrap confidence intervals over recordings.

With ten test recordings, a difference of 0.02 mAP can be noise: intervals resample recordings (not
windows or frames, which are strongly correlated within a recording) with replacement. A resample is
a multiplicity per recording, so every statistic is computed with those multiplicities as weights:
F1 from weighted counts, AP from weighted precision-recall steps over a sort order fixed once per
class (the same sums scikit-learn's `average_precision_score` makes with `sample_weight`, tested;
written here because recomputing it from scratch for a thousand resamples of a 25-minute test set
would take minutes).
"""

from __future__ import annotations

import numpy as np

from .frames import Rows

N_BOOT = 1000  # bootstrap resamples of recordings for 95 % intervals

STATS = ("mAP", "macro F1", "micro F1")


class Resampler:
    """Statistics of a scored set under recording weights; rows are grouped by recording once."""

    def __init__(self, rows: Rows, pred: np.ndarray):
        self.recs, self.row_rec = np.unique(rows.recordings, return_inverse=True)
        self.labels, self.pred = rows.labels.astype(bool), pred.astype(bool)
        self.order = np.argsort(-rows.probs, axis=0, kind="stable")  # per class, fixed once
        sorted_p = np.take_along_axis(rows.probs, self.order, axis=0)
        # the last row of each run of equal scores: a threshold can only sit between distinct scores
        self.ends = [
            np.r_[np.flatnonzero(np.diff(sorted_p[:, c])), len(sorted_p) - 1]
            for c in range(pred.shape[1])
        ]
        n_rec = len(self.recs)
        tp, fp, fn = (np.zeros((n_rec, pred.shape[1])) for _ in range(3))
        np.add.at(tp, self.row_rec, self.pred & self.labels)
        np.add.at(fp, self.row_rec, self.pred & ~self.labels)
        np.add.at(fn, self.row_rec, ~self.pred & self.labels)
        self.counts = tp, fp, fn

    def stats(self, weights: np.ndarray) -> dict[str, float]:
        """mAP, macro F1 (classes present under these weights) and micro F1 with recording
        `weights`."""
        tp, fp, fn = (weights @ c for c in self.counts)
        present = (tp + fn) > 0
        f1 = np.divide(
            2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0
        )
        micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1e-12)
        row_w = weights[self.row_rec]
        ap = [self._ap(c, row_w) for c in np.flatnonzero(present)]
        return {
            "mAP": float(np.mean(ap)) if ap else np.nan,
            "macro F1": float(f1[present].mean()) if present.any() else np.nan,
            "micro F1": float(micro),
        }

    def _ap(self, c: int, row_w: np.ndarray) -> float:
        w = row_w[self.order[:, c]]
        y = self.labels[self.order[:, c], c]
        tps = np.cumsum(w * y)[self.ends[c]]
        fps = np.cumsum(w * ~y)[self.ends[c]]
        precision = np.divide(tps, tps + fps, out=np.zeros_like(tps), where=(tps + fps) > 0)
        recall = tps / tps[-1]
        return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def intervals(resamplers: list[Resampler], n_boot: int = N_BOOT, seed: int = 0) -> list[dict]:
    """For each scored set: its statistics with their 95 % intervals; sets after the first also get
    their difference from the first (paired: the same resampled recordings), and whether it excludes
    zero."""
    n_rec = len(resamplers[0].recs)
    rng = np.random.default_rng(seed)
    draws = np.stack(
        [np.bincount(rng.integers(0, n_rec, n_rec), minlength=n_rec) for _ in range(n_boot)]
    )
    point = [r.stats(np.ones(n_rec)) for r in resamplers]
    boots = [[r.stats(w.astype(float)) for w in draws] for r in resamplers]
    out = []
    for i, (p, b) in enumerate(zip(point, boots, strict=True)):
        row = {}
        for s in STATS:
            lo, hi = np.nanpercentile([x[s] for x in b], [2.5, 97.5])
            row[s] = {"value": p[s], "ci95": [float(lo), float(hi)]}
            if i:
                d = np.array([x[s] - y[s] for x, y in zip(b, boots[0], strict=True)])
                dlo, dhi = np.nanpercentile(d, [2.5, 97.5])
                row[s]["difference"] = {
                    "value": p[s] - point[0][s],
                    "ci95": [float(dlo), float(dhi)],
                    "excludes_zero": bool(dlo > 0 or dhi < 0),
                }
        out.append(row)
    return out


def per_recording(
    rows: Rows, pred: np.ndarray, names: list[str], ensembles: dict[str, str]
) -> list[dict]:
    """Recording, ensemble, seconds, and F1 / AP per class present in it."""
    from sklearn.metrics import average_precision_score, f1_score

    table = []
    for rec in sorted(set(rows.recordings)):
        m = rows.recordings == rec
        y, p, s = rows.labels[m].astype(bool), pred[m], rows.probs[m]
        present = [c for c in range(len(names)) if y[:, c].any()]
        table.append(
            {
                "recording": str(rec),
                "ensemble": ensembles.get(str(rec), ""),
                "seconds": round(int(m.sum()) / rows.rate, 1),
                "f1": {
                    names[c]: float(f1_score(y[:, c], p[:, c], zero_division=0)) for c in present
                },
                "ap": {names[c]: float(average_precision_score(y[:, c], s[:, c])) for c in present},
            }
        )
    return table
