"""The one log-mel feature function, shared by shard building and `musicid-predict`.

Audio at any rate is resampled (soxr) to `sample_rate`, then a centred STFT, a Slaney mel filterbank and
10·log10 power (dB, floor `amin`) give a float32 [n_mels, n_frames] matrix. Frame k is centred on sample
k·hop_length of the resampled signal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import soxr
from librosa.core.spectrum import stft as librosa_stft  # eager: forked workers inherit it, not re-import it
from librosa.filters import mel as mel_filters
from threadpoolctl import threadpool_limits

from musicid.errors import InputError
from musicid.records import from_fields

REFERENCE_RATE = 44100  # MusicNet's rate: sample keys and label times are expressed at this rate


LOG_SCALING = "10*log10(max(mel_power, amin)), power spectrum, no ref"


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    fmin: float = 30.0
    fmax: float | None = None  # None: the Nyquist frequency of sample_rate
    amin: float = 1e-10  # power floor before log: log scaling is 10*log10(max(power, amin))

    def __post_init__(self):
        if self.fmax is None:
            object.__setattr__(self, "fmax", self.sample_rate / 2)
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise InputError(f"features: need 0 <= fmin < fmax <= sample_rate / 2, got fmin {self.fmin}, "
                             f"fmax {self.fmax}, sample_rate {self.sample_rate}")

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict:
        return {**asdict(self), "log_scaling": LOG_SCALING}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        return from_fields(cls, d, "feature config")


@lru_cache(maxsize=8)
def _mel_basis(cfg: FeatureConfig) -> np.ndarray:
    return mel_filters(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                       fmax=cfg.fmax).astype(np.float32)


def resample(audio: np.ndarray, sr: int, cfg: FeatureConfig) -> np.ndarray:
    """Mono float32 audio at `sr` to the feature rate."""
    if sr == cfg.sample_rate:
        return audio
    return soxr.resample(audio, sr, cfg.sample_rate, quality="HQ").astype(np.float32, copy=False)


def _padded_log_mel(padded: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel of every whole frame of an already centre-padded signal at the feature rate."""
    stft = librosa_stft(padded, n_fft=cfg.n_fft, hop_length=cfg.hop_length, center=False)
    power = stft.real**2 + stft.imag**2
    with threadpool_limits(1):  # one BLAS thread: the same bits whatever the machine's or pool's thread count
        mel = _mel_basis(cfg) @ power
    return (10.0 * np.log10(np.maximum(mel, cfg.amin))).astype(np.float32)


def log_mel(audio: np.ndarray, sr: int, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel spectrogram float32 [n_mels, 1 + len(resampled)//hop] of mono audio at rate `sr`."""
    y = resample(np.asarray(audio, dtype=np.float32), sr, cfg)
    return _padded_log_mel(np.pad(y, cfg.n_fft // 2), cfg)


class LogMelStream:
    """`log_mel` over a signal fed in chunks, in bounded memory: push chunks, get the frames they complete.

    Frames equal `log_mel` of the whole signal exactly at the feature rate; at other rates, up to the
    streaming resampler's difference from the one-shot one.
    """

    def __init__(self, sr: int, cfg: FeatureConfig):
        self.cfg = cfg
        self.resampler = None if sr == cfg.sample_rate else soxr.ResampleStream(sr, cfg.sample_rate, 1,
                                                                               dtype="float32", quality="HQ")
        self.buf = np.zeros(cfg.n_fft // 2, dtype=np.float32)  # the centre padding before the first frame

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
        out = _padded_log_mel(self.buf[: (n - 1) * hop + n_fft], self.cfg)
        self.buf = self.buf[n * hop :]
        return out


def normalise(spec: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Log-mel [n_mels, T] -> the model's input [1, n_mels, T] with the train split's per-bin statistics."""
    return ((spec - mean[:, None]) / std[:, None]).astype(np.float32)[None]


def seconds_to_frames(seconds: float, frame_rate: float) -> int:
    """The one rounding rule from seconds to feature frames (window lengths and hops), at least one frame."""
    return max(1, round(seconds * frame_rate))


def frame_positions(n_frames: int, cfg: FeatureConfig, rate: float) -> np.ndarray:
    """Centre of each frame as a sample index at `rate` (e.g. the label file's own rate)."""
    return np.round(np.arange(n_frames) * cfg.hop_length * rate / cfg.sample_rate).astype(np.int64)
