"""Rare-class check: do rendered recordings help the instruments a MusicNet-like dataset barely has?

The main dataset stands in for MusicNet: common ensembles (piano, strings, clarinet, horn, bassoon)
plus ONE train recording each of Violin and Harpsichord, Wind and Strings Octet (the only
contrabass) and Wind Quintet (flute, oboe), so harpsichord, contrabass, flute and oboe each sit in
one recording, as in MusicNet where they sit in 3-12 of 330. Its test folder holds common recordings
and two to four of each rare ensemble. It is played with a SoundFont (default: MuseScore General,
Debian `musescore-general-soundfont-small`) other than the one the extra root is rendered with (the
default TimGM6mb), as real recordings differ from rendered ones. Three models: main alone; main plus
the extra root (`build-shards MAIN EXTRA OUT`: the extra recordings add to train only), same epochs,
hence more steps; and main alone for as many steps, so that what the extra music brings is told
apart from longer training. Prints per-class test AP of each.
Usage: python benchmarks/rare_classes.py [--main-soundfont PATH] [--out DIR]   (about 6 min on 2
cores)
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
from pathlib import Path

from clis import build, evaluate, synth, train

from musicid.shardset import read_manifest

OTHER = Path("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3")
COMMON = (
    "Solo Piano",
    "String Quartet",
    "Accompanied Violin",
    "Solo Cello",
    "Piano Trio",
    "Pairs Clarinet-Horn-Bassoon",
    "Accompanied Clarinet",
    "Horn Piano Trio",
    "Piano Quartet",
)
RARE = ("Violin and Harpsichord", "Wind and Strings Octet", "Wind Quintet")
EXTRA = (*RARE, "Solo Flute", "Wind Octet")


def recordings(dataset: Path) -> list[tuple[dict, Path, Path]]:
    """(metadata row, wav, label csv) of every recording of a MusicNet-layout dataset, train folder
    first."""
    base = dataset / "musicnet" / "musicnet"
    with open(dataset / "musicnet_metadata.csv", newline="") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    return [
        (rows[w.stem], w, base / f"{folder}_labels" / f"{w.stem}.csv")
        for folder in ("train", "test")
        for w in sorted((base / f"{folder}_data").glob("*.wav"))
    ]


def compose(common: Path, rare: Path, out: Path) -> Path:
    """MAIN: all of `common` in its own folders; the first recording of each rare ensemble in train,
    the rest of `rare` in test. Rare recordings are renumbered (both synth runs count ids from the
    same start)."""
    base = out / "musicnet" / "musicnet"
    placed, seen = [], set()
    for row, wav, labels in recordings(common):
        placed.append((row, wav, labels, wav.parent.name.split("_")[0]))
    for row, wav, labels in recordings(rare):
        folder = "test" if row["ensemble"] in seen else "train"
        seen.add(row["ensemble"])
        placed.append(({**row, "id": f"9{row['id']}"}, wav, labels, folder))
    for row, wav, labels, folder in placed:
        for kind, src, ext in (("data", wav, "wav"), ("labels", labels, "csv")):
            (base / f"{folder}_{kind}").mkdir(parents=True, exist_ok=True)
            shutil.copy(src, base / f"{folder}_{kind}" / f"{row['id']}.{ext}")
    with open(out / "musicnet_metadata.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(placed[0][0]))
        writer.writeheader()
        writer.writerows(row for row, *_ in placed)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--main-soundfont", type=Path, default=OTHER, help="SoundFont of the MusicNet stand-in."
    )
    ap.add_argument(
        "--common", type=int, default=48, help="Recordings of common ensembles in the main dataset."
    )
    ap.add_argument("--extra", type=int, default=30, help="Rendered recordings in the extra root.")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument(
        "--out", type=Path, default=None, help="Keep everything here (default: a temporary folder)."
    )
    args = ap.parse_args()
    if not args.main_soundfont.is_file():
        sys.exit(
            f"{args.main_soundfont}: no such SoundFont (apt-get install "
            "musescore-general-soundfont-small, "
            "or --main-soundfont)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        common = synth(
            root / "common", args.common, 0, soundfonts=(args.main_soundfont,), ensembles=COMMON
        )
        rare = synth(
            root / "rare", 4 * len(RARE), 1, soundfonts=(args.main_soundfont,), ensembles=RARE
        )
        main_root = compose(common, rare, root / "main")
        extra = synth(root / "extra", args.extra, 2, ensembles=EXTRA)
        shards = {
            "main": build([main_root], root / "shards-main", 0.2),
            "main + extra": build([main_root, extra], root / "shards-main-extra", 0.2),
        }
        train_windows = {k: read_manifest(v).splits["train"].samples for k, v in shards.items()}
        # the extra root also means more steps per epoch: a third run gives main alone as many steps
        longer = max(
            args.epochs + 1,
            round(args.epochs * train_windows["main + extra"] / train_windows["main"]),
        )
        arms = {
            "main": ("main", args.epochs),
            f"main, {longer} epochs": ("main", longer),
            "main + extra": ("main + extra", args.epochs),
        }
        results = {}
        for arm, (data, epochs) in arms.items():
            slug = arm.replace(" + ", "-").replace(", ", "-").replace(" ", "-")
            run = train(shards[data], root / "runs" / slug, epochs, 0.5)
            results[arm] = evaluate(run, shards[data], "test", root / "eval" / slug)
    print(
        f"\nper-class test AP (window level; main test split: {results['main']['samples']} "
        "windows); train "
        f"windows: main {train_windows['main']}, main + extra {train_windows['main + extra']} (the "
        "extra root "
        f"adds {args.extra} rendered recordings to train)"
    )
    print(
        "| instrument | test windows | "
        + " | ".join(f"AP {arm}" for arm in arms)
        + " | extra vs as many steps |"
    )
    print("|---|---|" + "---|" * len(arms) + "---|")
    for name, b in results["main"]["per_class"].items():
        aps = [results[arm]["per_class"][name]["ap"] for arm in arms]
        if not b["present"]:
            print(f"| {name} | 0 | " + " | ".join("absent" for _ in arms) + " | |")
            continue
        print(
            f"| {name} | {b['support']} | "
            + " | ".join(f"{x:.3f}" for x in aps)
            + f" | {aps[2] - aps[1]:+.3f} |"
        )
    maps = [results[arm]["mAP"] for arm in arms]
    print("| mAP | | " + " | ".join(f"{x:.3f}" for x in maps) + f" | {maps[2] - maps[1]:+.3f} |")


if __name__ == "__main__":
    main()
