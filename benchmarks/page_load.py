"""The listening page for a 1-hour recording (7,200 windows x 11 at 0.5 s hop) in headless Chromium:
time from navigation to the heat map drawn, beside a 1-minute page (the baseline) in the same run.
Median of --repeats. Needs Debian's chromium (make setup installs it) and Playwright (a dev
dependency).
Usage: python benchmarks/page_load.py [--minutes 60]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from playwright.sync_api import sync_playwright

from musicid.infer.page import write_html
from musicid.infer.predict import Prediction
from musicid.vocab import NAMES


def page_for(folder: Path, minutes: float) -> Path:
    rng = np.random.default_rng(0)
    starts = np.arange(0, minutes * 60 - 1 + 1e-9, 0.5)
    probs = rng.random((len(starts), len(NAMES))) ** 3
    wav = folder / f"{minutes:g}min.wav"
    # the page's timing does not depend on the audio's length
    sf.write(wav, np.zeros(8000, np.float32), 8000)
    pred = Prediction(
        wav,
        minutes * 60,
        list(NAMES),
        starts,
        starts + 1,
        probs,
        probs > 0.5,
        "calibrated",
        "model.pt",
        {"thresholds": [0.5] * len(NAMES)},
    )
    out = folder / f"{minutes:g}min.html"
    write_html(pred, out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    chromium = shutil.which("chromium")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        results = {}
        for minutes in (1.0, args.minutes):
            path = page_for(Path(tmp), minutes)
            runs = []
            for _ in range(args.repeats):
                page = browser.new_page(viewport={"width": 1400, "height": 800})
                t = time.perf_counter()
                page.goto(path.as_uri())
                page.wait_for_function("window.musicid && window.musicid.drawn")
                runs.append(
                    (time.perf_counter() - t, page.evaluate("window.musicid.drawMs") / 1000)
                )
                page.close()
            results[minutes] = (runs, path.stat().st_size / 2**20)
        browser.close()
    for minutes, (runs, mb) in results.items():
        load, draw = (statistics.median(r[k] for r in runs) for k in (0, 1))
        print(
            f"{minutes:5.0f}-min page ({mb:5.1f} MB, {int(minutes * 120)} windows): load + draw "
            f"{load:.2f} s "
            f"(draw alone {draw:.3f} s), median of {args.repeats}"
        )


if __name__ == "__main__":
    main()
