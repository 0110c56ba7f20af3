"""Training augmentation: SpecAugment per sample (in the reader's workers), and batch-level
augmentation in the power domain: mixup of sounds, and recording conditions.

Mixup: two windows summed as sounds, their instrument sets united.

Mixing normalised log-mels linearly (image mixup) is not what a mixture of sources sounds like. Here
the log-mels are taken back to mel power, mixed with a per-sample weight lam ~ Beta(alpha, alpha),
and taken to normalised log-mel again: the mix is what the two windows would give if they sounded
together, so the union of their labels is the right target.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from musicid.features import Features, LogMel


@dataclass(frozen=True)
class SpecAugment:
    """Zero (= the train mean after normalisation) a few mel bands and time spans of a normalised
    log-mel."""

    freq_masks: int = 2
    freq_width: int = 16
    time_masks: int = 2
    time_width: int = 12

    def __call__(self, spec: np.ndarray, rng: random.Random) -> np.ndarray:
        spec = spec.copy()
        _, n_mels, n_frames = spec.shape
        for _ in range(self.freq_masks):
            w = rng.randint(0, self.freq_width)
            f = rng.randint(0, max(n_mels - w, 0))
            spec[:, f : f + w, :] = 0.0
        for _ in range(self.time_masks):
            w = rng.randint(0, self.time_width)
            t = rng.randint(0, max(n_frames - w, 0))
            spec[:, :, t : t + w] = 0.0
        return spec


def _db(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Normalised features [B, 1, M, T] back to the features' own scale, with the per-bin statistics
    [M] they were normalised by."""
    return x * std.view(1, 1, -1, 1) + mean.view(1, 1, -1, 1)


def _normalised(
    power: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, features: Features
) -> torch.Tensor:
    """Power to normalised features, as the feature kind computes them, then per bin."""
    return (features.from_power(power, torch) - mean.view(1, 1, -1, 1)) / std.view(1, 1, -1, 1)


def mix_sources(
    x: torch.Tensor,
    y: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    alpha: float,
    features: Features = LogMel(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """x: normalised features [B, 1, M, T]; y: many-hot [B, C]; mean/std: [M] per-bin statistics."""
    power = features.to_power(_db(x, mean, std))
    lam = torch.distributions.Beta(alpha, alpha).sample((len(x),)).to(x.device).view(-1, 1, 1, 1)
    perm = torch.randperm(len(x), device=x.device)
    mixed = lam * power + (1 - lam) * power[perm]
    return _normalised(mixed, mean, std, features), torch.maximum(y, y[perm])


def recording_conditions(
    x: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    frame_rate: float,
    p: float,
    features: Features = LogMel(),
) -> torch.Tensor:
    """Recording-condition augmentation of normalised dB-scaled features [B, 1, M, T] (log-mel), in
    the power domain of `features`: each sample gets, each with probability `p`, a gain (-12..+6
    dB), a smooth EQ curve (+-6 dB through 4 random points across the mel bins), a noise floor
    (added power, 25-60 dB under the window's mean level) and a reverberation smear (exponential
    decay along time, 0.1-0.6 s, 10-50 % wet). Draws from torch's global generator, which the
    trainer seeds per epoch: resumable."""
    b, _, m, t = x.shape
    dev = x.device
    db = _db(x, mean, std)

    def on() -> torch.Tensor:
        return (torch.rand(b, 1, 1, 1, device=dev) < p).float()

    db = db + on() * torch.empty(b, 1, 1, 1, device=dev).uniform_(-12, 6)
    points = torch.empty(b, 1, 1, 4, device=dev).uniform_(-6, 6)
    curve = torch.nn.functional.interpolate(
        points.view(b, 1, 4), size=m, mode="linear", align_corners=True
    )
    db = db + on() * curve.view(b, 1, m, 1)
    power = features.to_power(db)
    level = db.mean(dim=(2, 3), keepdim=True) - torch.empty(b, 1, 1, 1, device=dev).uniform_(25, 60)
    power = power + on() * features.to_power(level)
    # -60 dB in RT60
    decay = torch.exp(-6.9 / (torch.empty(b, 1, 1, device=dev).uniform_(0.1, 0.6) * frame_rate))
    wet = on().view(b, 1, 1) * torch.empty(b, 1, 1, device=dev).uniform_(0.1, 0.5)
    smear, out = torch.zeros(b, 1, m, device=dev), []
    for k in range(t):
        smear = power[..., k] + decay * smear
        out.append((1 - wet) * power[..., k] + wet * (1 - decay) * smear)
    power = torch.stack(out, dim=-1)
    return _normalised(power, mean, std, features)
