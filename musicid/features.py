"""The features, shared by shard building and prediction: one function computes them for both.

A feature kind is a frozen config dataclass that declares what every part needs of it: its settings
(the manifest and each checkpoint record them), its frame rate and bin count, how it is computed
over a whole signal (`compute`) and over a signal fed in chunks (`stream`), and, for augmentation in
the power domain, its inverse (`to_power`, `from_power`). Kinds register themselves by name
(`register`), so another kind (a CQT, say) is one new class here, and a record names its kind
(`kind`; old records without one are log-mel).

The log-mel: audio at any rate resampled (soxr) to `sample_rate`, a centred STFT with a periodic
Hann window, a Slaney mel filterbank and 10·log10 power (dB, floor `amin`) give float32 [n_mels,
n_frames]; frame k is centred on sample k·hop_length of the resampled signal. Written with numpy
alone (the same arithmetic as librosa's `stft` and `filters.mel`, tested against them), so that
prediction needs neither librosa nor its dependencies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import ClassVar, Protocol

import numpy as np
import soxr
from threadpoolctl import threadpool_limits

from musicid.errors import InputError
from musicid.records import from_fields

REFERENCE_RATE = 44100  # MusicNet's rate: sample keys and label times are expressed at this rate
FEATURE_KINDS: dict[str, type] = {}
STFT_BLOCK = 2048  # frames transformed at a time: memory bounded in a recording's length


class Features(Protocol):
    """What a feature kind declares (see the module docstring); `LogMel` is the one in use."""

    kind: ClassVar[str]
    sample_rate: int
    hop_length: int

    @property
    def frame_rate(self) -> float: ...

    @property
    def n_bins(self) -> int: ...

    def describe(self) -> str: ...

    def to_dict(self) -> dict: ...

    def compute(self, audio: np.ndarray, sr: int) -> np.ndarray: ...

    def stream(self, sr: int): ...

    def to_power(self, x): ...

    def from_power(self, power, xp=np): ...


def register(cls: type) -> type:
    """Make a feature kind known by its `kind` name, so records naming it can be read."""
    FEATURE_KINDS[cls.kind] = cls
    return cls


def features_from_dict(d: dict) -> Features:
    """The feature kind a record describes (`kind`, default log-mel), validated field by field."""
    if not isinstance(d, dict):
        raise InputError(f"feature config: expected a JSON object, found {type(d).__name__}")
    kind = d.get("kind", LogMel.kind)
    if kind not in FEATURE_KINDS:
        raise InputError(
            f"feature config: unknown kind {kind!r}; known: {', '.join(FEATURE_KINDS)}"
        )
    return from_fields(FEATURE_KINDS[kind], d, "feature config")


def resample(audio: np.ndarray, sr: int, target: int) -> np.ndarray:
    """Mono float32 audio at `sr` to `target` Hz (soxr, high quality)."""
    if sr == target:
        return audio
    return soxr.resample(audio, sr, target, quality="HQ").astype(np.float32, copy=False)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asanyarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    log = f >= 1000.0
    return np.where(log, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asanyarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), (200.0 / 3) * m)


@lru_cache(maxsize=8)
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised triangular mel filters [n_mels, 1 + n_fft // 2] (librosa's `filters.mel`
    default)."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    ramps = np.subtract.outer(edges, freqs)
    fdiff = np.diff(edges)
    weights = np.zeros((n_mels, len(freqs)), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, None]
    return weights


@lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    """The periodic Hann window (scipy's `get_window("hann", n, fftbins=True)`)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)


def power_spectrogram(padded: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|² [1 + n_fft // 2, frames] of every whole frame of a signal (no centring), in
    float32."""
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    out = np.empty((n_fft // 2 + 1, len(frames)), dtype=np.float32)
    for b in range(0, len(frames), STFT_BLOCK):
        spec = np.fft.rfft(_hann(n_fft) * frames[b : b + STFT_BLOCK], axis=-1).astype(np.complex64)
        out[:, b : b + STFT_BLOCK] = (spec.real**2 + spec.imag**2).T
    return out


@register
@dataclass(frozen=True)
class LogMel:
    """Log-mel spectrogram settings, and the log-mel itself."""

    kind: ClassVar[str] = "log_mel"
    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    fmin: float = 30.0
    fmax: float | None = None  # None: the Nyquist frequency of sample_rate
    amin: float = 1e-10  # power floor before log: log scaling is 10*log10(max(power, amin))

    LOG_SCALING: ClassVar[str] = "10*log10(max(mel_power, amin)), power spectrum, no ref"

    def __post_init__(self):
        if self.fmax is None:
            object.__setattr__(self, "fmax", self.sample_rate / 2)
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise InputError(
                f"features: need 0 <= fmin < fmax <= sample_rate / 2, got fmin {self.fmin}, "
                f"fmax {self.fmax}, sample_rate {self.sample_rate}"
            )

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def n_bins(self) -> int:
        return self.n_mels

    def describe(self) -> str:
        return (
            f"log-mel {self.n_mels} bins @ {self.sample_rate} Hz, n_fft {self.n_fft}, "
            f"hop {self.hop_length}"
        )

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self), "log_scaling": self.LOG_SCALING}

    def _padded(self, padded: np.ndarray) -> np.ndarray:
        """Log-mel of every whole frame of an already centre-padded signal at the feature rate."""
        power = power_spectrogram(padded, self.n_fft, self.hop_length)
        basis = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax)
        # one BLAS thread: the same bits whatever the machine's thread count
        with threadpool_limits(1):
            mel = basis @ power
        return self.from_power(mel).astype(np.float32)

    def compute(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """float32 [n_mels, 1 + len(resampled) // hop] of mono audio at rate `sr`."""
        y = resample(np.asarray(audio, dtype=np.float32), sr, self.sample_rate)
        return self._padded(np.pad(y, self.n_fft // 2))

    def stream(self, sr: int) -> LogMelStream:
        return LogMelStream(sr, self)

    def to_power(self, x):
        """Features (dB) back to power: numpy arrays or torch tensors alike."""
        return 10.0 ** (x / 10.0)

    def from_power(self, power, xp=np):
        """Power to features, as `compute` does: `xp` is numpy or torch, whichever `power` is."""
        return 10.0 * xp.log10(xp.clip(power, self.amin, None))


class LogMelStream:
    """`LogMel.compute` over a signal fed in chunks, in bounded memory: push chunks, get the frames
    they complete. Frames equal the whole-signal ones exactly at the feature rate; at other rates,
    up to the streaming resampler's difference from the one-shot one."""

    def __init__(self, sr: int, cfg: LogMel):
        self.cfg = cfg
        self.resampler = (
            None
            if sr == cfg.sample_rate
            else soxr.ResampleStream(sr, cfg.sample_rate, 1, dtype="float32", quality="HQ")
        )
        # the centre padding before the first frame
        self.buf = np.zeros(cfg.n_fft // 2, dtype=np.float32)

    def push(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        """Frames [n_mels, k] completed by `chunk` (all remaining frames when `last`)."""
        chunk = np.asarray(chunk, dtype=np.float32)
        y = self.resampler.resample_chunk(chunk, last=last) if self.resampler else chunk
        parts = [self.buf, y] + ([np.zeros(self.cfg.n_fft // 2, dtype=np.float32)] if last else [])
        self.buf = np.concatenate(parts)
        n_fft, hop = self.cfg.n_fft, self.cfg.hop_length
        n = 1 + (len(self.buf) - n_fft) // hop if len(self.buf) >= n_fft else 0
        if n == 0:
            return np.zeros((self.cfg.n_mels, 0), dtype=np.float32)
        out = self.cfg._padded(self.buf[: (n - 1) * hop + n_fft])
        self.buf = self.buf[n * hop :]
        return out


def normalise(spec: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Features [bins, T] -> the model's input [1, bins, T] with the train split's per-bin
    statistics."""
    return ((spec - mean[:, None]) / std[:, None]).astype(np.float32)[None]


def seconds_to_frames(seconds: float, frame_rate: float) -> int:
    """The one rounding rule from seconds to feature frames (window lengths and hops), at least one
    frame."""
    return max(1, round(seconds * frame_rate))


def frame_positions(n_frames: int, cfg: Features, rate: float) -> np.ndarray:
    """Centre of each frame as a sample index at `rate` (e.g. the label file's own rate)."""
    return np.round(np.arange(n_frames) * cfg.hop_length * rate / cfg.sample_rate).astype(np.int64)
