"""Training samples/s of the ResNet18 on default 1 s windows (128 x 86 log-mel), batch 32.

Forward + backward + AdamW step on synthetic tensors (the loader is measured in loader.py), as the
trainer runs them: channels_last, and bf16 autocast where `--precision auto` picks it (CUDA; CPUs
with AVX512-BF16 or AMX). Baseline in the same run: fp32 with the default memory format (neither
bf16 nor channels_last). Median of --repeats timings.
Usage: python benchmarks/train_speed.py [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from musicid.network import build_model, use_bf16
from musicid.train.losses import bce_loss


def samples_per_s(
    device: torch.device, steps: int, repeats: int, bf16: bool, channels_last: bool, batch: int = 32
) -> list[float]:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model().to(device, memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, 128, 86, device=device).contiguous(memory_format=fmt)
    y = (torch.rand(batch, 11, device=device) > 0.7).float()
    out = []
    for r in range(repeats + 1):  # the first pass warms up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(steps):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(x)
            loss = bce_loss(logits.float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if device.type == "cuda":
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
        name = (
            torch.cuda.get_device_name(d)
            if d.type == "cuda"
            else f"CPU, {torch.get_num_threads()} threads"
        )
        steps = args.steps if d.type == "cpu" else 10 * args.steps
        auto = use_bf16(d, "auto")
        for label, bf16, cl in (
            ("baseline fp32, default memory format", False, False),
            ("fp32, channels_last", False, True),
            (
                f"trainer default (--precision auto = {'bf16' if auto else 'fp32'}), channels_last",
                auto,
                True,
            ),
        ):
            runs = samples_per_s(d, steps, args.repeats, bf16, cl)
            print(
                f"{name}, {label}: {statistics.median(runs):.0f} samples/s (runs "
                f"{[round(r) for r in runs]})"
            )


if __name__ == "__main__":
    main()
