"""Which instruments play, and when, in any audio file: chunked features, batched inference, timeline.

Python API: `predict_file(path, model=None)` -> `Prediction` (model: a run folder, a checkpoint, a LoadedRun,
or by default the model shipped in the package).
The file is decoded in chunks and featurised with the model's feature kind in its streaming form (the
function the shards were built with); only a chunk of audio and one window's frames beyond it are held.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musicid.audio import CHUNK_S, probe, stream_audio
from musicid.errors import AudioError
from musicid.features import Features, normalise, seconds_to_frames
from musicid.run import DEFAULT_PREDICTOR, INFERENCE_BATCH, resolve_model
from musicid.windows import sliding_windows

from .loaded import LoadedRun, load_run
from .predictors import FITTED, check_predictor, predict, rule_of

log = logging.getLogger("musicid")


@dataclass
class Prediction:
    path: Path
    duration_s: float
    names: list[str]
    starts: np.ndarray  # [W] seconds
    ends: np.ndarray  # [W] seconds
    probs: np.ndarray  # [W, 11]
    active: np.ndarray  # [W, 11] bool
    predictor: str
    model: str  # the checkpoint it came from
    rule: dict  # what turned probabilities into sets: {"thresholds": [...]}, {"bias": [...]} or {"top": n}

    def regions(self) -> np.ndarray:
        """Edges [W + 1] (seconds) of the stretch of time each window stands for: the timeline from 0 to the
        end, cut halfway between consecutive window centres, so that the regions tile it without overlap."""
        mids = (self.starts + self.ends) / 2
        return np.r_[0.0, (mids[:-1] + mids[1:]) / 2, self.duration_s]

    def segments(self) -> dict[str, list[tuple[float, float]]]:
        """Per instrument, the time spans where consecutive windows predict it (merged regions)."""
        edges = self.regions()
        out = {}
        for c, name in enumerate(self.names):
            on = np.r_[False, self.active[:, c], False].astype(np.int8)
            rises, falls = np.flatnonzero(np.diff(on) == 1), np.flatnonzero(np.diff(on) == -1)
            out[name] = [(float(edges[a]), float(edges[b])) for a, b in zip(rises, falls, strict=True)]
        return out

    def summary(self) -> list[dict]:
        """Instruments found, by share of time: name, share_of_time, mean_probability, seconds, segments."""
        rows = []
        for c, (name, spans) in enumerate(self.segments().items()):
            if not spans:
                continue
            seconds = sum(e - s for s, e in spans)
            rows.append({"name": name, "share_of_time": round(seconds / max(self.duration_s, 1e-9), 4),
                         "seconds": round(seconds, 3), "mean_probability": round(float(self.probs[:, c].mean()), 4),
                         "segments": [[round(s, 3), round(e, 3)] for s, e in spans]})
        return sorted(rows, key=lambda r: -r["share_of_time"])


def default_predictor(run: LoadedRun) -> str:
    """The model's default predictor; `top3` (with a warning) when it needs a calibration the model lacks."""
    if run.card.default_predictor in FITTED and run.calibration is None:
        log.warning("warning: no calibration beside %s (musicid-train writes one beside each checkpoint it saves); "
                    "predicting with %s", run.path, DEFAULT_PREDICTOR)
        return DEFAULT_PREDICTOR
    return run.card.default_predictor


class _Frames:
    """Log-mel frames of a file decoded `chunk_s` seconds at a time (mono); counts the samples decoded."""

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


@torch.no_grad()
def predict_file(path: Path, model: LoadedRun | Path | str | None = None, predictor: str | None = None,
                 hop_s: float | None = None, chunk_s: float = CHUNK_S, batch_size: int = INFERENCE_BATCH) -> Prediction:
    """Window probabilities and predicted instrument sets for one audio file (`model`: a run folder, a
    checkpoint or a LoadedRun; default: the shipped model)."""
    run = model if isinstance(model, LoadedRun) else load_run(resolve_model(model))
    card = run.card
    predictor = predictor or default_predictor(run)
    cfg = card.features
    check_predictor(predictor, run.calibration)
    hop_frames = seconds_to_frames(hop_s or card.window.hop_s, cfg.frame_rate)
    frames = _Frames(Path(path), cfg, chunk_s)
    starts, probs, batch = [], [], []

    def flush():
        x = torch.from_numpy(np.stack(batch)).to(run.device)
        probs.append(run.model.predict_proba(x).cpu().numpy())
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
    active = predict(predictor, p, run.calibration)
    return Prediction(Path(path), duration, run.names, start_s, end_s, p, active, predictor, str(run.path),
                      rule_of(predictor, run.calibration))
