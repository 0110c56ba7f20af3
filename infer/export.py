"""`export_model`: a run's best checkpoint as a shipped model folder (see shipped.py): weights halved to fp16
(about 22 MB instead of 45), the optimizer state dropped, the calibration carried over with the new file's
hash, and the model card."""

from __future__ import annotations

from pathlib import Path

from musicid.errors import InputError
from musicid.files import output_folder, write_json_atomic

from .calibration import calibration_file, read_calibration, write_calibration
from .checkpoint import REQUIRED, checkpoint_file, load_checkpoint, save_checkpoint
from .shipped import CARD, WEIGHTS


def export_model(run: Path, out: Path, card: dict) -> Path:
    """Write `run`'s best checkpoint to `out` as a shipped model: fp16 weights, its calibration, `card`."""
    src = checkpoint_file(Path(run))
    state = load_checkpoint(src)
    cal = read_calibration(src)
    if cal is None:
        raise InputError(f"{calibration_file(src)}: no calibration for {src}; the shipped model needs one")
    half = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    out = output_folder(out)
    dest = out / WEIGHTS
    save_checkpoint(dest, {**{k: state[k] for k in REQUIRED}, "model": half})
    write_calibration(dest, cal)
    write_json_atomic(out / CARD, card)
    return dest
