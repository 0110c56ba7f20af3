"""`musicid-pipeline`: synth, index, build-shards, inspect."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .audio import AudioError
from .labels import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def synth(
    out: Path = typer.Argument(..., help="Folder to write the dataset into (MusicNet Kaggle layout)."),
    recordings: int = typer.Option(30, min=2, help="Number of recordings (train + test)."),
    seconds: float = typer.Option(20.0, min=1.0, help="Length of each recording in seconds."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same files."),
    ensembles: str = typer.Option("", help="Comma-separated ensembles to use in turn (default: all, weighted)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a dataset already in OUT."),
):
    """Write the built-in synthetic MusicNet (11 instrument timbres, MusicNet ensembles)."""
    from .synth import synthesize

    chosen = tuple(e.strip() for e in ensembles.split(",") if e.strip()) or None
    try:
        ids = synthesize(out, recordings, seconds, seed, chosen, overwrite)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(f"wrote {len(ids['train'])} train + {len(ids['test'])} test recordings "
               f"({recordings * seconds / 60:.1f} min) under {out}")


@app.command()
def index(
    root: Path = typer.Argument(..., help="MusicNet root."),
    out: Path = typer.Argument(..., help="Output table: .csv or .parquet."),
):
    """The prior work's re-indexing: every span between note boundaries with its instruments and notes."""
    from .index import index_dataset

    if out.suffix not in (".csv", ".parquet"):
        fail(f"{out}: output must end in .csv or .parquet")
    try:
        table, skipped = index_dataset(root)
    except (InputError, AudioError) as exc:
        fail(str(exc))
    tmp = out.with_name(f".{out.name}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(tmp, index=False) if out.suffix == ".csv" else table.to_parquet(tmp, index=False)
    tmp.replace(out)
    typer.echo(f"wrote {len(table)} spans of {table['recording'].nunique()} recordings to {out}")
    typer.echo("skipped: " + (", ".join(f"{k}={v}" for k, v in sorted(skipped.items())) or "none"))


@app.command("build-shards")
def build_shards_cmd(
    root: Path = typer.Argument(..., help="MusicNet root (Kaggle/Zenodo or flat layout)."),
    out: Path = typer.Argument(Path("shards"), help="Output folder for shards and manifest.json."),
    window: float = typer.Option(1.0, min=0.01, help="Window length in seconds."),
    hop: float = typer.Option(0.5, min=0.01, help="Seconds between window starts."),
    segmentation: str = typer.Option("windows", help="windows | spans (the prior work's samples)."),
    min_active: float = typer.Option(0.1, min=0.0, max=1.0,
                                     help="Label rule: an instrument is on when it sounds in at least this "
                                          "fraction of the window's frames (0 = any frame)."),
    val_fraction: float = typer.Option(0.1, min=0.0, max=0.9, help="Share of train recordings held out as val."),
    block_size: int = typer.Option(16, min=1, help="Samples per shuffled block."),
    shards_per_split: int = typer.Option(8, min=1, help="Shards per split (at least world_size x workers)."),
    max_shard_mb: float = typer.Option(0.0, min=0.0, help="Size cap per shard in MB; 0 = none."),
    n_mels: int = typer.Option(128, min=8, help="Mel bins."),
    sample_rate: int = typer.Option(22050, min=4000, help="Feature sample rate (audio is resampled)."),
    n_fft: int = typer.Option(1024, min=64, help="FFT size."),
    hop_length: int = typer.Option(256, min=16, help="STFT hop in samples at the feature rate."),
    workers: int = typer.Option(2, min=1, help="Worker processes."),
    seed: int = typer.Option(0, help="Seed for val split, window shuffle and block scatter."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard an existing build in OUT and start over."),
):
    """Build WebDataset shards (log-mel, labels, frame roll) from a MusicNet root; resumable."""
    from .build import BuildConfig, build_shards, format_summary
    from .features import FeatureConfig
    from .windows import WindowConfig

    if segmentation not in ("windows", "spans"):
        fail(f"--segmentation must be windows or spans, not {segmentation!r}")
    cfg = BuildConfig(
        features=FeatureConfig(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                               fmax=sample_rate / 2),
        windows=WindowConfig(window_s=window, hop_s=hop, segmentation=segmentation, min_active=min_active),
        val_fraction=val_fraction, block_size=block_size, shards_per_split=shards_per_split,
        max_shard_mb=max_shard_mb, seed=seed,
    )
    try:
        manifest = build_shards(root, out, cfg, workers=workers, overwrite=overwrite, progress=sys.stderr.isatty())
    except InputError as exc:
        fail(str(exc))
    summary = manifest["summary"]
    if summary["already_complete"]:
        typer.echo(f"{out}: already complete with these arguments (use --overwrite to rebuild)")
    typer.echo(format_summary(manifest))
    if not summary["already_complete"]:
        typer.echo(f"done in {summary['wall_s']:.1f} s: {summary['audio_seconds_processed']:.0f} s of audio decoded "
                   f"({summary['realtime_factor']}x real time), {summary['recordings_reused']} recordings reused "
                   f"from an interrupted build; manifest: {out / 'manifest.json'}")


@app.command()
def inspect(
    out: Path = typer.Argument(Path("shards"), help="Shard folder (or its manifest.json)."),
    verify: bool = typer.Option(False, "--verify", help="Re-hash every shard and report mismatches."),
):
    """Summarise a shard set from its manifest; --verify checks every shard's size and sha256."""
    from .build import format_summary
    from .manifest import read_manifest
    from .shardwriter import sha256_file

    try:
        manifest = read_manifest(out)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    typer.echo(format_summary(manifest))
    if not verify:
        return
    folder = out if out.is_dir() else out.parent
    bad = []
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            path = folder / shard["name"]
            if not path.is_file():
                bad.append(f"{path}: missing")
            elif path.stat().st_size != shard["bytes"] or sha256_file(path) != shard["sha256"]:
                bad.append(f"{path}: size or sha256 differs from the manifest")
    n = sum(len(s["shards"]) for s in manifest["splits"].values())
    for line in bad:
        typer.secho(f"MISMATCH {line}", fg=typer.colors.RED, err=True)
    typer.echo(f"verified {n} shards: {n - len(bad)} ok, {len(bad)} bad")
    if bad:
        raise typer.Exit(1)
