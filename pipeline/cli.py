"""`musicid-pipeline`: synth, render, instruments, index, build-shards, inspect."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from musicid.cli import choices, comma_separated, command, new_app, run
from musicid.errors import InputError
from musicid.features import LogMel
from musicid.files import atomic_path, refuse_existing
from musicid.shardset import read_manifest, skipped_line, verify_shards
from musicid.windows import SEGMENTATIONS, WindowConfig

from .build import BuildConfig, build_shards
from .fetch import fetch
from .generator import Arrangement
from .index import index_dataset
from .render import EXCERPT_S, OTHERS, TEST_FRACTION
from .render import render as render_files
from .synth import ENGINES, RECORDINGS, SECONDS, synthesize
from .workers import WORKERS

app = new_app(no_args_is_help=True, help=__doc__)
FEAT, WIN, BUILD, ARR = LogMel(), WindowConfig(), BuildConfig(), Arrangement()
# the shard folder when none is named: build-shards writes it, inspect reads it
SHARDS = Path("shards")


Engine = choices("Engine", ENGINES)
Segmentation = choices("Segmentation", SEGMENTATIONS)
Others = choices("Others", OTHERS)
PLAYERS_HELP = (
    "With --library: play only these of its instruments (comma-separated names from its "
    "library.json), e.g. those held out of a training set, for validation on unheard players."
)
HOLD_OUT_HELP = (
    "With --library: never play these of its instruments (comma-separated names): hold them out "
    "for validation data played by them alone (--players)."
)


@app.command()
@command
def synth(
    out: Path = typer.Argument(
        ..., help="Folder to write the dataset into (MusicNet Kaggle layout)."
    ),
    recordings: int = typer.Option(RECORDINGS, min=2, help="Number of recordings (train + test)."),
    seconds: float = typer.Option(SECONDS, min=1.0, help="Length of each recording in seconds."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same files."),
    ensembles: str = typer.Option(
        "", help="Comma-separated ensembles to use in turn (default: all, weighted)."
    ),
    balance: bool = typer.Option(
        False,
        "--balance",
        help="Weight the ensembles so every instrument is in about "
        "as many recordings (default: MusicNet's proportions).",
    ),
    engine: Engine = typer.Option(
        Engine.additive,
        help="additive timbres, or sampled: the same scores played by a "
        "SoundFont synthesizer with recording-condition variety.",
    ),
    soundfont: list[Path] = typer.Option(
        None,
        help="sampled engine: SF2/SF3 SoundFont; repeat for a seeded choice "
        "per recording (default: TimGM6mb.sf2 from pretty_midi).",
    ),
    variety: bool = typer.Option(
        True,
        help="sampled engine: vary tempo, pitch, dynamics and recording conditions "
        "per recording; --no-variety plays the scores as written, dry.",
    ),
    library: Path = typer.Option(
        None,
        help="sampled engine: an instrument library (musicid-pipeline instruments "
        "fetch): each part's player drawn from it.",
    ),
    players: str = typer.Option("", help=PLAYERS_HELP),
    hold_out: str = typer.Option("", help=HOLD_OUT_HELP),
    others: float = typer.Option(
        ARR.others,
        min=0.0,
        max=1.0,
        help="sampled engine with --library: share of recordings with one more part, "
        "unlabelled, played by an instrument outside the 11.",
    ),
    others_db: float = typer.Option(
        ARR.others_db,
        min=0.0,
        max=30.0,
        help="That part's level, drawn within +-DB of the labelled parts' mean.",
    ),
    others_only: float = typer.Option(
        0.0,
        min=0.0,
        max=1.0,
        help="sampled engine with --library: share of recordings that are a line of "
        "an instrument outside the 11 alone (nothing labelled).",
    ),
    solo: float = typer.Option(
        0.0,
        min=0.0,
        max=1.0,
        help="Share of recordings that are a solo of one of the 11 instruments, drawn uniformly.",
    ),
    spread_db: float = typer.Option(
        ARR.spread_db,
        min=0.0,
        max=60.0,
        help="sampled engine: each part's level drawn within this many dB under the "
        "loudest (accompaniment under a melody).",
    ),
    entries: float = typer.Option(
        ARR.entries,
        min=0.0,
        max=1.0,
        help="sampled engine: share of parts that enter late, leave early, or both.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a dataset already in OUT."),
    workers: int = typer.Option(
        WORKERS, min=1, help="Worker processes (the files are the same for any number)."
    ),
):
    """Write the built-in synthetic MusicNet (11 instrument timbres, MusicNet ensembles)."""
    chosen = comma_separated(ensembles) or None
    arrangement = Arrangement(spread_db, entries, others, others_db)
    ids = synthesize(
        out,
        recordings,
        seconds,
        seed,
        chosen,
        overwrite,
        engine.value,
        soundfont or None,
        variety,
        balance,
        workers,
        sys.stderr.isatty(),
        library,
        solo,
        arrangement,
        others_only,
        comma_separated(players),
        comma_separated(hold_out),
    )
    typer.echo(
        f"wrote {len(ids['train'])} train + {len(ids['test'])} test recordings "
        f"({recordings * seconds / 60:.1f} min) under {out}"
    )


@app.command()
@command
def render(
    paths: list[Path] = typer.Argument(
        ...,
        metavar="INPUT... OUT",
        help="MIDI files, scores (MusicXML .mxl/.musicxml/.xml, kern .krn) or "
        "folders (searched recursively), then the output folder.",
    ),
    soundfont: list[Path] = typer.Option(
        None,
        help="SF2/SF3 SoundFont; repeat for a seeded choice per recording "
        "(default: TimGM6mb.sf2 from pretty_midi).",
    ),
    library: Path = typer.Option(
        None,
        help="Instrument library (musicid-pipeline instruments fetch): each part's "
        "player drawn from it instead of --soundfont.",
    ),
    players: str = typer.Option("", help=PLAYERS_HELP),
    hold_out: str = typer.Option("", help=HOLD_OUT_HELP),
    corpus: str = typer.Option(
        "",
        help="Also render music21's corpus scores of these composers (comma-separated, "
        "e.g. haydn,mozart,beethoven,bach).",
    ),
    seconds: float = typer.Option(
        EXCERPT_S, min=1.0, help="Scores: seconds per recording (a seeded excerpt)."
    ),
    excerpts: int = typer.Option(
        1, min=1, help="Scores: recordings per score, each an excerpt orchestrated anew."
    ),
    test_fraction: float = typer.Option(
        TEST_FRACTION, min=0.0, max=0.9, help="Share of files in the test folder (seeded)."
    ),
    others: Others = typer.Option(
        OTHERS[0],
        help="Programs outside the 11 and drums: drop them, or keep them audible without labels.",
    ),
    spread_db: float = typer.Option(
        ARR.spread_db,
        min=0.0,
        max=60.0,
        help="Scores: each part's level drawn within this many dB under the loudest.",
    ),
    entries: float = typer.Option(
        ARR.entries,
        min=0.0,
        max=1.0,
        help="Scores: share of parts that enter late, leave early, or both.",
    ),
    seed: int = typer.Option(0, help="Seed of the split and of every recording's variety."),
    variety: bool = typer.Option(
        True,
        help="Vary tempo, pitch, dynamics and recording conditions per recording; "
        "--no-variety plays each file as written, dry.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a dataset render wrote in OUT."
    ),
):
    """Render MIDI and scores into a MusicNet-layout dataset with sampled instruments and recording
    conditions."""
    composers = comma_separated(corpus)
    if len(paths) < 2 and not (composers and paths):
        raise InputError(
            "render takes MIDI files, scores or folders (or --corpus), then the output folder"
        )
    t0 = time.perf_counter()
    result = render_files(
        paths[:-1],
        paths[-1],
        soundfont or None,
        test_fraction,
        others.value,
        seed,
        overwrite,
        variety,
        library,
        composers,
        seconds,
        excerpts,
        Arrangement(spread_db, entries),
        comma_separated(players),
        comma_separated(hold_out),
    )
    wall = time.perf_counter() - t0
    typer.echo(
        f"rendered {len(result.ids['train'])} train + {len(result.ids['test'])} test recordings "
        f"({result.seconds / 60:.1f} min, {result.seconds / wall:.0f}x real time) under {paths[-1]}"
    )
    typer.echo(skipped_line(result.skipped))


instruments_app = new_app(
    no_args_is_help=True, help="The instrument library: recorded note samples and SoundFonts."
)
app.add_typer(instruments_app, name="instruments")


@instruments_app.command("fetch")
@command
def instruments_fetch(
    out: Path = typer.Argument(
        ..., help="Folder for the library (new, empty, or one this command wrote)."
    ),
    apt: bool = typer.Option(
        True, help="Install Debian's SoundFont packages with apt-get when missing."
    ),
):
    """Gather recorded note samples (npm registry) and SoundFonts (Debian) into an instrument
    library."""
    lib = fetch(out, apt)
    sampled = sorted({e.instrument or "others" for e in lib.entries if e.kind == "sfz"})
    typer.echo(
        f"{out}: {sum(e.kind == 'sfz' for e in lib.entries)} sampled instruments "
        f"({', '.join(sampled)}) "
        f"and {sum(e.kind == 'sf2' for e in lib.entries)} SoundFonts; licences in "
        f"{out / 'library.json'}"
    )


@app.command()
@command
def index(
    root: Path = typer.Argument(..., help="MusicNet root."),
    out: Path = typer.Argument(..., help="Output table: .csv or .parquet."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
):
    """The prior work's re-indexing: every span between note boundaries with its instruments and
    notes."""
    if out.suffix not in (".csv", ".parquet"):
        raise InputError(f"{out}: output must end in .csv or .parquet")
    refuse_existing([out], overwrite)
    table, skipped = index_dataset(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False) if out.suffix == ".csv" else table.to_parquet(
            tmp, index=False
        )
    typer.echo(
        f"wrote {len(table)} spans of {table['recording'].nunique() if len(table) else 0} "
        f"recordings to {out}"
    )
    typer.echo(skipped_line(skipped))


@app.command("build-shards")
@command
def build_shards_cmd(
    paths: list[Path] = typer.Argument(
        ...,
        metavar="ROOT [ROOT...] [OUT]",
        help="MusicNet root (Kaggle/Zenodo or flat layout), further roots (e.g. "
        "rendered music: train only), then the output folder (default: shards "
        "when one root is given).",
    ),
    window: float = typer.Option(WIN.window_s, min=0.01, help="Window length in seconds."),
    hop: float = typer.Option(WIN.hop_s, min=0.01, help="Seconds between window starts."),
    segmentation: Segmentation = typer.Option(
        WIN.segmentation, help="windows, or spans (the prior work's samples)."
    ),
    min_active: float = typer.Option(
        WIN.min_active,
        min=0.0,
        max=1.0,
        help="Label rule: an instrument is on when it sounds in at least this "
        "fraction of the window's frames (0 = any frame).",
    ),
    val_fraction: float = typer.Option(
        BUILD.val_fraction, min=0.0, max=0.9, help="Share of train recordings held out as val."
    ),
    block_size: int = typer.Option(BUILD.block_size, min=1, help="Samples per shuffled block."),
    shards_per_split: int = typer.Option(
        BUILD.shards_per_split, min=1, help="Shards per split (at least world_size x workers)."
    ),
    max_shard_mb: float = typer.Option(
        BUILD.max_shard_mb,
        min=0.0,
        help="Size cap per shard in MB (more shards until every one is under it); 0 = none.",
    ),
    n_mels: int = typer.Option(FEAT.n_mels, min=8, help="Mel bins."),
    sample_rate: int = typer.Option(
        FEAT.sample_rate, min=4000, help="Feature sample rate (audio is resampled)."
    ),
    n_fft: int = typer.Option(FEAT.n_fft, min=64, help="FFT size."),
    hop_length: int = typer.Option(
        FEAT.hop_length, min=16, help="STFT hop in samples at the feature rate."
    ),
    workers: int = typer.Option(WORKERS, min=1, help="Worker processes."),
    extra_val: bool = typer.Option(
        BUILD.extra_val,
        "--extra-val",
        help="Let recordings of the roots after the first go to val too (never test).",
    ),
    seed: int = typer.Option(
        BUILD.seed, help="Seed for val split, window shuffle and block scatter."
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Discard an earlier build in OUT (only what it wrote) and start over.",
    ),
):
    """Build WebDataset shards (log-mel, labels, frame roll) from MusicNet roots; resumable."""
    roots, out = (paths, SHARDS) if len(paths) == 1 else (paths[:-1], paths[-1])
    cfg = BuildConfig(
        features=LogMel(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels),
        windows=WindowConfig(
            window_s=window, hop_s=hop, segmentation=segmentation.value, min_active=min_active
        ),
        val_fraction=val_fraction,
        block_size=block_size,
        shards_per_split=shards_per_split,
        max_shard_mb=max_shard_mb,
        extra_val=extra_val,
        seed=seed,
    )
    result = build_shards(
        roots, out, cfg, workers=workers, overwrite=overwrite, progress=sys.stderr.isatty()
    )
    if result.already_complete:
        typer.echo(f"{out}: already complete with these arguments (use --overwrite to rebuild)")
    typer.echo(result.manifest.summary())
    if not result.already_complete:
        typer.echo(
            f"done in {result.wall_s:.1f} s: {result.audio_seconds_processed:.0f} s of audio "
            "decoded "
            f"({result.realtime_factor}x real time), {result.recordings_reused} recordings reused "
            "from an "
            f"interrupted build, {result.rebuilt_missing} missing shards rebuilt; "
            f"manifest: {out / 'manifest.json'}"
        )


@app.command()
@command
def inspect(
    out: Path = typer.Argument(SHARDS, help="Shard folder (or its manifest.json)."),
    verify: bool = typer.Option(
        False, "--verify", help="Re-hash every shard and report mismatches."
    ),
):
    """Summarise a shard set from its manifest; --verify checks every shard's size and sha256."""
    manifest = read_manifest(out)
    typer.echo(manifest.summary())
    if not verify:
        return
    bad = verify_shards(out, manifest)
    n = sum(len(s.shards) for s in manifest.splits.values())
    for line in bad:
        typer.secho(f"MISMATCH {line}", fg=typer.colors.RED, err=True)
    typer.echo(f"verified {n} shards: {n - len(bad)} ok, {len(bad)} bad")
    if bad:
        raise typer.Exit(1)


def main() -> None:
    run(app, "musicid-pipeline")
