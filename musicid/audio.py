"""Decoding audio files to mono float32 chunks: libsndfile for containers that state their exact
length (PCM WAV, FLAC, AIFF, ...), FFmpeg (PyAV, a wheel with its libraries inside) for compressed
formats and for what libsndfile cannot read: MP3, Ogg/Opus, AAC/M4A, and the sound of video files
(MP4, MKV, WebM).

Why not libsndfile for MP3 and Ogg: their frame count is only an estimate (encoder delay and
padding, VBR), and libsndfile's MP3 decoder can stop a VBR file from LAME early without an error.
Only an exact container can be called truncated; compressed files decode to their end, whatever it
is. Both paths stream in chunks, so memory stays flat in file length.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from musicid.errors import AudioError

log = logging.getLogger("musicid")
# libsndfile formats whose frame count is not exact: FFmpeg's
ESTIMATED_LENGTH = ("MP3", "MPEG", "OGG")
FFMPEG_SUFFIXES = (
    ".mp3",
    ".ogg",
    ".oga",
    ".opus",
    ".m4a",
    ".aac",
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".mka",
    ".webm",
    ".wma",
    ".ac3",
    ".3gp",
    ".avi",
    ".mp2",
)
CHUNK_S = 30.0  # seconds decoded at a time: memory stays flat in file length
AUDIO_SUFFIXES = tuple(
    sorted(
        {f".{e.lower()}" for e in sf.available_formats()}
        | {".mp3", ".oga", ".aif"}
        | set(FFMPEG_SUFFIXES)
    )
)


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    sample_rate: int
    channels: int
    # exact length where the container states it; None where only an estimate exists
    frames: int | None
    backend: str  # "sndfile" or "ffmpeg"


CONTAINERS = {b"RIFF": ("<", (b"WAVE",), b"data"), b"FORM": (">", (b"AIFF", b"AIFC"), b"SSND")}


def _check_complete(path: Path) -> None:
    """libsndfile silently shortens a WAV or AIFF whose header claims more audio than the file
    holds: compare the audio chunk's declared size (WAV `data`, AIFF `SSND`) with what the file
    holds."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(12)
        if (
            len(head) < 12
            or head[:4] not in CONTAINERS
            or head[8:12] not in CONTAINERS[head[:4]][1]
        ):
            return
        order, _, audio_chunk = CONTAINERS[head[:4]]
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk, n = struct.unpack(f"{order}4sI", fh.read(8))
            if chunk == audio_chunk:
                if pos + 8 + n > size:
                    raise AudioError(
                        f"{path}: truncated audio ({chunk.decode()} chunk declares {n} bytes, "
                        f"file holds {size - pos - 8})"
                    )
                return
            pos += 8 + n + (n & 1)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: not readable (permission denied)")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")


def _probe_ffmpeg(path: Path) -> AudioInfo:
    import av  # imported here: only files libsndfile cannot read need FFmpeg

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(f"{path}: holds no audio stream")
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate or 0)
            if rate <= 0:
                raise AudioError(f"{path}: its audio stream states no sample rate")
            return AudioInfo(path, rate, int(stream.codec_context.channels), None, "ffmpeg")
    except av.FFmpegError as exc:
        log.debug("%s: FFmpeg: %s", path, exc)  # the library's words, for --debug
        raise AudioError(f"{path}: not audio, or a format we cannot decode") from exc


def probe(path: Path) -> AudioInfo:
    """Rate, channels and (where exact) length from the header, without decoding; truncated WAVs are
    refused."""
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() in FFMPEG_SUFFIXES:
        return _probe_ffmpeg(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError):
        return _probe_ffmpeg(path)
    if info.format in ESTIMATED_LENGTH:
        return _probe_ffmpeg(path)
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(f"{path}: header states {info.samplerate} Hz and {info.channels} channels")
    _check_complete(path)
    if info.frames == 0:
        raise AudioError(f"{path}: empty audio (0 frames)")
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames), "sndfile")


def _sndfile_chunks(info: AudioInfo, block: int) -> Iterator[np.ndarray]:
    with sf.SoundFile(str(info.path)) as fh:
        while True:
            data = fh.read(block, dtype="float32", always_2d=True)
            if not len(data):
                return
            yield data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]


def _ffmpeg_chunks(info: AudioInfo, block: int) -> Iterator[np.ndarray]:
    import av

    def frames(container, stream, resampler):
        for frame in container.decode(stream):
            yield from resampler.resample(frame)
        yield from resampler.resample(None)  # what the resampler still holds

    pending, held = [], 0
    try:
        with av.open(str(info.path)) as container:
            stream = container.streams.audio[0]
            # planar float, channels kept
            resampler = av.AudioResampler(format="fltp", rate=info.sample_rate)
            for frame in frames(container, stream, resampler):
                pending.append(frame.to_ndarray().mean(axis=0, dtype=np.float32))
                held += pending[-1].size
                if held >= block:
                    yield np.concatenate(pending)
                    pending, held = [], 0
    except av.FFmpegError as exc:
        raise AudioError(f"{info.path}: decoding failed ({exc})") from exc
    if pending:
        yield np.concatenate(pending)


def stream_audio(info: AudioInfo, chunk_s: float = CHUNK_S) -> Iterator[np.ndarray]:
    """Mono float32 chunks of about `chunk_s` seconds at the file's own rate, to the end of the
    audio.

    A file shorter than its exact header says, a decoding error, or NaN/inf samples raise
    AudioError."""
    block = max(1, int(chunk_s * info.sample_rate))
    chunks = (
        _sndfile_chunks(info, block) if info.backend == "sndfile" else _ffmpeg_chunks(info, block)
    )
    done = 0
    try:
        for chunk in chunks:
            if not np.isfinite(chunk).all():
                at = (done + int(np.argmin(np.isfinite(chunk)))) / info.sample_rate
                raise AudioError(
                    f"{info.path}: audio contains NaN or infinite samples (first at {at:.2f} s)"
                )
            done += len(chunk)
            yield np.ascontiguousarray(chunk, dtype=np.float32)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(
            f"{info.path}: decoding failed after {done / info.sample_rate:.2f} s ({exc})"
        ) from exc
    if info.frames is not None and done < info.frames:
        raise AudioError(
            f"{info.path}: truncated audio (header says {info.frames} frames, {done} decode)"
        )
    if done == 0:
        raise AudioError(f"{info.path}: no audio samples decode")


def load_audio(path: Path) -> tuple[np.ndarray, int]:
    """Decode a whole file, downmixed to mono float32, at its own rate."""
    info = probe(path)
    return np.concatenate(list(stream_audio(info))), info.sample_rate
