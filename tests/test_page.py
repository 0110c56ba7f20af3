"""The listening page in a real browser: headless Chromium (Debian's package) driven by Playwright,
opening pages from file:// as a user would. `.ci/run` (through `make setup`) installs Chromium when
it is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicid.errors import InputError
from musicid.infer import page as page_mod
from musicid.infer.page import write_html
from musicid.infer.predict import Prediction
from musicid.vocab import NAMES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(
    os.environ.get("MUSICID_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts")
)
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip(
        "no chromium here (make setup installs it as root; CI always runs these tests)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--autoplay-policy=no-user-gesture-required",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


def known_prediction(tmp_path: Path, seconds: float = 6.0) -> Prediction:
    """Windows every 0.5 s; violin the first half, cello from 2 s on, piano never; a real WAV beside
    it."""
    wav = tmp_path / "known piece.wav"
    sf.write(
        wav, 0.1 * np.sin(np.linspace(0, 2000, int(seconds * 22050))).astype(np.float32), 22050
    )
    starts = np.arange(0, seconds - 1 + 1e-9, 0.5)
    probs = np.full((len(starts), len(NAMES)), 0.05)
    probs[starts < 3, NAMES.index("Violin")] = 0.9
    probs[starts >= 2, NAMES.index("Cello")] = 0.8
    return Prediction(
        wav,
        seconds,
        list(NAMES),
        starts,
        starts + 1,
        probs,
        probs > 0.5,
        "calibrated",
        "model.pt",
        {"thresholds": [0.5] * len(NAMES)},
    )


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1200, "height": 700})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function("window.musicid && window.musicid.drawn")
    page.wait_for_function("document.getElementById('audio').readyState >= 1")
    return page, errors


def on_at(pred: Prediction, t: float) -> list[str]:
    w = int(np.searchsorted(pred.regions(), t, side="right") - 1)
    return [
        n for n, a in zip(pred.names, pred.active[min(w, len(pred.starts) - 1)], strict=True) if a
    ]


def test_page_shows_plays_and_seeks(browser, tmp_path):
    pred = known_prediction(tmp_path)
    out = tmp_path / "pages" / "known piece.instruments.html"
    out.parent.mkdir()
    write_html(pred, out)
    html = out.read_text()
    assert (
        "<script src" not in html
        and "<link" not in html
        and "http" not in html.split("<script>")[1]
    )
    assert 'src="../known%20piece.wav"' in html  # a relative link to the input, not a copy
    page, errors = open_page(browser, out)
    assert (
        page.locator("#labels .instrument").count() == 11 and page.locator("#now li").count() == 11
    )
    assert page.evaluate("window.musicid.data.segments") == {
        k: [list(s) for s in v] for k, v in pred.segments().items()
    }
    assert page.locator("#summary tbody tr").count() == 2  # violin and cello
    for t in (0.3, 2.6, 4.9):
        page.evaluate(f"window.musicid.seek({t})")
        page.wait_for_function(
            f"Math.abs(document.getElementById('audio').currentTime - {t}) < 0.01"
        )
        shown = [li.get_attribute("data-name") for li in page.locator("#now li.on").all()]
        assert shown == on_at(pred, t), t
    box = page.locator("#overlay").bounding_box()
    page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + box["height"] / 2)
    assert page.evaluate("document.getElementById('audio').currentTime") == pytest.approx(
        4.5, abs=0.05
    )
    page.keyboard.press("ArrowLeft")  # 5 s back from 4.5 s: the start
    assert page.evaluate("document.getElementById('audio').currentTime") == pytest.approx(
        0.0, abs=0.05
    )
    page.keyboard.press("Space")
    page.wait_for_function("!document.getElementById('audio').paused")
    page.keyboard.press("Space")
    page.wait_for_function("document.getElementById('audio').paused")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "listening-page.png"), full_page=True)
    assert errors == []


def test_embedded_audio_plays_from_the_page_alone(browser, tmp_path, monkeypatch):
    pred = known_prediction(tmp_path)
    out = tmp_path / "mailed.html"
    write_html(pred, out, embed_audio=True)
    pred.path.unlink()  # the page no longer needs the file
    assert "data:audio/ogg;base64," in out.read_text()
    page, errors = open_page(browser, out)
    assert page.evaluate("document.getElementById('audio').duration") == pytest.approx(6.0, abs=0.1)
    assert errors == []
    monkeypatch.setattr(page_mod, "EMBED_MAX_S", 1)
    sf.write(pred.path, np.zeros(44100 * 2, np.float32), 44100)
    with pytest.raises(InputError, match=r"at most 0 min \(1 s\) of audio"):
        write_html(pred, tmp_path / "too-long.html", embed_audio=True)


@pytest.mark.parametrize("name", ["<!--<script>.wav", "a<b>&amp;-->.wav", "x\u2028y'\"&.wav"])
def test_hostile_file_names_cannot_break_the_page(browser, tmp_path, name):
    """A name that would end the script element or open a comment inside the embedded JSON."""
    pred = known_prediction(tmp_path)
    hostile = tmp_path / name
    pred.path.rename(hostile)
    pred.path = hostile
    out = tmp_path / "hostile.html"
    write_html(pred, out)
    page, errors = open_page(browser, out)
    assert page.evaluate("window.musicid.data.segments")["Violin"] == [
        list(s) for s in pred.segments()["Violin"]
    ]
    page.evaluate("window.musicid.seek(2.5)")
    page.wait_for_function("Math.abs(document.getElementById('audio').currentTime - 2.5) < 0.01")
    assert errors == []
