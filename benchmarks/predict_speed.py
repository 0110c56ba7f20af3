"""musicid-predict's throughput and memory on ONNX Runtime, against the PyTorch window path in the
same run (CPU): real-time factor on a 10-minute recording and peak RSS on a 60-minute one.

The model is an untrained ResNet18 run (checkpoint and its ONNX export; inference cost does not
depend on the weights); audio is synthetic (a string quartet), written in one-minute pieces so the
benchmark itself stays small. Real-time factor: median of --repeats runs of predict_file at the
default 0.5 s hop, model loaded once. The processor's name and its vector extensions are printed
with the figures: they decide them.
Usage: python benchmarks/predict_speed.py [--minutes 10] [--long-minutes 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from rss import peak_rss_mb

from musicid.features import LogMel
from musicid.infer.loaded import load_run
from musicid.infer.predict import predict_file
from musicid.network import build_model, export_checkpoint
from musicid.pipeline.synth import RATE, render_recording
from musicid.run import Checkpoint, ModelCard
from musicid.vocab import vocabulary
from musicid.windows import WindowConfig

PREDICT = (
    "{threads}from musicid.infer.loaded import load_run; from musicid.infer.predict import "
    "predict_file; "
    "p = predict_file({wav!r}, load_run({run!r}, runtime={runtime!r})); print(len(p.starts))"
)


def write_audio(path: Path, minutes: float) -> None:
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", RATE, 1, "PCM_16") as fh:
        for _ in range(int(np.ceil(minutes))):
            fh.write(render_recording("String Quartet", 60.0, rng)[0])


def write_run(folder: Path) -> Path:
    """A run folder holding an untrained network's checkpoint and its ONNX export."""
    folder.mkdir()
    cfg, win = LogMel(), WindowConfig()
    card = ModelCard(
        cfg,
        win,
        win.frames(cfg.frame_rate)[0],
        vocabulary(),
        {"mean": [-60.0] * cfg.n_mels, "std": [20.0] * cfg.n_mels},
        {},
        "top3",
    )
    Checkpoint(build_model().state_dict(), card).save(folder / "best.pt")
    export_checkpoint(folder / "best.pt")
    return folder


def processor() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next(
        (
            line.split(":", 1)[1].strip()
            for line in info.splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    flags = next(
        (line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")),
        [],
    )
    vector = [
        f
        for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
        if f in flags
    ]
    return f"{name}, {os.cpu_count()} cores, {' '.join(vector) or 'no AVX2'}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--long-minutes", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--threads", type=int, default=2, help="PyTorch's threads (ONNX Runtime: one per core)."
    )
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        short, long, run = (
            Path(tmp) / "short.wav",
            Path(tmp) / "long.wav",
            write_run(Path(tmp) / "run"),
        )
        write_audio(short, args.minutes)
        rtf = {}
        for runtime in ("onnx", "torch"):
            loaded = load_run(run, runtime=runtime)
            runs = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                pred = predict_file(short, loaded)
                runs.append(pred.duration_s / (time.perf_counter() - t))
            rtf[runtime] = runs
        write_audio(long, args.long_minutes)
        threads = {"onnx": "", "torch": f"import torch; torch.set_num_threads({args.threads}); "}
        rss = {
            name: [
                peak_rss_mb(
                    PREDICT.format(threads=threads[name], wav=str(w), run=str(run), runtime=name)
                )
                for w in (short, long)
            ]
            for name in ("onnx", "torch")
        }
    print(f"processor: {processor()}")
    o, t = statistics.median(rtf["onnx"]), statistics.median(rtf["torch"])
    print(
        f"{args.minutes:.0f}-min recording, {len(pred.starts)} windows at 0.5 s hop: ONNX Runtime "
        f"{o:.0f}x real "
        f"time (runs {[round(r) for r in rtf['onnx']]}), PyTorch {t:.0f}x (runs "
        f"{[round(r) for r in rtf['torch']]}, "
        f"{args.threads} threads): {o / t:.1f}x faster"
    )
    for name, (a, b) in rss.items():
        print(
            f"peak RSS, {'ONNX Runtime' if name == 'onnx' else 'PyTorch'}: {a:.0f} MB for "
            f"{args.minutes:.0f} min, "
            f"{b:.0f} MB for {args.long_minutes:.0f} min"
        )


if __name__ == "__main__":
    main()
