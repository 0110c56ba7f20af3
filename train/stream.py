"""Streaming a split's shards into training batches with webdataset stages.

Each epoch the shard list is shuffled with `seed + epoch` on every rank alike, *then* split by rank and by
DataLoader worker: ranks see disjoint shards and a new order every epoch. Within a worker a shuffle buffer
(seeded per epoch, rank and worker) mixes samples; SpecAugment masks are drawn from the same generator, so
a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader

from musicid.errors import InputError
from musicid.pipeline.shards import BadShard, collate, read_stages


@dataclass(frozen=True)
class StreamConfig:
    batch_size: int = 32
    shuffle_buffer: int = 2000
    spec_augment: bool = False
    freq_masks: int = 2
    freq_width: int = 16
    time_masks: int = 2
    time_width: int = 12


def epoch_order(urls: list[str], seed: int, epoch: int) -> list[str]:
    """The epoch's shard order: the same on every rank (so the rank split stays disjoint), new each epoch."""
    urls = list(urls)
    random.Random(seed + epoch).shuffle(urls)
    return urls


def rank_shards(urls: list[str], seed: int, epoch: int) -> list[str]:
    """This rank's shards in a training epoch: the epoch's order, then every world_size-th from its rank."""
    return list(wds.split_by_node(epoch_order(urls, seed, epoch)))


def spec_augment(spec: np.ndarray, cfg: StreamConfig, rng: random.Random) -> np.ndarray:
    """SpecAugment: zero (= the train mean after normalisation) a few mel bands and time spans."""
    spec = spec.copy()
    _, n_mels, n_frames = spec.shape
    for _ in range(cfg.freq_masks):
        w = rng.randint(0, cfg.freq_width)
        f = rng.randint(0, max(n_mels - w, 0))
        spec[:, f : f + w, :] = 0.0
    for _ in range(cfg.time_masks):
        w = rng.randint(0, cfg.time_width)
        t = rng.randint(0, max(n_frames - w, 0))
        spec[:, :, t : t + w] = 0.0
    return spec


def _shuffle_and_augment(cfg: StreamConfig, seed: int, epoch: int):
    """A stage seeded at iteration time, in the worker: each worker and rank draws its own numbers."""

    def stage(src):
        info = torch.utils.data.get_worker_info()
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        rng = random.Random(f"{seed}/{epoch}/{rank}/{info.id if info else 0}")
        for item in wds.shuffle(cfg.shuffle_buffer, initial=cfg.shuffle_buffer, rng=rng)(src):
            if cfg.spec_augment and not isinstance(item, BadShard):
                item = (spec_augment(item[0], cfg, rng), *item[1:])
            yield item

    return stage


def train_loader(urls: list[str], mean, std, cfg: StreamConfig, seed: int, epoch: int, workers: int) -> DataLoader:
    """This rank's training batches for one epoch: full batches only."""
    stages = [wds.SimpleShardList(epoch_order(urls, seed, epoch)), wds.split_by_node, wds.split_by_worker,
              *read_stages(mean, std), _shuffle_and_augment(cfg, seed, epoch),
              wds.batched(cfg.batch_size, collation_fn=collate, partial=False)]
    return DataLoader(wds.DataPipeline(*stages), batch_size=None, num_workers=workers,
                      multiprocessing_context="fork" if workers else None)


def check_shard_count(n_shards: int, world_size: int, workers: int, split: str) -> None:
    """Fewer shards than ranks x workers starves some readers (and hangs DDP): refuse clearly."""
    need = world_size * max(workers, 1)
    if n_shards < need:
        raise InputError(f"the {split} split has {n_shards} shards, fewer than world_size {world_size} x "
                         f"workers {max(workers, 1)} = {need}: rebuild with --shards-per-split {need} or more, "
                         "or use fewer workers or ranks")
