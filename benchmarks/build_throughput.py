"""build-shards throughput vs. the prior work's way, on the same synthetic audio, in one run.

Ours: `build_shards(workers=2)` (one decode + one STFT per recording, shards written).
Prior work's way: the wav cached, one sample per merged span cropped or tiled to 10,240
samples, a power spectrogram (n_fft 400, hop 200) per sample copied into 3 channels.
Per-window variant: the same cached-wav, per-sample way on our own 1 s / 0.5 s windows and log-mel,
to separate the effect of the sample definition from the once-per-recording features.
Both baselines run in 2 worker processes. Also: re-indexing a 10,000-note recording.
Prints medians of --repeats runs. Usage: python benchmarks/build_throughput.py [--minutes 20]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from musicid.audio import load_audio
from musicid.features import LogMel, power_spectrogram
from musicid.pipeline.build import BuildConfig, build_shards
from musicid.pipeline.labels import Notes, read_labels
from musicid.pipeline.layout import Recording, find_recordings
from musicid.pipeline.spans import merge_spans
from musicid.pipeline.synth import synthesize


def prior_way(rec: Recording) -> int:
    """The prior work's samples: every merged span, cropped/tiled to 10,240 samples, spectrogram
    each."""
    audio, sr = load_audio(rec.audio)  # the prior work cached the last wav loaded
    spans = merge_spans(read_labels(rec.labels, len(audio))[0])
    for start, end in zip(spans.start, spans.end, strict=True):
        # tile a short span up to length
        crop = np.resize(audio[start : min(end, start + 10240)], 10240)
        spec = power_spectrogram(np.pad(crop, 200, mode="constant"), 400, 200)
        np.repeat(spec[None], 3, axis=0).astype(np.float32)
    return len(spans)


def per_window_way(rec: Recording) -> int:
    """Per-sample crop of the cached wav + our log-mel per sample, for every 1 s window at 0.5 s
    hop."""
    cfg = LogMel()
    audio, sr = load_audio(rec.audio)
    win, hop = sr, sr // 2
    starts = range(0, len(audio) - win + 1, hop)
    for start in starts:
        cfg.compute(audio[start : start + win], sr).astype(np.float16)
    return len(starts)


def baseline_speed(fn, recordings: list[Recording], audio_s: float) -> tuple[float, int]:
    t = time.perf_counter()
    with mp.get_context("fork").Pool(2) as pool:
        n = sum(pool.map(fn, recordings))
    return audio_s / (time.perf_counter() - t), n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        n_rec = int(args.minutes * 2)
        synthesize(root, recordings=n_rec, seconds=30.0, seed=0)
        audio_s = n_rec * 30.0
        recordings = find_recordings(root)[0]
        ours, prior, window = [], [], []
        for i in range(args.repeats):
            t = time.perf_counter()
            m = build_shards(root, Path(tmp) / f"out{i}", BuildConfig(), workers=2).manifest
            ours.append(audio_s / (time.perf_counter() - t))
            speed, n_spans = baseline_speed(prior_way, recordings, audio_s)
            prior.append(speed)
            window.append(baseline_speed(per_window_way, recordings, audio_s)[0])
    n_ours = sum(s.samples for s in m.splits.values())
    rng = np.random.default_rng(0)
    start = np.sort(rng.integers(0, 44100 * 600, 10_000))
    notes = Notes(
        start,
        start + rng.integers(2000, 80000, 10_000),
        rng.integers(0, 11, 10_000),
        rng.integers(21, 109, 10_000),
    )
    index_s = []
    for _ in range(5):
        t = time.perf_counter()
        merge_spans(notes)
        index_s.append(time.perf_counter() - t)
    print(f"audio: {audio_s / 60:.0f} min synthetic, 2 workers, median of {args.repeats}")
    for name, runs, n in (
        ("build-shards", ours, n_ours),
        ("prior work's way", prior, n_spans),
        ("per-window crops", window, n_ours),
    ):
        print(
            f"{name:<18}{statistics.median(runs):8.0f}x real time  ({n} samples)  runs: "
            f"{[round(x) for x in runs]}"
        )
    print(
        f"speed-up vs prior work's way: {statistics.median(ours) / statistics.median(prior):.1f}x; "
        f"vs per-window crops: {statistics.median(ours) / statistics.median(window):.1f}x"
    )
    print(f"re-index 10,000 notes: {statistics.median(index_s) * 1000:.1f} ms (median of 5)")


if __name__ == "__main__":
    main()
