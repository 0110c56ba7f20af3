"""Peak RSS of build-shards (workers=2) for two dataset sizes: it must not grow with the dataset.
Baseline in the same run: the small build in a process that has imported webdataset first, as
writing shards with `webdataset.TarWriter` would (it loads PyTorch), which is why the pipeline
writes them with `tarfile`.

Each build runs in a fresh child under a fresh watcher process; the figure is the largest peak RSS
of any process of the build (the main process or a worker): the watcher's
getrusage(RUSAGE_CHILDREN).
Usage: python benchmarks/build_memory.py [--small 10] [--large 40] [--seconds 60]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from rss import peak_rss_mb

BUILD = (
    "from pathlib import Path; from musicid.pipeline.build import BuildConfig, build_shards; "
    "build_shards(Path({root!r}), Path({out!r}), BuildConfig(), workers=2)"
)
SYNTH = (
    "from pathlib import Path; from musicid.pipeline.synth import synthesize; "
    "synthesize(Path({root!r}), {n}, {s}, 0)"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=10, help="recordings in the small set")
    ap.add_argument("--large", type=int, default=40, help="recordings in the large set")
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds per recording")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in (args.small, args.large):
            root = f"{tmp}/d{n}"
            subprocess.run(
                [sys.executable, "-c", SYNTH.format(root=root, n=n, s=args.seconds)], check=True
            )
        rows = [
            (n, peak_rss_mb(BUILD.format(root=f"{tmp}/d{n}", out=f"{tmp}/o{n}")))
            for n in (args.small, args.large)
        ]
        sizes = {
            n: sum(p.stat().st_size for p in Path(f"{tmp}/o{n}").glob("*.tar")) / 2**20
            for n, _ in rows
        }
        with_wds = peak_rss_mb(
            "import webdataset; " + BUILD.format(root=f"{tmp}/d{args.small}", out=f"{tmp}/w")
        )
    for n, mb in sorted(rows):
        print(
            f"{n:4d} recordings x {args.seconds:.0f} s = {n * args.seconds / 3600:5.2f} h audio, "
            f"{sizes[n]:7.1f} MB shards: peak RSS {mb:7.1f} MB"
        )
    print(
        f"baseline: {args.small} recordings with webdataset (and so PyTorch) imported: peak RSS "
        f"{with_wds:7.1f} MB"
    )


if __name__ == "__main__":
    main()
