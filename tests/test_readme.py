"""The README's first example is true of the code: its command, run again, prints what the README
shows (numbers within a small tolerance: ONNX Runtime's kernels differ a little between
processors)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"\d+\.\d+")


def _example():
    spec = importlib.util.spec_from_file_location("readme_example", ROOT / "docs" / "example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_example_output_is_what_the_command_prints(tmp_path):
    example = _example()
    shown = example.readme_output((ROOT / "README.md").read_text())
    assert "out/violin-harpsichord.events.tsv" in shown
    printed = example.run_example(tmp_path)
    # the same lines, names, order and files
    assert NUMBER.sub("#", printed) == NUMBER.sub("#", shown)
    for got, want in zip(NUMBER.findall(printed), NUMBER.findall(shown), strict=True):
        assert abs(float(got) - float(want)) <= (2.0 if float(want) > 1 else 0.03), (got, want)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "violin-harpsichord.events.tsv",
        "violin-harpsichord.instruments.csv",
        "violin-harpsichord.instruments.json",
        "violin-harpsichord.instruments.png",
    ]
