"""Splitting by recording: the test folder is `test`; `val` is a seeded, ensemble-stratified share
of train.

Each ensemble with at least two recordings gives floor(fraction · n) to val (never its last
recording); the rest of the val quota goes first to ensembles that got none, rarest first, so rare
instruments reach val, then by largest remainder. No recording is ever in two splits.
"""

from __future__ import annotations

import zlib
from collections import defaultdict

import numpy as np

SPLITS = ("train", "val", "test")


def stable_seed(*parts: object) -> list[int]:
    """A seed sequence from strings and ints that does not depend on Python's hash randomisation."""
    return [zlib.crc32(str(p).encode()) for p in parts]


def assign_splits(
    folders: dict[str, str], ensembles: dict[str, str], val_fraction: float, seed: int
) -> dict[str, str]:
    """Map recording id -> split, given its MusicNet folder ('train'/'test') and ensemble."""
    split = {rid: ("test" if folder == "test" else "train") for rid, folder in folders.items()}
    groups: dict[str, list[str]] = defaultdict(list)
    for rid in sorted(r for r, s in split.items() if s == "train"):
        groups[ensembles.get(rid) or "unknown"].append(rid)
    n_train = sum(len(g) for g in groups.values())
    quota = int(round(val_fraction * n_train)) if val_fraction > 0 else 0
    take = {
        e: min(int(val_fraction * len(g)), len(g) - 1) if len(g) > 1 else 0
        for e, g in groups.items()
    }

    def spare(e: str) -> int:
        return len(groups[e]) - 1 - take[e]

    order = sorted(
        groups, key=lambda e: (take[e] > 0, len(groups[e]), -(val_fraction * len(groups[e]) % 1), e)
    )
    while sum(take.values()) < quota and any(spare(e) > 0 for e in groups):
        for e in order:
            if sum(take.values()) >= quota:
                break
            if spare(e) > 0:
                take[e] += 1
    for e, members in sorted(groups.items()):
        rng = np.random.default_rng(stable_seed(seed, "val", e))
        for rid in rng.permutation(members)[: take[e]]:
            split[str(rid)] = "val"
    return split
