"""`pip install musicid` as a user installs it: the base install alone (no PyTorch, torchvision,
librosa, scikit-learn) predicts a real MP3 with the shipped model on ONNX Runtime, and its first
commands answer."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "violin-harpsichord.mp3"
NOT_SOURCES = (
    ".git",
    ".venv",
    "build",
    "demo",
    "runs",
    "eval",
    "shards",
    "test-artifacts",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
)


def test_the_base_install_predicts_without_pytorch(tmp_path):
    source = shutil.copytree(ROOT, tmp_path / "src", ignore=shutil.ignore_patterns(*NOT_SOURCES))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    missing = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util as u; print([m for m in "
            "('torch', 'torchvision', 'librosa', 'sklearn', 'webdataset', 'pandas') "
            "if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
    )
    assert missing.stdout.strip() == "[]", missing
    out = tmp_path / "out"
    done = subprocess.run(
        [str(venv / "bin" / "musicid-predict"), str(EXAMPLE), "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "one decision every 0.5 s" in done.stdout and "(onnxruntime)" in done.stdout, done.stdout
    assert {p.name for p in out.iterdir()} == {
        f"violin-harpsichord{s}"
        for s in (".instruments.csv", ".instruments.json", ".instruments.png", ".events.tsv")
    }
    version = subprocess.run(
        [str(venv / "bin" / "musicid-predict"), "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("musicid ")
