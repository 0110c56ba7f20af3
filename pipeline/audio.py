"""Decoding audio files to mono float32, with a clear error for unreadable or truncated files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


class AudioError(Exception):
    """An audio file that cannot be used; the message names the file and the reason."""


def audio_info(path: Path) -> tuple[int, int]:
    """(frames, sample rate) from the header, without decoding."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: unreadable audio ({exc})") from exc
    return int(info.frames), int(info.samplerate)


def load_audio(path: Path, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, int]:
    """Decode [start, stop) frames, downmixed to mono float32. A file shorter than its header says is an error."""
    frames, sr = audio_info(path)
    stop = frames if stop is None else min(stop, frames)
    try:
        data, sr = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: unreadable audio ({exc})") from exc
    if len(data) < stop - start:
        raise AudioError(f"{path}: truncated audio (header says {frames} frames, only {start + len(data)} decode)")
    if frames == 0:
        raise AudioError(f"{path}: empty audio")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    return np.ascontiguousarray(mono, dtype=np.float32), sr
