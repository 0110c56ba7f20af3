"""Which instruments play, and when, in any audio file: chunked features, batched inference,
timeline.

Python API: `predict_file(path, model=None)` -> `Prediction` (model: a run folder, a checkpoint, a
LoadedRun, or by default the model shipped in the package). The file is decoded in chunks and
featurised with the model's feature kind in its streaming form (the function the shards were built
with); only a chunk of audio and one window's frames beyond it are held.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicid.audio import CHUNK_S, probe, stream_audio
from musicid.errors import AudioError
from musicid.events import regions, spans
from musicid.features import Features, normalise, seconds_to_frames
from musicid.run import DEFAULT_PREDICTOR, EVENTS, INFERENCE_BATCH, resolve_model
from musicid.windows import sliding_windows

from .loaded import LoadedRun, load_run
from .predictors import FITTED, TIMELINE, check_predictor, predict_timeline, rule_of

log = logging.getLogger("musicid")
RUNNER_UPS = 3  # instruments listed below the threshold when at most one is named


@dataclass
class Prediction:
    path: Path
    duration_s: float
    names: list[str]
    starts: np.ndarray  # [W] seconds
    ends: np.ndarray  # [W] seconds
    probs: np.ndarray  # [W, 11]
    active: np.ndarray  # [W, 11] bool: which instruments are named in each window's region
    predictor: str
    model: str  # the model's name (its card's name and version, or its run folder and file)
    rule: dict  # what turned probabilities into sets: thresholds, biases, a count, or event rules

    def regions(self) -> np.ndarray:
        """Edges [W + 1] (seconds) of the stretch of time each window stands for: the timeline from
        0 to the end, cut halfway between consecutive window centres, so that the regions tile it
        without overlap."""
        return regions(self.starts, self.ends, self.duration_s)

    @property
    def hop_s(self) -> float:
        """The time resolution: seconds between window starts."""
        return float(self.starts[1] - self.starts[0]) if len(self.starts) > 1 else self.duration_s

    @property
    def window_s(self) -> float:
        return float(self.ends[0] - self.starts[0])

    def segments(self) -> dict[str, list[tuple[float, float]]]:
        """Per instrument, the events: the stretches of time in which it is named (merged
        regions)."""
        edges = self.regions()
        return {name: spans(self.active[:, c], edges) for c, name in enumerate(self.names)}

    def events(self) -> list[tuple[float, float, str]]:
        """(onset, offset, instrument) of every event, in time order: the event list of the
        timeline."""
        return sorted((s, e, name) for name, stretch in self.segments().items() for s, e in stretch)

    def summary(self) -> list[dict]:
        """Instruments named, by share of time: name, share_of_time, seconds, the mean and peak
        probability over the windows where it is named, and its events."""
        rows = []
        for c, (name, stretch) in enumerate(self.segments().items()):
            if not stretch:
                continue
            seconds = sum(e - s for s, e in stretch)
            named = self.probs[self.active[:, c], c]
            rows.append(
                {
                    "name": name,
                    "share_of_time": round(seconds / max(self.duration_s, 1e-9), 4),
                    "seconds": round(seconds, 3),
                    "mean_probability_named": round(float(named.mean()), 4),
                    "peak_probability_named": round(float(named.max()), 4),
                    "segments": [[round(s, 3), round(e, 3)] for s, e in stretch],
                }
            )
        return sorted(rows, key=lambda r: -r["share_of_time"])

    def runner_ups(self, n: int = RUNNER_UPS) -> list[dict]:
        """When at most one instrument is named: the most probable of the others (peak window
        probability), below what names an instrument; otherwise none."""
        if self.active.any(axis=0).sum() > 1:
            return []
        peak = self.probs.max(axis=0)
        order = [c for c in np.argsort(-peak, kind="stable") if not self.active[:, c].any()]
        return [
            {"name": self.names[c], "peak_probability": round(float(peak[c]), 4)} for c in order[:n]
        ]


def default_predictor(run: LoadedRun) -> str:
    """The model's default predictor; `top3` (with a warning) when it needs a calibration the model
    lacks."""
    if run.card.default_predictor in (*FITTED, EVENTS) and run.calibration is None:
        log.warning(
            "warning: no calibration beside %s (musicid-train writes one beside each checkpoint it "
            "saves); "
            "predicting with %s",
            run.path,
            DEFAULT_PREDICTOR,
        )
        return DEFAULT_PREDICTOR
    return run.card.default_predictor


class _Frames:
    """Log-mel frames of a file decoded `chunk_s` seconds at a time (mono); counts the samples
    decoded."""

    def __init__(self, path: Path, cfg: Features, chunk_s: float):
        self.info, self.cfg, self.chunk_s, self.samples = probe(path), cfg, chunk_s, 0

    def __iter__(self):
        stream = self.cfg.stream(self.info.sample_rate)
        for chunk in stream_audio(self.info, self.chunk_s):
            self.samples += len(chunk)
            yield stream.push(chunk)
        yield stream.push(np.zeros(0, dtype=np.float32), last=True)

    @property
    def duration_s(self) -> float:
        return self.samples / self.info.sample_rate


def predict_file(
    path: Path,
    model: LoadedRun | Path | str | None = None,
    predictor: str | None = None,
    hop_s: float | None = None,
    chunk_s: float = CHUNK_S,
    batch_size: int = INFERENCE_BATCH,
) -> Prediction:
    """Window probabilities and predicted instrument sets for one audio file (`model`: a run folder,
    a checkpoint, an ONNX export or a LoadedRun; default: the shipped model)."""
    run = model if isinstance(model, LoadedRun) else load_run(resolve_model(model))
    card = run.card
    predictor = predictor or default_predictor(run)
    cfg = card.features
    check_predictor(predictor, run.calibration, TIMELINE)
    hop_frames = seconds_to_frames(hop_s or card.window.hop_s, cfg.frame_rate)
    frames = _Frames(Path(path), cfg, chunk_s)
    starts, probs, batch = [], [], []

    def flush():
        probs.append(run.predict_proba(np.stack(batch)))
        batch.clear()

    for start, window in sliding_windows(frames, card.n_frames, hop_frames):
        starts.append(start)
        batch.append(normalise(window, card.mean, card.std))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not starts:
        raise AudioError(f"{path}: no audio frames")
    duration = frames.duration_s
    p = np.concatenate(probs)
    start_s = np.asarray(starts) / cfg.frame_rate
    end_s = np.minimum(start_s + card.n_frames / cfg.frame_rate, duration)
    active = predict_timeline(predictor, p, regions(start_s, end_s, duration), run.calibration)
    return Prediction(
        Path(path),
        duration,
        run.names,
        start_s,
        end_s,
        p,
        active,
        predictor,
        run.name,
        rule_of(predictor, run.calibration),
    )
