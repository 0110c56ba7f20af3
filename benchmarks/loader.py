"""Loader throughput and batch diversity, ours vs. the prior work's way, on one synthetic shard set.

Throughput: samples/s delivered to the training loop (no model), 2 DataLoader workers, batch 32.
  ours:  the WebDataset shard stream (decode .npy, normalise, shuffle buffer, batch). prior: the
  prior work's way: samples in block order, the last wav cached, crop + log-mel per sample.
Diversity: mean distinct recordings per batch of 32 for ours, an ideal uniform shuffle, and the
prior work's block order (samples sorted by recording). Medians of --repeats passes.
Usage: python benchmarks/loader.py [--recordings 100 --seconds 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from musicid.audio import load_audio
from musicid.features import LogMel
from musicid.pipeline.build import BuildConfig, build_shards
from musicid.pipeline.layout import find_recordings
from musicid.pipeline.synth import synthesize
from musicid.shardset import TrainOrder, loader, read_manifest, shard_urls
from musicid.train.trainer import TrainConfig

BATCH = TrainConfig.batch_size
SHUFFLE_BUFFER = TrainConfig.shuffle_buffer


class PriorWay(Dataset):
    """(recording, start) windows in block order; each worker caches the last wav it loaded."""

    def __init__(self, windows: list[tuple[Path, int]]):
        self.windows, self.cfg, self.cached = windows, LogMel(), (None, None)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int):
        path, start = self.windows[i]
        if self.cached[0] != path:
            self.cached = (path, load_audio(path))
        audio, sr = self.cached[1]
        spec = self.cfg.compute(audio[start : start + sr], sr)[:, :86]
        return torch.from_numpy(spec[None]), torch.zeros(11)


def distinct_per_batch(recs: list[str]) -> float:
    return float(
        np.mean([len(set(recs[i : i + BATCH])) for i in range(0, len(recs) - BATCH + 1, BATCH)])
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recordings", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "data", Path(tmp) / "shards"
        synthesize(root, args.recordings, args.seconds, seed=0)
        build_shards(root, out, BuildConfig(shards_per_split=8, val_fraction=0.1), workers=2)
        manifest = read_manifest(out)
        urls = shard_urls(manifest, out, "train")
        norm = manifest.normalization
        ours, ours_div = [], []
        for epoch in range(args.repeats):
            batches = loader(
                urls, norm["mean"], norm["std"], BATCH, 2, TrainOrder(0, epoch, SHUFFLE_BUFFER)
            )
            n, div, t = 0, [], time.perf_counter()
            for x, _, infos, _ in batches:
                n += len(x)
                div.append(len({i.recording for i in infos}))
            ours.append(n / (time.perf_counter() - t))
            ours_div.append(float(np.mean(div)))
        train_ids = set(manifest.splits["train"].recordings)
        recs = [r for r in find_recordings(root)[0] if r.id in train_ids]
        windows = []
        for r in recs:
            n_samples = int(args.seconds * 44100)
            windows += [(r.audio, s) for s in range(0, n_samples - 44100 + 1, 22050)]
        prior = []
        for _ in range(args.repeats):
            prior_batches = DataLoader(
                PriorWay(windows), batch_size=BATCH, num_workers=2, shuffle=False
            )
            n, t = 0, time.perf_counter()
            for x, _ in prior_batches:
                n += len(x)
            prior.append(n / (time.perf_counter() - t))
        labels = [str(p) for p, _ in windows]
        rng = np.random.default_rng(0)
        ideal = statistics.median(
            distinct_per_batch(list(rng.permutation(labels))) for _ in range(args.repeats)
        )
        block = distinct_per_batch(labels)
    med_ours, med_div = statistics.median(ours), statistics.median(ours_div)
    print(
        f"train split: {len(windows)} windows of 1 s from {len(recs)} recordings, 8 shards, 2 "
        "workers, "
        f"batch {BATCH}, median of {args.repeats}"
    )
    print(
        f"throughput ours (shard stream):  {med_ours:8.0f} samples/s  runs "
        f"{[round(x) for x in ours]}"
    )
    print(
        f"throughput prior (wav cache):    {statistics.median(prior):8.0f} samples/s  "
        f"runs {[round(x) for x in prior]}"
    )
    print(f"speed-up: {med_ours / statistics.median(prior):.1f}x")
    print(
        f"distinct recordings per batch of {BATCH}: ours {med_div:.1f}, ideal uniform {ideal:.1f} "
        f"({100 * med_div / ideal:.0f}% of ideal), prior block order {block:.1f}"
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
