"""Training samples/s of the ResNet18 on default 1 s windows (128 x 86 log-mel), batch 32.

Forward + backward + AdamW step on synthetic tensors (the loader is measured in loader.py), on the CPU
and, where one is present, on CUDA with bf16 autocast and channels_last. Median of --repeats timings.
Usage: python benchmarks/train_speed.py [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from musicid.infer.model import build_model
from musicid.train.losses import bce_loss


def samples_per_s(device: torch.device, steps: int, repeats: int, batch: int = 32) -> list[float]:
    model = build_model().to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, 128, 86, device=device)
    y = (torch.rand(batch, 11, device=device) > 0.7).float()
    out = []
    for r in range(repeats + 1):  # the first pass warms up
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(steps):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                logits = model(x.contiguous(memory_format=torch.channels_last) if cuda else x)
            loss = bce_loss(logits.float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if cuda:
            torch.cuda.synchronize()
        if r:
            out.append(steps * batch / (time.perf_counter() - t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for d in devices:
        name = torch.cuda.get_device_name(d) if d.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        runs = samples_per_s(d, args.steps if d.type == "cpu" else 10 * args.steps, args.repeats)
        print(f"{name}: {statistics.median(runs):.0f} samples/s (runs {[round(r) for r in runs]})")


if __name__ == "__main__":
    main()
