"""musicid-predict from a user's first command: `--help`, and a 5-second clip end to end (a fresh
process, the shipped model on ONNX Runtime), against the same clip on the PyTorch path in the same
run; and, with --install, the size on disk of the base install (`pip install musicid`, no PyTorch)
in a new venv.
Usage: python benchmarks/startup.py [--repeats 5] [--install]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def wall(cmd: list[str], repeats: int) -> float:
    """Median wall seconds of a command run `repeats` times (each a fresh process)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--install", action="store_true", help="Also measure the base install's size (about 1 min)."
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.wav"
        t = np.arange(5 * 44100) / 44100
        sf.write(clip, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100)
        predict = [
            str(BIN / "musicid-predict"),
            str(clip),
            "-o",
            str(Path(tmp) / "out"),
            "--overwrite",
        ]
        helped = wall([str(BIN / "musicid-predict"), "--help"], args.repeats)
        onnx = wall([*predict, "--runtime", "onnx"], args.repeats)
        torch = wall([*predict, "--runtime", "torch"], args.repeats)
        print(
            f"musicid-predict --help: {helped:.2f} s; a 5-s clip end to end (csv, json, png, "
            "events): "
            f"{onnx:.2f} s on ONNX Runtime, {torch:.2f} s on PyTorch (medians of {args.repeats})"
        )
        if args.install:
            venv = Path(tmp) / "venv"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True)
            print(
                f"base install (pip install musicid, no PyTorch): {folder_mb(venv):.0f} MB on "
                "disk, against "
                f"{folder_mb(BIN.parent):.0f} MB for this environment (everything: training, "
                "render, dev)"
            )


if __name__ == "__main__":
    main()
