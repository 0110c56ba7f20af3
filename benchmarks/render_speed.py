"""render speed and memory: MIDI string quartets and wind quintets (4-5 voices) rendered with the
default SoundFont and all recording-condition effects, one process (per core). Real-time factor over
--files files of --seconds each (median of --repeats); peak RSS for one file of 1 minute against one
of 5 minutes (memory is per recording: it grows with a recording's length, not with the number of
files).
Usage: python benchmarks/render_speed.py [--files 6 --seconds 60]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pretty_midi
from rss import peak_rss_mb

from musicid.pipeline.render import render

RENDER = (
    "from pathlib import Path; from musicid.pipeline.render import render; "
    "render([Path({src!r})], Path({out!r}))"
)


def write_piece(path: Path, seconds: float, rng: np.random.Generator) -> None:
    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    for program, low, high in (
        (40, 55, 88),
        (41, 48, 76),
        (42, 36, 64),
        (71, 50, 80),
        (73, 60, 90),
    ):
        inst = pretty_midi.Instrument(program=program)
        t = 0.0
        while t < seconds:
            length = float(rng.choice([0.25, 0.5, 1.0]))
            if rng.uniform() > 0.15:
                inst.notes.append(
                    pretty_midi.Note(
                        int(rng.integers(60, 110)),
                        int(rng.integers(low, high)),
                        t,
                        min(seconds, t + 0.9 * length),
                    )
                )
            t += length
        pm.instruments.append(inst)
    pm.write(str(path))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "midi"
        src.mkdir()
        for i in range(args.files):
            write_piece(src / f"{i}.mid", args.seconds, rng)
        runs = []
        for r in range(args.repeats):
            t = time.perf_counter()
            result = render([src], Path(tmp) / f"out{r}", test_fraction=0.0, seed=r)
            runs.append(result.seconds / (time.perf_counter() - t))
        rss = {}
        for minutes in (1, 5):
            one = Path(tmp) / f"one{minutes}"
            one.mkdir()
            write_piece(one / "piece.mid", 60.0 * minutes, rng)
            rss[minutes] = peak_rss_mb(RENDER.format(src=str(one), out=f"{tmp}/rss{minutes}"))
    print(
        f"{args.files} files x {args.seconds:.0f} s, 5 voices, default SoundFont, all effects, one "
        "process: "
        f"{statistics.median(runs):.0f}x real time (runs {[round(x) for x in runs]}; target >= "
        "100x per core)"
    )
    print(f"peak RSS: {rss[1]:.0f} MB for a 1-minute file, {rss[5]:.0f} MB for a 5-minute file")


if __name__ == "__main__":
    main()
