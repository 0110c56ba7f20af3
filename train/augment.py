"""Batch-level mixup for audio: two windows summed as sounds, their instrument sets united.

Mixing normalised log-mels linearly (image mixup) is not what a mixture of sources sounds like. Here the
log-mels are taken back to mel power, mixed with a per-sample weight lam ~ Beta(alpha, alpha), and
taken to normalised log-mel again: the mix is what the two windows would give if they sounded together,
so the union of their labels is the right target.
"""

from __future__ import annotations

import torch


def mix_sources(x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, alpha: float,
                amin: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """x: normalised log-mel [B, 1, M, T]; y: many-hot [B, C]; mean/std: [M] per-bin statistics (dB)."""
    m, s = mean.view(1, 1, -1, 1), std.view(1, 1, -1, 1)
    power = torch.pow(10.0, (x * s + m) / 10.0)
    lam = torch.distributions.Beta(alpha, alpha).sample((len(x),)).to(x.device).view(-1, 1, 1, 1)
    perm = torch.randperm(len(x), device=x.device)
    mixed = lam * power + (1 - lam) * power[perm]
    return (10.0 * torch.log10(mixed.clamp_min(amin)) - m) / s, torch.maximum(y, y[perm])
