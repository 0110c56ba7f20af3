"""Events: per-class probabilities over time -> the stretches in which each instrument is named.

This is the post-processing sound-event-detection systems use (DCASE baselines), on musicid's window
grid: the probability of each window is taken to stand for its region of the timeline (cut halfway
between window centres), and per class

1. a median filter over `median` windows smooths the probabilities; 2. hysteresis: an event starts
where the smoothed probability reaches `high` and lasts while it stays at
   or above `low` (one threshold when they are equal);
3. gaps shorter than `min_gap_s` between two events are filled;
4. events shorter than `min_event_s` are dropped.

The parameters are fitted per class on validation data (`fit_event_rules`, called where a
calibration is fitted) and kept in the calibration; a calibration without them gets
`EventRule.plain` for each class: its calibrated threshold, nothing smoothed, filled or dropped,
which is the `calibrated` predictor.

The fitting objective is written here rather than taken from sed_eval because it is evaluated a few
thousand times per fit (sed_eval's metrics take milliseconds per file); it is the same two figures,
segment-based F1 over 1 s segments and event-based F1 with sed_eval's collars (onset 0.5 s, offset
max(0.5 s, 20 % of the reference event)), on the window grid. Reports use sed_eval itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from musicid.errors import InputError

MEDIANS = (1, 3, 5)  # windows in the median filter (at the default 0.5 s hop: none, 1.5 s, 2.5 s)
HIGHS = tuple(np.round(np.linspace(0.05, 0.95, 19), 2))
LOW_RATIOS = (0.4, 0.6, 0.8, 1.0)  # low = high x ratio
LENGTHS_S = (0.0, 0.5, 1.0, 2.0)  # candidate minimum gap and event lengths
SEGMENT_S, COLLAR_S, OFFSET_SHARE = 1.0, 0.5, 0.2  # sed_eval's conventions (DCASE)


@dataclass(frozen=True)
class EventRule:
    """How one class's probabilities over time become events."""

    median: int
    high: float
    low: float
    min_gap_s: float
    min_event_s: float

    @classmethod
    def plain(cls, threshold: float) -> EventRule:
        """One threshold, nothing smoothed, filled or dropped: the windows at or above it,
        merged."""
        return cls(1, float(threshold), float(threshold), 0.0, 0.0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object, where: str) -> EventRule:
        """Validated field by field: an odd median length of at least 1, 0 <= low <= high <= 1,
        lengths >= 0."""
        names = tuple(f.name for f in fields(cls))
        if not isinstance(d, dict) or set(d) != set(names):
            raise InputError(
                f"{where}: expected the fields {', '.join(names)}, found {str(d)[:80]}"
            )
        try:
            rule = cls(int(d["median"]), *(float(d[k]) for k in names[1:]))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: {exc}") from exc
        values = np.array([rule.high, rule.low, rule.min_gap_s, rule.min_event_s])
        if (
            d["median"] != rule.median
            or rule.median < 1
            or rule.median % 2 == 0
            or not np.isfinite(values).all()
            or not 0 <= rule.low <= rule.high <= 1
            or min(rule.min_gap_s, rule.min_event_s) < 0
        ):
            raise InputError(
                f"{where}: need an odd median >= 1, 0 <= low <= high <= 1 and lengths >= 0, "
                f"found {d}"
            )
        return rule


