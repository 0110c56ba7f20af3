"""Rare-class check: do rendered recordings help the instruments a MusicNet-like dataset barely has?

The main dataset stands in for MusicNet: common ensembles (piano, strings, clarinet, horn, bassoon) plus ONE
train recording each of Violin and Harpsichord, Wind and Strings Octet (the only contrabass) and Wind Quintet
(flute, oboe), so harpsichord, contrabass, flute and oboe each sit in one recording, as in MusicNet where they
sit in 3-12 of 330. Its test folder holds common recordings and two to four of each rare ensemble. It is played with
a SoundFont (default: MuseScore General, Debian `musescore-general-soundfont-small`) other than the one the
extra root is rendered with (the default TimGM6mb), as real recordings differ from rendered ones. Two models,
same epochs: main alone, and main plus the extra root (`build-shards MAIN EXTRA OUT`: the extra recordings add
to train only). Prints per-class test AP before/after.
Usage: python benchmarks/rare_classes.py [--main-soundfont PATH] [--out DIR]   (about 12 min on 2 cores)
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
from pathlib import Path

from clis import build, evaluate, synth, train

OTHER = Path("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3")
COMMON = ("Solo Piano", "String Quartet", "Accompanied Violin", "Solo Cello", "Piano Trio",
          "Pairs Clarinet-Horn-Bassoon", "Accompanied Clarinet", "Horn Piano Trio", "Piano Quartet")
RARE = ("Violin and Harpsichord", "Wind and Strings Octet", "Wind Quintet")
EXTRA = (*RARE, "Solo Flute", "Wind Octet")


def recordings(dataset: Path) -> list[tuple[dict, Path, Path]]:
    """(metadata row, wav, label csv) of every recording of a MusicNet-layout dataset, train folder first."""
    base = dataset / "musicnet" / "musicnet"
    with open(dataset / "musicnet_metadata.csv", newline="") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    return [(rows[w.stem], w, base / f"{folder}_labels" / f"{w.stem}.csv")
            for folder in ("train", "test") for w in sorted((base / f"{folder}_data").glob("*.wav"))]


def compose(common: Path, rare: Path, out: Path) -> Path:
    """MAIN: all of `common` in its own folders; the first recording of each rare ensemble in train, the rest of
    `rare` in test. Rare recordings are renumbered (both synth runs count ids from the same start)."""
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
    ap.add_argument("--main-soundfont", type=Path, default=OTHER, help="SoundFont of the MusicNet stand-in.")
    ap.add_argument("--common", type=int, default=48, help="Recordings of common ensembles in the main dataset.")
    ap.add_argument("--extra", type=int, default=30, help="Rendered recordings in the extra root.")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="Keep everything here (default: a temporary folder).")
    args = ap.parse_args()
    if not args.main_soundfont.is_file():
        sys.exit(f"{args.main_soundfont}: no such SoundFont (apt-get install musescore-general-soundfont-small, "
                 "or --main-soundfont)")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        common = synth(root / "common", args.common, 0, soundfont=args.main_soundfont, ensembles=COMMON)
        rare = synth(root / "rare", 4 * len(RARE), 1, soundfont=args.main_soundfont, ensembles=RARE)
        main_root = compose(common, rare, root / "main")
        extra = synth(root / "extra", args.extra, 2, ensembles=EXTRA)
        results = {}
        for name, roots in (("main", [main_root]), ("main + extra", [main_root, extra])):
            shards = build(roots, root / f"shards-{name.replace(' + ', '-')}", 0.2)
            run = train(shards, root / "runs" / name.replace(" + ", "-"), args.epochs, 0.5)
            results[name] = evaluate(run, shards, "test", root / "eval" / name.replace(" + ", "-"))
    before, after = results["main"], results["main + extra"]
    print(f"\nper-class test AP (window level; main test split: {before['samples']} windows), "
          f"{args.epochs} epochs each; the extra root adds {args.extra} rendered recordings to train")
    print("| instrument | test windows | AP main | AP main + extra | change |")
    print("|---|---|---|---|---|")
    for name, b in before["per_class"].items():
        a = after["per_class"][name]
        if not b["present"]:
            print(f"| {name} | 0 | absent | absent | |")
            continue
        print(f"| {name} | {b['support']} | {b['ap']:.3f} | {a['ap']:.3f} | {a['ap'] - b['ap']:+.3f} |")
    print(f"| mAP | | {before['mAP']:.3f} | {after['mAP']:.3f} | {after['mAP'] - before['mAP']:+.3f} |")


if __name__ == "__main__":
    main()
