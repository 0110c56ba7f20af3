"""Audio files made by other tools than musicid's own writer: LAME (lameenc) MP3s, FFmpeg (PyAV)
AAC/Opus/ Vorbis in M4A/MP4/MKV/WebM/Ogg, and WAV headers built by hand."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import lameenc
import numpy as np


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    """A sine [n, channels] float32 at 0.3 of full scale (the second channel at half level)."""
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x, 0.5 * x][:channels], axis=1)


def write_mp3(path: Path, audio: np.ndarray, rate: int, vbr: bool) -> Path:
    enc = lameenc.Encoder()
    enc.set_in_sample_rate(rate)
    enc.set_channels(audio.shape[1])
    enc.set_quality(2)
    if vbr:
        enc.set_vbr(4)
        enc.set_vbr_quality(4)
    else:
        enc.set_bit_rate(128)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    path.write_bytes(enc.encode(pcm.tobytes()) + enc.flush())
    return path


def write_ffmpeg(path: Path, audio: np.ndarray, rate: int, codec: str) -> Path:
    """Encode with FFmpeg through PyAV; the container follows the file's extension."""
    layout = "stereo" if audio.shape[1] == 2 else "mono"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = layout
        frame_fmt = "fltp" if codec in ("aac", "libvorbis", "vorbis") else "flt"
        step = 1024
        for i in range(0, len(audio), step):
            chunk = audio[i : i + step]
            data = np.ascontiguousarray(chunk.T) if frame_fmt == "fltp" else chunk.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(data, format=frame_fmt, layout=layout)
            frame.rate, frame.pts = rate, i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_float_wav(path: Path, audio: np.ndarray, rate: int) -> Path:
    """A 32-bit float WAV with a header written byte by byte (as a DAW would), NaN and inf
    allowed."""
    data = audio.astype("<f4").tobytes()
    ch = audio.shape[1]
    fmt = struct.pack("<HHIIHH", 3, ch, rate, rate * ch * 4, ch * 4, 32)
    path.write_bytes(
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    return path
