"""Streaming shards into batches: per-epoch shard order, explicit node/worker split, shuffle buffer.

Each epoch the shard list is shuffled with `seed + epoch` on every rank alike, *then* split by rank and by
DataLoader worker (DESIGN §7): ranks see disjoint shards and a new order every epoch. A shard that cannot
be read is skipped: the stream yields a `BadShard` marker (once per shard) that the loop counts and logs.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset

from pipeline.manifest import read_manifest


@dataclass(frozen=True)
class BadShard:
    url: str
    error: str


@dataclass(frozen=True)
class StreamConfig:
    batch_size: int = 32
    shuffle_buffer: int = 2000
    spec_augment: bool = False
    freq_masks: int = 2
    freq_width: int = 16
    time_masks: int = 2
    time_width: int = 12


def shard_urls(shards: Path, split: str) -> tuple[list[str], dict]:
    """Shard URLs of a split from a shard folder or manifest path; relative names resolve next to it.

    URLs that are already URLs (`pipe:...`, `http://...`) or absolute paths are used as they are."""
    manifest = read_manifest(Path(shards))
    base = Path(shards) if Path(shards).is_dir() else Path(shards).parent
    names = [s["name"] for s in manifest["splits"][split]["shards"]]
    return [n if (":" in n or n.startswith("/")) else str(base / n) for n in names], manifest


def epoch_order(urls: list[str], seed: int, epoch: int) -> list[str]:
    """The epoch's shard order: the same on every rank (so the rank split stays disjoint), new each epoch."""
    urls = list(urls)
    random.Random(seed + epoch).shuffle(urls)
    return urls


def normalise(spec: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Log-mel [n_mels, T] -> the model's input [1, n_mels, T] with the train split's per-bin statistics."""
    return ((spec - mean[:, None]) / std[:, None]).astype(np.float32)[None]


def rank_shards(urls: list[str], seed: int, epoch: int) -> list[str]:
    """This rank's shards in a training epoch: the epoch's order, then every world_size-th from its rank."""
    return list(wds.split_by_node(epoch_order(urls, seed, epoch)))


def decode(sample: dict, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(normalised spec [1, n_mels, T] float32, instruments [11] float32, recording) from raw tar members."""
    spec = np.load(io.BytesIO(sample["spec.npy"]), allow_pickle=False).astype(np.float32)
    inst = np.load(io.BytesIO(sample["instruments.npy"]), allow_pickle=False).astype(np.float32)
    recording = json.loads(sample["json"])["recording"]
    return normalise(spec, mean, std), inst, recording


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


class ShardStream(IterableDataset):
    """Batches (spec, instruments, recordings) from a list of shard URLs, for one rank and epoch."""

    def __init__(self, urls: list[str], mean: np.ndarray, std: np.ndarray, cfg: StreamConfig, *, train: bool,
                 seed: int, epoch: int):
        self.urls, self.mean, self.std, self.cfg = urls, mean.astype(np.float32), std.astype(np.float32), cfg
        self.train, self.seed, self.epoch = train, seed, epoch

    def _samples(self, urls: list[str]) -> Iterator:
        for url in urls:
            try:
                for sample in wds.tariterators.tarfile_samples([{"url": url}]):
                    yield decode(sample, self.mean, self.std)
            except Exception as exc:  # noqa: BLE001 - any unreadable shard is skipped and reported
                yield BadShard(url, f"{type(exc).__name__}: {exc}")

    def _shuffled(self, items: Iterator, rng: random.Random) -> Iterator:
        buf: list = []
        for item in items:
            if isinstance(item, BadShard):
                yield item
                continue
            buf.append(item)
            if len(buf) >= self.cfg.shuffle_buffer:
                i = rng.randrange(len(buf))
                buf[i], buf[-1] = buf[-1], buf[i]
                yield buf.pop()
        rng.shuffle(buf)
        yield from buf

    def __iter__(self):
        urls = rank_shards(self.urls, self.seed, self.epoch) if self.train else wds.split_by_node(self.urls)
        urls = list(wds.split_by_worker(urls))
        info = torch.utils.data.get_worker_info()
        rank = int(torch.distributed.get_rank()) if torch.distributed.is_initialized() else 0
        rng = random.Random(hash((self.seed, self.epoch, rank, info.id if info else 0)))
        items = self._samples(urls)
        if self.train:
            items = self._shuffled(items, rng)
        batch: list = []
        for item in items:
            if isinstance(item, BadShard):
                yield item
                continue
            if self.train and self.cfg.spec_augment:
                item = (spec_augment(item[0], self.cfg, rng), *item[1:])
            batch.append(item)
            if len(batch) == self.cfg.batch_size:
                yield collate(batch)
                batch = []
        if batch and not self.train:
            yield collate(batch)


def collate(items: list) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    specs, labels, recs = zip(*items, strict=True)
    return torch.from_numpy(np.stack(specs)), torch.from_numpy(np.stack(labels)), list(recs)


def check_shard_count(n_shards: int, world_size: int, workers: int, split: str) -> None:
    """Fewer shards than ranks x workers starves some readers (and hangs DDP): refuse clearly."""
    need = world_size * max(workers, 1)
    if n_shards < need:
        raise ValueError(f"the {split} split has {n_shards} shards, fewer than world_size {world_size} x "
                         f"workers {max(workers, 1)} = {need}: rebuild with --shards-per-split {need} or more, "
                         "or use fewer workers or ranks")


def make_loader(urls: list[str], mean, std, cfg: StreamConfig, *, train: bool, seed: int, epoch: int,
                workers: int) -> DataLoader:
    stream = ShardStream(urls, np.asarray(mean), np.asarray(std), cfg, train=train, seed=seed, epoch=epoch)
    return DataLoader(stream, batch_size=None, num_workers=workers, persistent_workers=False,
                      multiprocessing_context="fork" if workers else None)
