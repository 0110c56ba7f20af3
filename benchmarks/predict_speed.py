"""musicid-predict: real-time factor on a 10-minute recording and peak RSS on a 60-minute one (CPU).

The model is an untrained ResNet18 in a complete checkpoint (inference cost does not depend on the
weights); audio is synthetic (a string quartet), written in one-minute pieces so the benchmark itself
stays small. Real-time factor: median of --repeats runs of predict_file at the default 0.5 s hop.
Usage: python benchmarks/predict_speed.py [--minutes 10] [--long-minutes 60]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from rss import peak_rss_mb

from musicid.features import LogMel
from musicid.infer.predict import predict_file
from musicid.network import build_model
from musicid.pipeline.synth import RATE, render_recording
from musicid.run import Checkpoint, ModelCard
from musicid.vocab import vocabulary
from musicid.windows import WindowConfig

PREDICT = ("import torch; torch.set_num_threads(2); from musicid.infer.predict import predict_file; "
           "p = predict_file({wav!r}, {ckpt!r}); print(len(p.starts))")


def write_audio(path: Path, minutes: float) -> None:
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", RATE, 1, "PCM_16") as fh:
        for _ in range(int(np.ceil(minutes))):
            fh.write(render_recording("String Quartet", 60.0, rng)[0])


def write_checkpoint(path: Path) -> None:
    cfg, win = LogMel(), WindowConfig()
    card = ModelCard(cfg, win, win.frames(cfg.frame_rate)[0], vocabulary(),
                     {"mean": [-60.0] * cfg.n_mels, "std": [20.0] * cfg.n_mels}, {}, "top3")
    Checkpoint(build_model().state_dict(), card).save(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--long-minutes", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        short, long, ckpt = Path(tmp) / "short.wav", Path(tmp) / "long.wav", Path(tmp) / "model.pt"
        write_checkpoint(ckpt)
        write_audio(short, args.minutes)
        rtf = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            pred = predict_file(short, ckpt)
            rtf.append(pred.duration_s / (time.perf_counter() - t))
        write_audio(long, args.long_minutes)
        rss = peak_rss_mb(PREDICT.format(wav=str(long), ckpt=str(ckpt)))
        rss_short = peak_rss_mb(PREDICT.format(wav=str(short), ckpt=str(ckpt)))
        decoded_mb = args.long_minutes * 60 * RATE * 4 / 2**20
    print(f"{args.minutes:.0f}-min recording, {len(pred.starts)} windows, CPU {torch.get_num_threads()} threads: "
          f"{statistics.median(rtf):.0f}x real time (runs {[round(r) for r in rtf]})")
    print(f"peak RSS: {rss_short:.0f} MB for {args.minutes:.0f} min, {rss:.0f} MB for {args.long_minutes:.0f} min "
          f"(the whole {args.long_minutes:.0f}-min signal decoded as float32 alone would be {decoded_mb:.0f} MB)")


if __name__ == "__main__":
    main()
