"""Cross-timbre check: does a model trained on one SoundFont name the instruments of another?

Train on the built-in scores rendered with the default SoundFont (TimGM6mb, inside pretty_midi),
then score test music rendered twice from the same scores and the same recording conditions: once
with that SoundFont and once with another one it never hears (default: MuseScore General, Debian
`musescore-general-soundfont-small`). Arms:
  dry                 scores as written, no recording conditions, no training augmentation varied
  per-recording variety in the data (tempo, transposition, dynamics, room, EQ, compression,
                      gain, noise: `synth --variety`)
  varied+conditions   the same data, plus `musicid-train --conditions 0.5` (spectrogram-domain
  conditions) two SoundFonts      varied+conditions, each recording played by a seeded choice of the
  default SoundFont and
                      a second one (`--also`, default FluidR3 GM, Debian `fluid-soundfont-gm`), when
                      present
Each arm is scored on dry and on varied test music of both SoundFonts (window-level mAP). The point
of the variety is that the gap between the same and the other SoundFont shrinks.
Usage: python benchmarks/cross_timbre.py [--other PATH] [--also PATH] [--epochs 3] [--out DIR]
(about 10 min on 2 cores with the defaults)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from clis import build, evaluate, synth, train

from musicid.pipeline.players import default_soundfont

OTHER = Path("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3")
ALSO = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TESTS = [(font, cond) for cond in ("dry", "varied") for font in ("same", "other")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--other", type=Path, default=OTHER, help="The SoundFont the model never hears in training."
    )
    ap.add_argument(
        "--also", type=Path, default=ALSO, help="A second training SoundFont for the last arm."
    )
    ap.add_argument("--train-recordings", type=int, default=120)
    ap.add_argument("--test-recordings", type=int, default=36)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument(
        "--out", type=Path, default=None, help="Keep everything here (default: a temporary folder)."
    )
    args = ap.parse_args()
    if not args.other.is_file():
        sys.exit(
            f"{args.other}: no such SoundFont (apt-get install musescore-general-soundfont-small, "
            "or --other)"
        )
    default = (default_soundfont(),)
    arms = {
        "dry": (False, 0.0, default),
        "varied": (True, 0.0, default),
        "varied+conditions": (True, 0.5, default),
    }
    if args.also.is_file():
        arms["two SoundFonts"] = (True, 0.5, (*default, args.also))
    else:
        print(
            f"{args.also}: not here, so no two-SoundFont arm (apt-get install fluid-soundfont-gm, "
            "or --also)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        # Evaluation-only datasets: seed 1 gives the same scores and conditions whatever the
        # SoundFont; all of their train folder (5/6 of the recordings) is scored, no model ever
        # trains on it.
        tests = {
            (font, cond): build(
                [
                    synth(
                        root / f"test-{font}-{cond}",
                        args.test_recordings,
                        1,
                        cond == "varied",
                        (args.other,) if font == "other" else default,
                    )
                ],
                root / f"test-{font}-{cond}-shards",
                0.0,
            )
            for font, cond in TESTS
        }
        data = {}
        for varied, _, fonts in arms.values():
            if (varied, fonts) not in data:
                name = f"train-{len(data)}"
                data[varied, fonts] = build(
                    [synth(root / name, args.train_recordings, 0, varied, fonts)],
                    root / f"{name}-shards",
                    0.2,
                )
        results = {}
        for arm, (varied, conditions, fonts) in arms.items():
            run = train(
                data[varied, fonts], root / "runs" / arm.replace(" ", "-"), args.epochs, conditions
            )
            scored = {
                key: evaluate(
                    run, shards, "train", root / "eval" / arm.replace(" ", "-") / "-".join(key)
                )
                for key, shards in tests.items()
            }
            results[arm] = {key: r["mAP"] for key, r in scored.items()}
            print(
                f"{arm}: "
                + ", ".join(f"{f} SoundFont/{c} {m:.3f}" for (f, c), m in results[arm].items()),
                flush=True,
            )
    print(
        f"\nwindow-level mAP; trained on {args.train_recordings} recordings x 20 s, {args.epochs} "
        "epochs; tested "
        f"on the same scores ({scored['same', 'dry']['samples']} windows) rendered with the "
        "default SoundFont "
        f"(same) and with {args.other.name} (other)"
    )
    print("| training | same, dry | other, dry | gap | same, varied | other, varied | gap |")
    print("|---|---|---|---|---|---|---|")
    for arm, m in results.items():
        cells = []
        for cond in ("dry", "varied"):
            same, other = m["same", cond], m["other", cond]
            cells += [f"{same:.3f}", f"{other:.3f}", f"{same - other:+.3f}"]
        print(f"| {arm} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
