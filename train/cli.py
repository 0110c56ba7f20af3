"""`musicid-train`: stream shards into ResNet18; one CPU, one GPU, or many through torchrun (DDP)."""

from __future__ import annotations

from pathlib import Path

import typer

from .losses import LOSSES
from .trainer import TrainConfig, Trainer

app = typer.Typer(add_completion=False)


@app.command()
def train(
    shards: Path = typer.Option(..., "--shards", help="Shard folder with manifest.json, or a manifest path."),
    out: Path = typer.Option(Path("runs/default"), "--out", help="Run folder: checkpoints, metrics, config."),
    epochs: int = typer.Option(10, min=1),
    batch_size: int = typer.Option(32, min=1, help="Per-rank batch size."),
    lr: float = typer.Option(1e-3, min=0.0, help="Peak AdamW learning rate (after warm-up)."),
    weight_decay: float = typer.Option(1e-4, min=0.0),
    loss: str = typer.Option("bce", help=f"One of {', '.join(LOSSES)}."),
    pos_weight: bool = typer.Option(False, "--pos-weight", help="bce: weight positives by the train prior."),
    pretrained: str = typer.Option("none", help="none | imagenet | PATH to a resnet18 state dict."),
    freeze_backbone: bool = typer.Option(False, "--freeze-backbone", help="Train the head only."),
    dropout: float = typer.Option(0.2, min=0.0, max=0.9),
    workers: int = typer.Option(2, min=0, help="DataLoader workers per rank."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    seed: int = typer.Option(0),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last.pt."),
    augment: bool = typer.Option(False, "--augment", help="SpecAugment (2 freq + 2 time masks)."),
    mixup: float = typer.Option(0.0, min=0.0, help="Mix windows as sounds, lam ~ Beta(a, a), labels united; 0 = off."),
    shuffle_buffer: int = typer.Option(2000, min=1, help="Samples in the shuffle buffer per worker."),
):
    """Train a ResNet18 instrument recogniser on WebDataset shards made by musicid-pipeline."""
    if loss not in LOSSES:
        raise typer.BadParameter(f"--loss must be one of {', '.join(LOSSES)}")
    cfg = TrainConfig(shards=str(shards), out=str(out), epochs=epochs, batch_size=batch_size, lr=lr,
                      weight_decay=weight_decay, loss=loss, pos_weight=pos_weight, pretrained=pretrained,
                      freeze_backbone=freeze_backbone, dropout=dropout, workers=workers, device=device, seed=seed,
                      spec_augment=augment, mixup=mixup, shuffle_buffer=shuffle_buffer)
    try:
        trainer = Trainer(cfg)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    try:
        if resume:
            if not (out / "last.pt").exists():
                typer.secho(f"error: --resume: {out / 'last.pt'} does not exist", fg=typer.colors.RED, err=True)
                raise typer.Exit(1)
            trainer.resume()
        history = trainer.fit()
    finally:
        trainer.close()
    if trainer.dist.is_main and history:
        last = history[-1]
        typer.echo(f"trained {len(history)} epoch(s) to epoch {last['epoch']}: val mAP {last.get('val_mAP')}, "
                   f"best {trainer.best_map:.4f}; run folder {out}")
    elif trainer.dist.is_main:
        typer.echo(f"nothing to do: {out} already has {cfg.epochs} epochs")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
