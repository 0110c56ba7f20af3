"""What runs everything: `make demo` (the whole mission on built-in data, `demo.py`) and `make
model` (the shipped model's recipe, `model.py`). These may import every part; nothing imports them.

Both train with the settings below, not the library defaults: a higher learning rate for their short
runs, and recording-condition augmentation, chosen on validation (README, *musicid-train*)."""

import sys
from pathlib import Path

BIN = Path(sys.executable).parent  # the musicid-* commands of this environment
LR = 2e-3
CONDITIONS = 0.5


def exe(name: str) -> str:
    """The path of the `musicid-<name>` command beside this Python."""
    return str(BIN / f"musicid-{name}")
