"""The three training losses, all on logits (the sigmoid is applied inside, for numerical
stability)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from musicid.errors import InputError

LOSSES = ("bce", "iou", "mse")


def bce_loss(
    logits: torch.Tensor, target: torch.Tensor, pos_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary cross-entropy, optionally with per-class positive weights (e.g. from the manifest
    prior)."""
    return F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)


def iou_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """The prior work's class-balanced loss: soft FN / N_playing + soft FP / N_not_playing over the
    batch.

    Soft counts use squared errors of the sigmoid outputs, pooled over the batch, as the prior work
    did. `eps` in the denominators keeps a batch with no positives (or no negatives) finite: that
    term is then 0.
    """
    p = torch.sigmoid(logits)
    fn = ((1 - p) ** 2 * target).sum()
    fp = (p**2 * (1 - target)).sum()
    return fn / (target.sum() + eps) + fp / ((1 - target).sum() + eps)


def mse_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between sigmoid outputs and the many-hot target."""
    return F.mse_loss(torch.sigmoid(logits), target)


def make_loss(name: str, pos_weight: torch.Tensor | None = None):
    """The loss function for a `--loss` name; `pos_weight` applies to bce only."""
    if name == "bce":
        return lambda logits, target: bce_loss(logits, target, pos_weight)
    if name == "iou":
        return iou_loss
    if name == "mse":
        return mse_loss
    raise InputError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
