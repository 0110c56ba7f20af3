"""Decoding audio files to mono float32, with a clear error for unreadable or truncated files."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf


class AudioError(Exception):
    """An audio file that cannot be used; the message names the file and the reason."""


def _check_wav_complete(path: Path) -> None:
    """libsndfile silently shortens a truncated WAV; compare the data chunk's declared size with the file."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk, n = struct.unpack("<4sI", fh.read(8))
            if chunk == b"data":
                if pos + 8 + n > size:
                    raise AudioError(f"{path}: truncated audio (data chunk declares {n} bytes, "
                                     f"file holds {size - pos - 8})")
                return
            pos += 8 + n + (n & 1)


def audio_info(path: Path) -> tuple[int, int]:
    """(frames, sample rate) from the header, without decoding; truncated WAVs are refused here."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: unreadable audio ({exc})") from exc
    _check_wav_complete(path)
    if info.frames == 0:
        raise AudioError(f"{path}: empty audio")
    return int(info.frames), int(info.samplerate)


def load_audio(path: Path) -> tuple[np.ndarray, int]:
    """Decode a whole file, downmixed to mono float32. A file shorter than its header says is an error."""
    frames, sr = audio_info(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: unreadable audio ({exc})") from exc
    if len(data) < frames:
        raise AudioError(f"{path}: truncated audio (header says {frames} frames, {len(data)} decode)")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    return np.ascontiguousarray(mono, dtype=np.float32), sr
