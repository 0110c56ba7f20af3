"""Augmentation check: plain training against each training augmentation, on one dataset.

Data: the built-in scores on the sampled engine with per-recording variety, every instrument in its
share (`synth --engine sampled --balance`, as the demo), val share 0.2. Arms, each for --epochs at
lr 2e-3 with bce and seed 0: plain; `--augment` (SpecAugment); `--mixup 1.0`; `--conditions 0.5`.
Reported: the best val mAP over the epochs (what a choice of default may use) and the test mAP of
best.pt (reported, never used to choose).
Usage: python benchmarks/augmentation.py [--recordings 48] [--epochs 10] [--out DIR]
(about 8 min on 2 cores with the defaults)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from clis import build, evaluate, synth, train

ARMS = {
    "plain": (0.0,),
    "--augment": (0.0, "--augment"),
    "--mixup 1.0": (0.0, "--mixup", "1.0"),
    "--conditions 0.5": (0.5,),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recordings", type=int, default=48)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument(
        "--out", type=Path, default=None, help="Keep everything here (default: a temporary folder)."
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        shards = build([synth(root / "data", args.recordings, 0)], root / "shards", 0.2)
        print(
            f"{args.recordings} recordings x 20 s, {args.epochs} epochs, lr 2e-3, bce", flush=True
        )
        print("| training | best val mAP | test mAP (best.pt) |\n|---|---|---|", flush=True)
        for arm, (conditions, *extra) in ARMS.items():
            run = train(
                shards,
                root / "runs" / arm.strip("-").replace(" ", "-"),
                args.epochs,
                conditions,
                *extra,
            )
            rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            val = max(r["val_mAP"] for r in rows)
            test = evaluate(run, shards, "test", root / "eval" / run.name)["mAP"]
            print(f"| {arm} | {val:.3f} | {test:.3f} |", flush=True)


if __name__ == "__main__":
    main()
