"""The training loop: AdamW with warm-up + cosine, equal steps per rank, validation, atomic
checkpoints.

Rank 0 writes the run folder: config.json, metrics.jsonl (a line per epoch), last.pt and best.pt (by
val mAP), beside each checkpoint the calibration fitted on the val split for it, and at the end
best.onnx, the run's model for ONNX Runtime.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from musicid.errors import InputError
from musicid.files import output_folder, write_json_atomic
from musicid.metrics import macro_f1, per_class_ap
from musicid.network import (
    DEVICE,
    DROPOUT,
    PRECISION,
    build_model,
    export_checkpoint,
    predictor,
    resolve_device,
    use_bf16,
)
from musicid.records import differing_fields
from musicid.run import (
    BEST,
    CONFIG,
    LAST,
    METRICS,
    RUN_FILES,
    THRESHOLD,
    Calibration,
    Checkpoint,
    ModelCard,
    onnx_file,
)
from musicid.shardset import (
    TrainOrder,
    check_shard_count,
    loader,
    log_bad,
    rank_shards,
    read_manifest,
    shard_urls,
)
from musicid.validation import collect_predictions, fit_calibration

from . import distributed
from .augment import SpecAugment, mix_sources, recording_conditions
from .losses import make_loss

log = logging.getLogger("musicid")
# may differ when a run is resumed
RESUMABLE = ("workers", "device", "precision", "out", "shards", "shard_url")


@dataclass
class TrainConfig:
    shards: str
    out: str
    epochs: int = 10
    # optimiser steps per epoch, at most one pass over the train split; 0 = one pass
    epoch_steps: int = 0
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    loss: str = "bce"
    pos_weight: bool = False
    pretrained: str = "none"
    freeze_backbone: bool = False
    dropout: float = DROPOUT
    workers: int = 2
    device: str = DEVICE
    precision: str = PRECISION
    seed: int = 0
    spec_augment: bool = False
    # Beta(alpha, alpha) mixing of sounds (power domain) with label union; 0 = off
    mixup: float = 0.0
    # probability of each recording-condition change (gain, EQ, noise, reverb); 0 = off
    conditions: float = 0.0
    # windows mixed within a reader (about 17 min of audio at the default 0.5 s hop)
    shuffle_buffer: int = 2000
    warmup_frac: float = 0.05
    grad_clip: float = 1.0
    # read shards from this URL template ({name}) instead of beside the manifest
    shard_url: str | None = None


def lr_lambda(total_steps: int, warmup_frac: float):
    """Linear warm-up over `warmup_frac` of the steps, then cosine decay to zero."""
    warmup = max(1, int(total_steps * warmup_frac))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (
            1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup)))
        )

    return factor


def pos_weights(manifest) -> torch.Tensor:
    """Per-class (negatives / positives) of the train split, clipped to [1, 100]."""
    split = manifest.splits["train"]
    pos = np.array(
        [split.instrument_positives[i["name"]] for i in manifest.instruments], dtype=np.float64
    )
    return torch.tensor(
        np.clip((split.samples - pos) / np.maximum(pos, 1), 1, 100), dtype=torch.float32
    )


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.dist = distributed.setup(resolve_device(cfg.device).type)
        self.device = resolve_device(cfg.device, self.dist.local_rank)
        self.out = Path(cfg.out)
        self.manifest = read_manifest(Path(cfg.shards))
        self.urls = shard_urls(self.manifest, Path(cfg.shards), "train", cfg.shard_url)
        self.val_urls = shard_urls(self.manifest, Path(cfg.shards), "val", cfg.shard_url)
        check_shard_count(len(self.urls), self.dist.world_size, cfg.workers, "train")
        n_train = self.manifest.splits["train"].samples
        if n_train < self.dist.world_size * cfg.batch_size:
            raise InputError(
                f"{cfg.shards}: the train split has {n_train} samples, fewer than world_size "
                f"{self.dist.world_size} x batch size {cfg.batch_size}; lower --batch-size"
            )
        self.card = ModelCard.from_manifest(self.manifest, asdict(cfg))
        one_pass = n_train // (self.dist.world_size * cfg.batch_size)
        if cfg.epoch_steps > one_pass:
            raise InputError(
                f"{cfg.shards}: --epoch-steps {cfg.epoch_steps} is more than one pass over the "
                "train "
                f"split ({one_pass} steps of {self.dist.world_size} x {cfg.batch_size} samples)"
            )
        self.steps_per_epoch = cfg.epoch_steps or one_pass
        torch.manual_seed(cfg.seed)
        self.bf16 = use_bf16(self.device, cfg.precision)
        # channels_last: faster convolutions on CUDA and on oneDNN CPUs alike
        # (benchmarks/train_speed.py)
        self.model = build_model(cfg.pretrained, cfg.freeze_backbone, cfg.dropout).to(
            self.device, memory_format=torch.channels_last
        )
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = cfg.epochs * self.steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(total, cfg.warmup_frac)
        )
        pw = pos_weights(self.manifest).to(self.device) if cfg.pos_weight else None
        self.loss_fn = make_loss(cfg.loss, pw)
        self.ddp = (
            DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
            if self.dist.enabled
            else self.model
        )
        self.start_epoch, self.step, self.best_map = 0, 0, -1.0
        self.norm_mean = torch.from_numpy(self.card.mean).to(self.device)
        self.norm_std = torch.from_numpy(self.card.std).to(self.device)

    def resume(self) -> None:
        """Continue from last.pt: weights, optimizer, scheduler, epoch and step counters. Refused
        when the shards' features or the training settings differ from the run's."""
        path = self.out / LAST
        ckpt = Checkpoint.load(path)
        if ckpt.training is None:
            raise InputError(f"{path}: holds no training state to resume from (an exported model?)")

        def settings(card: ModelCard) -> dict:
            d = card.to_dict()
            return {
                "data": {k: d[k] for k in ("features", "window")},
                "train": {k: v for k, v in card.train_config.items() if k not in RESUMABLE},
            }

        diff = differing_fields(settings(ckpt.card), settings(self.card))
        if diff:
            raise InputError(
                f"{path}: --resume with other settings than the run's "
                f"({'; '.join(diff[:4])}); use the run's, or start a new run"
            )
        state = ckpt.training
        self.model.load_state_dict(ckpt.model)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.start_epoch, self.step, self.best_map = (
            state["epoch"] + 1,
            state["step"],
            state["best_map"],
        )

    def _batches(self, epoch: int):
        """This rank's batches for an epoch; if its shards run dry before the step count, it reads
        them again."""
        cfg = self.cfg
        augment = SpecAugment() if cfg.spec_augment else None
        for sub in itertools.count():
            got_batch = False
            order = TrainOrder(cfg.seed + 7919 * sub, epoch, cfg.shuffle_buffer, augment)
            for batch in loader(
                self.urls, self.card.mean, self.card.std, cfg.batch_size, cfg.workers, order
            ):
                got_batch |= batch[0] is not None
                yield batch
            if not got_batch:
                raise InputError(
                    f"{cfg.shards}: rank {self.dist.rank}'s shards gave no full batch of "
                    f"{cfg.batch_size} (all unreadable, or too few samples for the batch size)"
                )

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """One optimisation step on a batch; returns its loss."""
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.cfg.conditions > 0:
            x = recording_conditions(
                x,
                self.norm_mean,
                self.norm_std,
                self.card.features.frame_rate,
                self.cfg.conditions,
                self.card.features,
            )
        if self.cfg.mixup > 0:
            x, y = mix_sources(
                x, y, self.norm_mean, self.norm_std, self.cfg.mixup, self.card.features
            )
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.ddp(x.contiguous(memory_format=torch.channels_last))
        loss = self.loss_fn(logits.float(), y)
        if not torch.isfinite(loss):
            raise InputError(
                f"training diverged: the loss is {loss.item()} at step {self.step + 1}; lower --lr "
                f"(it is {self.cfg.lr:g}), or check the shards with musicid-pipeline inspect "
                "--verify"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return loss.item()

    def train_epoch(self, epoch: int) -> dict:
        cfg = self.cfg
        # dropout/mixup: resumable per epoch
        torch.manual_seed(cfg.seed * 1000 + epoch * 10 + self.dist.rank)
        self.ddp.train()
        batches = self._batches(epoch)
        bad, total_loss, n_samples, done, t0 = [], 0.0, 0, 0, time.perf_counter()
        bar = tqdm(
            total=self.steps_per_epoch,
            desc=f"epoch {epoch + 1}",
            disable=not (self.dist.is_main and sys.stderr.isatty()),
        )
        while done < self.steps_per_epoch:
            x, y, _, bad_shards = next(batches)
            for b in bad_shards:
                if b.url not in bad:
                    bad.append(b.url)
                    log_bad(b)
            if x is None:
                continue
            value = self._step(x, y)
            done += 1
            total_loss += value * len(x)
            n_samples += len(x)
            rate = n_samples / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{value:.4f}", samples_s=f"{rate:.0f}")
            bar.update()
            if bar.disable and self.dist.is_main and done % max(1, self.steps_per_epoch // 5) == 0:
                log.debug(
                    "epoch %d step %d/%d loss %.4f %.0f samples/s",
                    epoch + 1,
                    done,
                    self.steps_per_epoch,
                    value,
                    rate,
                )
        bar.close()
        seconds = time.perf_counter() - t0
        per_rank = distributed.gather(
            self.dist,
            {
                "steps": done,
                "bad_shards": bad,
                "samples": n_samples,
                "shards": [Path(u).name for u in rank_shards(self.urls, cfg.seed, epoch)],
            },
        )
        return {
            "train_loss": distributed.mean_over_ranks(
                self.dist, total_loss / max(n_samples, 1), self.device
            ),
            "steps": self.step,
            "steps_per_rank": [r["steps"] for r in per_rank],
            "shards_per_rank": [r["shards"] for r in per_rank],
            "bad_shards": sorted({u for r in per_rank for u in r["bad_shards"]}),
            "samples_per_s": round(sum(r["samples"] for r in per_rank) / seconds, 1),
        }

    def validate(self) -> tuple[dict, Calibration | None]:
        """Val loss, mAP and macro F1 at the uniform threshold, and the calibration fitted on the
        same predictions."""
        predict = predictor(self.model, self.device)
        val = collect_predictions(
            predict, self.val_urls, self.card, workers=min(self.cfg.workers, len(self.val_urls))
        )
        probs, labels = val.probs, val.labels
        if len(probs) == 0:
            return {"val_loss": None, "val_mAP": None, "val_macro_f1": None}, None
        p = np.clip(probs, 1e-7, 1 - 1e-7)
        bce = float(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean())
        metrics = {
            "val_loss": round(bce, 5),
            "val_mAP": round(float(np.nanmean(per_class_ap(probs, labels))), 5),
            "val_macro_f1": round(macro_f1(probs >= THRESHOLD, labels), 5),
        }
        return metrics, fit_calibration(
            predict, self.card, self.manifest, val, f"{self.cfg.shards} val split"
        )

    def checkpoint(self, epoch: int, metrics: dict) -> Checkpoint:
        return Checkpoint(
            self.model.state_dict(),
            self.card,
            {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "epoch": epoch,
                "step": self.step,
                "best_map": self.best_map,
                "val_metrics": metrics,
            },
        )

    def _save(self, name: str, ckpt: Checkpoint, cal: Calibration | None) -> None:
        ckpt.save(self.out / name)
        if cal is not None:
            cal.save(self.out / name)

    def _start_run_folder(self, overwrite: bool) -> None:
        """A new run needs an empty run folder; --overwrite removes the files an earlier run wrote,
        only. Every rank checks (so all refuse alike) before rank 0 removes anything."""
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"{self.out}: exists and is not a folder; choose another --out")
        earlier = [self.out / n for n in RUN_FILES if (self.out / n).exists()]
        # a run stopped before its first checkpoint left only its config: nothing to keep or resume
        if earlier and not overwrite and any(p.name != CONFIG for p in earlier):
            raise InputError(
                f"{self.out}: holds an earlier run ({earlier[0].name}); use --resume to continue "
                "it, "
                "--overwrite to start over, or another --out"
            )
        distributed.barrier(self.dist)
        if self.dist.is_main:
            output_folder(self.out)
            for path in earlier:
                path.unlink(missing_ok=True)

    def fit(self, overwrite: bool = False) -> list[dict]:
        """Train the remaining epochs; rank 0 writes the run folder."""
        history = []
        if self.start_epoch == 0:
            self._start_run_folder(overwrite)
        if self.dist.is_main:
            write_json_atomic(
                self.out / CONFIG,
                {
                    **asdict(self.cfg),
                    "world_size": self.dist.world_size,
                    "device": str(self.device),
                    "steps_per_epoch": self.steps_per_epoch,
                },
            )
        distributed.barrier(self.dist)
        for epoch in range(self.start_epoch, self.cfg.epochs):
            t0 = time.perf_counter()
            row = {
                "epoch": epoch + 1,
                **self.train_epoch(epoch),
                "lr": self.scheduler.get_last_lr()[0],
            }
            if self.dist.is_main:
                metrics, cal = self.validate()
                row.update(metrics, seconds=round(time.perf_counter() - t0, 2))
                # with no val split there is nothing to choose by: best.pt follows last.pt
                improved = metrics["val_mAP"] is None or metrics["val_mAP"] > self.best_map
                self.best_map = max(self.best_map, metrics["val_mAP"] or -1.0)
                ckpt = self.checkpoint(epoch, metrics)
                self._save(LAST, ckpt, cal)
                if improved or not (self.out / BEST).exists():
                    self._save(BEST, ckpt, cal)
                with open(self.out / METRICS, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                log.info(
                    "epoch %d/%d: train loss %.4f, val mAP %s, val macro F1 %s, %.0f samples/s, %d "
                    "bad shards",
                    epoch + 1,
                    self.cfg.epochs,
                    row["train_loss"],
                    metrics["val_mAP"],
                    metrics["val_macro_f1"],
                    row["samples_per_s"],
                    len(row["bad_shards"]),
                )
            distributed.barrier(self.dist)
            history.append(row)
        if self.dist.is_main and (history or not onnx_file(self.out / BEST).exists()):
            # the run's model for ONNX Runtime, where prediction runs
            export_checkpoint(self.out / BEST)
        return history

    def close(self) -> None:
        distributed.teardown(self.dist)