def median_filter(p: np.ndarray, k: int) -> np.ndarray:
    """Running median of `k` (odd) values along the first axis, the ends padded with their edge
    values."""
    if k <= 1 or len(p) < 2:
        return p
    pad = np.pad(p, [(k // 2, k // 2)] + [(0, 0)] * (p.ndim - 1), mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(pad, k, axis=0), axis=-1)


def runs(on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the runs of True in a 1-D boolean array, ends exclusive."""
    d = np.diff(np.r_[0, on.astype(np.int8), 0])
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def apply_rule(p: np.ndarray, widths: np.ndarray, rule: EventRule) -> np.ndarray:
    """Steps 2-4 of a rule on already smoothed probabilities [W] whose regions last `widths` [W]
    seconds: hysteresis, then gaps under `min_gap_s` filled, then events under `min_event_s`
    dropped. A gap at either end of the array is never filled (it is not between two events)."""
    on = p >= rule.low
    run_id = np.cumsum(np.diff(np.r_[0, on.astype(np.int8)]) == 1) * on
    seeded = np.bincount(run_id, weights=(p >= rule.high) & on, minlength=run_id.max() + 1) > 0
    on &= seeded[run_id]
    for fill, limit in ((True, rule.min_gap_s), (False, rule.min_event_s)):
        if limit <= 0:
            continue
        target = ~on if fill else on  # gaps to fill, then events to drop
        run_id = np.cumsum(np.diff(np.r_[0, target.astype(np.int8)]) == 1) * target
        short = np.bincount(run_id, weights=widths * target, minlength=run_id.max() + 1) < limit
        short[0] = False
        if fill and len(on):  # the stretches before the first event and after the last stay
            short[[run_id[0], run_id[-1]]] = False
        on = np.where(short[run_id], fill, on)
    return on


def decode(probs: np.ndarray, edges: np.ndarray, rules: list[EventRule]) -> np.ndarray:
    """Window probabilities [W, C] of one recording, in time order, with the edges [W + 1] of the
    regions the windows stand for -> which windows each class is named in [W, C] (the events, on the
    window grid)."""
    active = np.zeros(probs.shape, dtype=bool)
    for c, rule in enumerate(rules):
        active[:, c] = apply_rule(median_filter(probs[:, c], rule.median), np.diff(edges), rule)
    return active


def regions(starts: np.ndarray, ends: np.ndarray, duration_s: float) -> np.ndarray:
    """Edges [W + 1] (seconds) of the stretch each window stands for: from 0 to the end, cut halfway
    between consecutive window centres, so that the regions tile the timeline without overlap."""
    mids = (np.asarray(starts) + np.asarray(ends)) / 2
    return np.r_[0.0, (mids[:-1] + mids[1:]) / 2, duration_s]


def spans(on: np.ndarray, edges: np.ndarray) -> list[tuple[float, float]]:
    """The events of one class: (onset, offset) in seconds of each run of active windows."""
    starts, ends = runs(on)
    return [(float(edges[a]), float(edges[b])) for a, b in zip(starts, ends, strict=True)]


# --- the fitting objective
# ------------------------------------------------------------------------------------


class Track:
    """One class's validation sequences laid end to end on one time axis, so that a rule is scored
    with a few array operations: each recording starts on a whole second (segments stay its own),
    and a separator position (never active, longer than any gap to fill) keeps events, gaps and runs
    apart."""

    def __init__(self, sequences: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
        probs, refs, lo, hi = {k: [] for k in MEDIANS}, [], [], []
        t = 0.0
        for p, ref, edges in sequences:
            for k in MEDIANS:
                probs[k] += [median_filter(p, k), [-np.inf]]
            refs += [ref, [False]]
            lo += [t + edges[:-1], [t + edges[-1]]]
            # the separator lasts longer than the recording
            t = np.ceil(t + edges[-1]) + np.ceil(edges[-1]) + 1
            hi += [lo[-2][1:].tolist() + [lo[-1][0]], [t]]
        self.probs = {k: np.concatenate(v) for k, v in probs.items()}
        self.ref = np.concatenate(refs).astype(bool)
        self.lo, self.hi = np.concatenate(lo), np.concatenate(hi)
        self.n_segments = int(np.ceil(t / SEGMENT_S))
        self.ref_segments = self._segments(self.ref)
        self.ref_events = self._events(self.ref)

    def _segments(self, on: np.ndarray) -> np.ndarray:
        seg = np.zeros(self.n_segments + 1, dtype=bool)
        first = (self.lo[on] // SEGMENT_S).astype(np.int64)
        last = np.maximum(np.ceil(self.hi[on] / SEGMENT_S).astype(np.int64) - 1, first)
        for offset in range(int((last - first).max(initial=0)) + 1):
            seg[np.minimum(first + offset, last)] = True
        return seg

    def _events(self, on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts, ends = runs(on)
        return self.lo[starts], self.hi[ends - 1]

    def active(self, rule: EventRule) -> np.ndarray:
        return apply_rule(self.probs[rule.median], self.hi - self.lo, rule)

    def best(self, candidates: list[EventRule]) -> EventRule:
        """The candidate that scores highest (the first of equals)."""
        return candidates[int(np.argmax([self.score(r) for r in candidates]))]

    def score(self, rule: EventRule) -> float:
        """Segment-based F1 plus event-based F1 of the class's events under `rule`."""
        on = self.active(rule)
        seg = self._segments(on)
        est0, est1 = self._events(on)
        ref0, ref1 = self.ref_events
        used, hits = np.zeros(len(est0), dtype=bool), 0
        # greedily in reference order, as sed_eval matches
        for r0, r1 in zip(ref0, ref1, strict=True):
            near = np.flatnonzero(
                (np.abs(est0 - r0) <= COLLAR_S)
                & ~used
                & (np.abs(est1 - r1) <= max(COLLAR_S, OFFSET_SHARE * (r1 - r0)))
            )
            if len(near):
                used[near[0]] = True
                hits += 1
        return _f1((seg & self.ref_segments).sum(), seg.sum(), self.ref_segments.sum()) + _f1(
            hits, len(est0), len(ref0)
        )


def _f1(tp: float, n_est: float, n_ref: float) -> float:
    return 2 * tp / (n_est + n_ref) if n_est + n_ref else 0.0


def fit_event_rules(
    sequences: list[tuple[np.ndarray, np.ndarray, np.ndarray]], thresholds: list[float]
) -> list[EventRule]:
    """Per class, the rule that maximises segment F1 + event F1 on validation sequences of
    (probabilities [W, C], labels [W, C], edges [W + 1]), searched coordinate-wise: median length
    and threshold first, then the low threshold of the hysteresis, then the minimum gap and event
    lengths. A class without positives keeps `EventRule.plain` of its threshold."""
    rules = []
    for c, threshold in enumerate(thresholds):
        seqs = [(p[:, c], y[:, c].astype(bool), e) for p, y, e in sequences]
        if not any(ref.any() for _, ref, _ in seqs):
            rules.append(EventRule.plain(threshold))
            continue
        track = Track(seqs)
        rule = track.best(
            [EventRule(k, float(h), float(h), 0.0, 0.0) for k in MEDIANS for h in HIGHS]
        )
        rule = track.best(
            [
                EventRule(rule.median, rule.high, round(rule.high * r, 4), 0.0, 0.0)
                for r in LOW_RATIOS
            ]
        )
        rules.append(
            track.best(
                [
                    EventRule(rule.median, rule.high, rule.low, g, m)
                    for g in LENGTHS_S
                    for m in LENGTHS_S
                ]
            )
        )
    return rules
