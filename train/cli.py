"""`musicid-train`: stream shards into ResNet18; one CPU, one GPU, or many through torchrun (DDP).
`musicid-train export RUN`: a run's model as ONNX, for a run trained before runs exported their
own."""

from __future__ import annotations

from pathlib import Path

import typer

from musicid.cli import DefaultGroup, choices, command, new_app, run
from musicid.network import PRECISIONS, export_checkpoint
from musicid.run import checkpoint_file

from .losses import LOSSES
from .trainer import TrainConfig, Trainer

app = new_app(cls=DefaultGroup, help=__doc__)
Loss = choices("Loss", LOSSES)
Precision = choices("Precision", PRECISIONS)
D = TrainConfig  # defaults are read from the config, declared there once


@app.command("train")
@command
def train(
    shards: Path = typer.Option(
        ..., "--shards", help="Shard folder with manifest.json, or a manifest path."
    ),
    out: Path = typer.Option(
        Path("runs/default"), "--out", help="Run folder: checkpoints, metrics, config."
    ),
    epochs: int = typer.Option(D.epochs, min=1, help="Passes over the train split."),
    epoch_steps: int = typer.Option(
        D.epoch_steps,
        min=0,
        help="Optimiser steps per epoch, at most one pass over "
        "the train split (0 = one pass): short runs of equal "
        "length, such as the demo's loss comparison.",
    ),
    batch_size: int = typer.Option(D.batch_size, min=1, help="Per-rank batch size."),
    lr: float = typer.Option(D.lr, min=0.0, help="Peak AdamW learning rate (after warm-up)."),
    weight_decay: float = typer.Option(D.weight_decay, min=0.0, help="AdamW weight decay."),
    loss: Loss = typer.Option(D.loss, help="bce, the prior work's iou, or mse."),
    pos_weight: bool = typer.Option(
        D.pos_weight, "--pos-weight", help="bce: weight positives by the train prior."
    ),
    pretrained: str = typer.Option(
        D.pretrained,
        help="none | imagenet | default (the shipped model) | PATH to resnet18 or musicid weights.",
    ),
    freeze_backbone: bool = typer.Option(
        D.freeze_backbone, "--freeze-backbone", help="Train the head only."
    ),
    dropout: float = typer.Option(
        D.dropout, min=0.0, max=0.9, help="Dropout before the classification head."
    ),
    workers: int = typer.Option(D.workers, min=0, help="DataLoader workers per rank."),
    device: str = typer.Option(D.device, help="auto | cpu | cuda."),
    precision: Precision = typer.Option(
        D.precision,
        help="Forward pass: auto = bf16 where the hardware has it "
        "(CUDA; CPUs with AVX512-BF16 or AMX), else fp32.",
    ),
    seed: int = typer.Option(
        D.seed, help="Seed of the weights, the shard order and the augmentation."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from OUT/last.pt with the run's settings."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start over in a run folder that holds a run."
    ),
    augment: bool = typer.Option(
        D.spec_augment, "--augment", help="SpecAugment (2 freq + 2 time masks)."
    ),
    mixup: float = typer.Option(
        D.mixup, min=0.0, help="Mix windows as sounds, lam ~ Beta(a, a), labels united; 0 = off."
    ),
    conditions: float = typer.Option(
        D.conditions,
        min=0.0,
        max=1.0,
        help="Recording-condition augmentation: probability of each of gain, EQ, "
        "noise floor and reverb smear per window; 0 = off.",
    ),
    shuffle_buffer: int = typer.Option(
        D.shuffle_buffer, min=1, help="Samples in the shuffle buffer per worker."
    ),
    shard_url: str = typer.Option(
        None,
        help="Read shards from this URL template ({name} = each shard's name) "
        "instead of beside the manifest.",
    ),
):
    """Train a ResNet18 instrument recogniser on WebDataset shards made by musicid-pipeline."""
    cfg = TrainConfig(
        shards=str(shards),
        out=str(out),
        epochs=epochs,
        epoch_steps=epoch_steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        loss=loss.value,
        pos_weight=pos_weight,
        pretrained=pretrained,
        freeze_backbone=freeze_backbone,
        dropout=dropout,
        workers=workers,
        device=device,
        precision=precision.value,
        seed=seed,
        spec_augment=augment,
        mixup=mixup,
        conditions=conditions,
        shuffle_buffer=shuffle_buffer,
        shard_url=shard_url,
    )
    trainer = Trainer(cfg)
    try:
        if resume:
            trainer.resume()
        history = trainer.fit(overwrite=overwrite)
    finally:
        trainer.close()
    if trainer.dist.is_main and history:
        last = history[-1]
        best = (
            "no val split, best.pt = last.pt"
            if trainer.best_map < 0
            else f"best {trainer.best_map:.4f}"
        )
        typer.echo(
            f"trained {len(history)} epoch(s) to epoch {last['epoch']}: val mAP "
            f"{last.get('val_mAP')}, "
            f"{best}; run folder {out}"
        )
    elif trainer.dist.is_main:
        typer.echo(f"nothing to do: {out} already has {cfg.epochs} epochs")


@app.command("export")
@command
def export(
    run_path: Path = typer.Argument(
        ..., metavar="RUN", help="Run folder (its best.pt) or a checkpoint file."
    ),
):
    """Write the ONNX export of a run's model beside its checkpoint (best.pt -> best.onnx), which
    musicid-predict runs on ONNX Runtime without PyTorch. Training writes it for new runs."""
    typer.echo(f"wrote {export_checkpoint(checkpoint_file(run_path))}")


def main() -> None:
    run(app, "musicid-train")


if __name__ == "__main__":
    main()
