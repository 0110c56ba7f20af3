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
