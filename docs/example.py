"""Regenerate the README's first example from the code as it is: run its command on the example
clip, put the stdout it prints between the README's example markers, and save a picture of the
listening page for the same clip as docs/example-page.png (headless Chromium through Playwright;
skipped with a note when there is none). `make readme`; tests/test_readme.py checks the README
against a fresh run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COMMAND = ["musicid-predict", "examples/violin-harpsichord.mp3", "-o", "out"]
BLOCK = re.compile(
    r"(<!-- example output: begin -->\n```text\n)(.*?)(```\n<!-- example output: end -->)", re.S
)


def run_example(work: Path, extra: tuple[str, ...] = ()) -> str:
    """The example command's stdout, run as the README shows it, from `work` (a folder that gets a
    link to `examples/` and the command's `out/`)."""
    if not (work / "examples").exists():
        (work / "examples").symlink_to(ROOT / "examples")
    exe = Path(sys.executable).with_name(COMMAND[0])
    done = subprocess.run(
        [str(exe), *COMMAND[1:], *extra],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
        check=True,
    )
    return done.stdout


def readme_output(text: str) -> str:
    """The example output the README shows."""
    found = BLOCK.search(text)
    if not found:
        raise SystemExit(f"{README}: no example output markers")
    return found.group(2)


def screenshot(page: Path, png: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1100, "height": 700})
        tab.goto(page.as_uri())
        tab.wait_for_timeout(500)
        tab.screenshot(path=str(png), full_page=True)
        browser.close()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="musicid-example-"))
    try:
        out = run_example(work)
        text = README.read_text()
        README.write_text(BLOCK.sub(lambda m: m.group(1) + out + m.group(3), text, count=1))
        print(f"{README}: example output updated")
        if shutil.which("chromium") is None:
            print("no chromium: docs/example-page.png left as it is")
            return
        run_example(work, ("--format", "html", "--overwrite"))
        screenshot(
            work / "out" / "violin-harpsichord.instruments.html", ROOT / "docs" / "example-page.png"
        )
        print(f"{ROOT / 'docs' / 'example-page.png'}: saved")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
