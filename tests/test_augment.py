"""Audio mixup: windows mixed as sounds (power domain), labels united."""

from __future__ import annotations

import torch

from musicid.train.augment import mix_sources


def test_mix_is_a_power_domain_sum_with_label_union():
    mean, std = torch.full((4,), -50.0), torch.full((4,), 10.0)
    db = torch.tensor([-30.0, -60.0, -45.0]).view(3, 1, 1, 1).expand(3, 1, 4, 5)
    x = (db + 50.0) / 10.0
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    torch.manual_seed(0)
    lam = torch.distributions.Beta(1.0, 1.0).sample((3,))
    perm = torch.randperm(3)
    torch.manual_seed(0)
    mx, my = mix_sources(x, y, mean, std, alpha=1.0)
    power = 10 ** (db / 10)
    expected = lam.view(-1, 1, 1, 1) * power + (1 - lam.view(-1, 1, 1, 1)) * power[perm]
    assert torch.allclose(10 ** ((mx * 10.0 - 50.0) / 10), expected, rtol=1e-4)
    assert torch.equal(my, torch.maximum(y, y[perm]))


def test_recording_conditions_change_levels_not_shapes_and_follow_the_seed():
    from musicid.train.augment import recording_conditions

    mean, std = torch.full((16,), -50.0), torch.full((16,), 10.0)
    x = torch.randn(8, 1, 16, 20)
    torch.manual_seed(3)
    a = recording_conditions(x, mean, std, frame_rate=86.0, p=1.0)
    torch.manual_seed(3)
    b = recording_conditions(x, mean, std, frame_rate=86.0, p=1.0)
    assert a.shape == x.shape and torch.equal(a, b) and torch.isfinite(a).all()
    assert not torch.allclose(a, x)
    # identity
    assert torch.allclose(recording_conditions(x, mean, std, frame_rate=86.0, p=0.0), x, atol=1e-4)
