"""The training loop: AdamW with warm-up + cosine, equal steps per rank, validation, atomic checkpoints."""

from __future__ import annotations

import itertools
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from pipeline.manifest import write_json_atomic

from . import distributed
from .augment import mix_sources
from .checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from .data import BadShard, StreamConfig, check_shard_count, make_loader, rank_shards, shard_urls
from .losses import make_loss
from .metrics import calibrate_thresholds, macro_f1, per_class_ap
from .model import InstrumentNet, build_model


@dataclass
class TrainConfig:
    shards: str
    out: str
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    loss: str = "bce"
    pos_weight: bool = False
    pretrained: str = "none"
    freeze_backbone: bool = False
    dropout: float = 0.2
    workers: int = 2
    device: str = "auto"
    seed: int = 0
    spec_augment: bool = False
    mixup: float = 0.0  # Beta(alpha, alpha) mixing of sounds (power domain) with label union; 0 = off
    shuffle_buffer: int = 2000
    warmup_frac: float = 0.05
    grad_clip: float = 1.0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for, but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device(name)


def lr_lambda(total_steps: int, warmup_frac: float):
    """Linear warm-up over `warmup_frac` of the steps, then cosine decay to zero."""
    warmup = max(1, int(total_steps * warmup_frac))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup))))

    return factor


def pos_weights(manifest: dict) -> torch.Tensor:
    """Per-class (negatives / positives) of the train split, clipped to [1, 100]."""
    split = manifest["splits"]["train"]
    pos = np.array([split["instrument_positives"][i["name"]] for i in manifest["instruments"]], dtype=np.float64)
    return torch.tensor(np.clip((split["samples"] - pos) / np.maximum(pos, 1), 1, 100), dtype=torch.float32)


