"""Loss functions and metrics on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musicid.errors import InputError
from musicid.metrics import calibrate_thresholds, macro_f1, per_class_ap
from musicid.train.losses import bce_loss, iou_loss, make_loss, mse_loss

LOGIT_09 = math.log(0.9 / 0.1)  # sigmoid -> 0.9


def test_iou_loss_hand_computed():
    # p = [[0.9, 0.1], [0.1, 0.9]], y = [[1, 0], [1, 1]]: soft FN = 0.1^2 + 0.9^2 + 0.1^2 = 0.83
    # over 3 positives, soft FP = 0.1^2 = 0.01 over 1 negative; eps = 1 in both denominators.
    logits = torch.tensor([[LOGIT_09, -LOGIT_09], [-LOGIT_09, LOGIT_09]])
    y = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert iou_loss(logits, y).item() == pytest.approx(0.83 / 4 + 0.01 / 2, rel=1e-5)


def test_iou_loss_is_finite_without_positives_or_negatives():
    logits = torch.tensor([[LOGIT_09, -LOGIT_09]])
    # FP only
    assert iou_loss(logits, torch.zeros(1, 2)).item() == pytest.approx((0.81 + 0.01) / 3, rel=1e-5)
    assert iou_loss(logits, torch.ones(1, 2)).item() == pytest.approx((0.01 + 0.81) / 3, rel=1e-5)


def test_bce_and_mse_hand_computed():
    logits = torch.tensor([[LOGIT_09, -LOGIT_09]])
    y = torch.tensor([[1.0, 1.0]])
    assert bce_loss(logits, y).item() == pytest.approx(
        -(math.log(0.9) + math.log(0.1)) / 2, rel=1e-5
    )
    weighted = bce_loss(logits, y, pos_weight=torch.tensor([1.0, 3.0]))
    assert weighted.item() == pytest.approx(-(math.log(0.9) + 3 * math.log(0.1)) / 2, rel=1e-5)
    assert mse_loss(logits, y).item() == pytest.approx((0.01 + 0.81) / 2, rel=1e-5)
    assert make_loss("mse")(logits, y).item() == pytest.approx(mse_loss(logits, y).item())
    with pytest.raises(InputError, match="unknown loss"):
        make_loss("hinge")


def test_average_precision_matches_hand_computed():
    # Ranked: 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.1 (neg): AP = 1/2 * 1 + 1/2 * 2/3.
    probs = np.array([[0.9, 0.3, 0.5], [0.8, 0.2, 0.5], [0.7, 0.2, 0.5], [0.1, 0.2, 0.5]])
    labels = np.array([[1, 0, 1], [0, 0, 0], [1, 0, 0], [0, 0, 0]])
    ap = per_class_ap(probs, labels)
    assert ap[0] == pytest.approx(5 / 6) and math.isnan(ap[1])
    # Ties count as one threshold: all 0.5 -> precision 1/4 at recall 1.
    assert ap[2] == pytest.approx(0.25)


def test_macro_f1_leaves_out_absent_classes():
    labels = np.array([[1, 0, 0], [1, 1, 0]])
    pred = np.array([[1, 0, 1], [0, 1, 0]])
    # class 0: tp 1, fn 1 -> 2/3; class 1: 1.0; class 2 absent (its FP is not averaged in as a 0).
    assert macro_f1(pred, labels) == pytest.approx((2 / 3 + 1) / 2)


def test_calibrated_threshold_maximises_f1():
    probs = np.array([[0.9], [0.6], [0.55], [0.2]])
    labels = np.array([[1], [1], [0], [0]])
    thr, fallback = calibrate_thresholds(probs, labels, 0.5)
    assert 0.55 < thr[0] <= 0.6 and fallback == []
    thr, fallback = calibrate_thresholds(probs, np.zeros_like(labels), 0.5)
    assert thr[0] == 0.5 and fallback == [0]