@torch.no_grad()
def collect_predictions(model: InstrumentNet, urls: list[str], norm: dict, device: torch.device,
                        batch_size: int = 64, workers: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Probabilities, labels and recording ids of every sample in `urls` (bad shards skipped, warned)."""
    model.eval()
    cfg = StreamConfig(batch_size=batch_size)
    probs, labels, recs = [], [], []
    for item in make_loader(urls, norm["mean"], norm["std"], cfg, train=False, seed=0, epoch=0, workers=workers):
        if isinstance(item, BadShard):
            print(f"warning: skipped unreadable shard {item.url} ({item.error})", file=sys.stderr)
            continue
        x, y, r = item
        probs.append(torch.sigmoid(model(x.to(device)).float()).cpu().numpy())
        labels.append(y.numpy())
        recs += r
    if not probs:
        return np.zeros((0, 11)), np.zeros((0, 11)), []
    return np.concatenate(probs), np.concatenate(labels), recs


def _batches(cfg: TrainConfig, urls, norm, stream: StreamConfig, epoch: int, rank: int):
    """This rank's batches for an epoch; if its shards run dry before the step count, it reads them again."""
    for sub in itertools.count():
        got_batch = False
        for item in make_loader(urls, norm["mean"], norm["std"], stream, train=True, seed=cfg.seed + 7919 * sub,
                                epoch=epoch, workers=cfg.workers):
            got_batch |= not isinstance(item, BadShard)
            yield item
        if not got_batch:
            raise RuntimeError(f"rank {rank}: none of its shards gave a full batch of {stream.batch_size} "
                               "(all unreadable, or too few samples for the batch size)")


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.dist = distributed.setup(resolve_device(cfg.device).type)
        self.device = resolve_device(cfg.device, self.dist.local_rank)
        self.out = Path(cfg.out)
        self.urls, self.manifest = shard_urls(Path(cfg.shards), "train")
        self.val_urls, _ = shard_urls(Path(cfg.shards), "val")
        check_shard_count(len(self.urls), self.dist.world_size, cfg.workers, "train")
        n_train = self.manifest["splits"]["train"]["samples"]
        if n_train < self.dist.world_size * cfg.batch_size:
            raise ValueError(f"{cfg.shards}: the train split has {n_train} samples, fewer than world_size "
                             f"{self.dist.world_size} x batch size {cfg.batch_size}; lower --batch-size")
        self.norm = self.manifest["normalization"]
        self.steps_per_epoch = n_train // (self.dist.world_size * cfg.batch_size)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.pretrained, cfg.freeze_backbone, cfg.dropout).to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = cfg.epochs * self.steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(total, cfg.warmup_frac))
        pw = pos_weights(self.manifest).to(self.device) if cfg.pos_weight else None
        self.loss_fn = make_loss(cfg.loss, pw)
        self.ddp = (DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda"
                                            else None) if self.dist.enabled else self.model)
        self.start_epoch, self.step, self.best_map = 0, 0, -1.0
        self.norm_mean = torch.tensor(self.norm["mean"], dtype=torch.float32, device=self.device)
        self.norm_std = torch.tensor(self.norm["std"], dtype=torch.float32, device=self.device)

    def resume(self) -> None:
        """Continue from last.pt: weights, optimizer, scheduler, epoch and step counters."""
        state = load_checkpoint(self.out / "last.pt")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.start_epoch, self.step, self.best_map = state["epoch"] + 1, state["step"], state["best_map"]

    def _log(self, msg: str) -> None:
        if self.dist.is_main:
            print(msg, file=sys.stderr, flush=True)

    def train_epoch(self, epoch: int) -> dict:
        cfg = self.cfg
        torch.manual_seed(cfg.seed * 1000 + epoch * 10 + self.dist.rank)  # dropout/mixup: resumable per epoch
        self.ddp.train()
        stream = StreamConfig(batch_size=cfg.batch_size, shuffle_buffer=cfg.shuffle_buffer,
                              spec_augment=cfg.spec_augment)
        batches = _batches(cfg, self.urls, self.norm, stream, epoch, self.dist.rank)
        bad, total_loss, n_samples, t0 = [], 0.0, 0, time.perf_counter()
        bar = tqdm(total=self.steps_per_epoch, desc=f"epoch {epoch + 1}", disable=not (self.dist.is_main
                                                                                      and sys.stderr.isatty()))
        done = 0
        while done < self.steps_per_epoch:
            item = next(batches)
            if isinstance(item, BadShard):
                if item.url not in bad:
                    bad.append(item.url)
                    print(f"warning: rank {self.dist.rank} skipped unreadable shard {item.url} ({item.error})",
                          file=sys.stderr, flush=True)
                continue
            x, y, _ = item
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            if cfg.mixup > 0:
                x, y = mix_sources(x, y, self.norm_mean, self.norm_std, cfg.mixup)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                logits = self.ddp(x)
            loss = self.loss_fn(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            done += 1
            value = loss.item()
            total_loss += value * len(x)
            n_samples += len(x)
            rate = n_samples / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{value:.4f}", samples_s=f"{rate:.0f}")
            bar.update()
            if not sys.stderr.isatty() and done % max(1, self.steps_per_epoch // 5) == 0:
                self._log(f"epoch {epoch + 1} step {done}/{self.steps_per_epoch} loss {value:.4f} "
                          f"{rate:.0f} samples/s")
        bar.close()
        seconds = time.perf_counter() - t0
        per_rank = distributed.gather(self.dist, {"steps": done, "bad_shards": bad, "samples": n_samples,
                                                  "shards": [Path(u).name for u in
                                                             rank_shards(self.urls, cfg.seed, epoch)]})
        return {
            "train_loss": distributed.mean_over_ranks(self.dist, total_loss / max(n_samples, 1), self.device),
            "steps": self.step,
            "steps_per_rank": [r["steps"] for r in per_rank],
            "shards_per_rank": [r["shards"] for r in per_rank],
            "bad_shards": sorted({u for r in per_rank for u in r["bad_shards"]}),
            "samples_per_s": round(sum(r["samples"] for r in per_rank) / seconds, 1),
        }

    def validate(self) -> tuple[dict, np.ndarray]:
        probs, labels, _ = collect_predictions(self.model, self.val_urls, self.norm, self.device,
                                               workers=min(self.cfg.workers, len(self.val_urls)))
        if len(probs) == 0:
            return {"val_loss": None, "val_mAP": None, "val_macro_f1": None}, np.full(labels.shape[1], 0.5)
        p = np.clip(probs, 1e-7, 1 - 1e-7)
        bce = float(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean())
        ap = per_class_ap(probs, labels)
        metrics = {"val_loss": round(bce, 5), "val_mAP": round(float(np.nanmean(ap)), 5),
                   "val_macro_f1": round(macro_f1(probs >= 0.5, labels), 5)}
        return metrics, calibrate_thresholds(probs, labels)

    def checkpoint_state(self, epoch: int, thresholds: np.ndarray, metrics: dict) -> dict:
        m = self.manifest
        return {
            "format_version": FORMAT_VERSION,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": epoch,
            "step": self.step,
            "best_map": self.best_map,
            "features": m["features"],
            "window": m["window"],
            "instruments": m["instruments"],
            "normalization": {"mean": m["normalization"]["mean"], "std": m["normalization"]["std"]},
            "train_config": asdict(self.cfg),
            "thresholds": [float(t) for t in thresholds],
            "default_predictor": "calibrated",
            "val_metrics": metrics,
        }

    def fit(self) -> list[dict]:
        """Train the remaining epochs; rank 0 writes config.json, metrics.jsonl, last.pt and best.pt."""
        history = []
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if self.start_epoch == 0 and (self.out / "metrics.jsonl").exists():
                self._log(f"warning: {self.out} holds an earlier run; starting over (use --resume to continue it)")
                for name in ("metrics.jsonl", "best.pt", "last.pt"):
                    (self.out / name).unlink(missing_ok=True)
            write_json_atomic(self.out / "config.json", {**asdict(self.cfg), "world_size": self.dist.world_size,
                                                         "device": str(self.device),
                                                         "steps_per_epoch": self.steps_per_epoch})
        for epoch in range(self.start_epoch, self.cfg.epochs):
            t0 = time.perf_counter()
            row = {"epoch": epoch + 1, **self.train_epoch(epoch), "lr": self.scheduler.get_last_lr()[0]}
            if self.dist.is_main:
                metrics, thresholds = self.validate()
                row.update(metrics, seconds=round(time.perf_counter() - t0, 2))
                improved = metrics["val_mAP"] is not None and metrics["val_mAP"] > self.best_map
                self.best_map = max(self.best_map, metrics["val_mAP"] or -1.0)
                state = self.checkpoint_state(epoch, thresholds, metrics)
                save_checkpoint(self.out / "last.pt", state)
                if improved or not (self.out / "best.pt").exists():
                    save_checkpoint(self.out / "best.pt", state)
                with open(self.out / "metrics.jsonl", "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                self._log(f"epoch {epoch + 1}/{self.cfg.epochs}: train loss {row['train_loss']:.4f}, "
                          f"val mAP {metrics['val_mAP']}, val macro F1 {metrics['val_macro_f1']}, "
                          f"{row['samples_per_s']:.0f} samples/s, {len(row['bad_shards'])} bad shards")
            distributed.barrier(self.dist)
            history.append(row)
        return history

    def close(self) -> None:
        distributed.teardown(self.dist)
