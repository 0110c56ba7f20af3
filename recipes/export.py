"""`export_model`: a run's best checkpoint as a shipped model folder (see `musicid.run`): weights halved to
fp16 (about 22 MB instead of 45), the training state dropped, the calibration carried over bound to the new
file, its ONNX export (from the fp16 weights, so that both runtimes compute the same network), and the model
card."""

from __future__ import annotations

from pathlib import Path

from musicid.errors import InputError
from musicid.files import output_folder, sha256_file, write_json_atomic
from musicid.network import export_checkpoint
from musicid.run import CARD, WEIGHTS, Calibration, Checkpoint, calibration_file, checkpoint_file


def export_model(run: Path, out: Path, card: dict) -> Path:
    """Write `run`'s best checkpoint to `out` as a shipped model: fp16 weights, its ONNX export, its
    calibration, `card`."""
    src = checkpoint_file(Path(run))
    ckpt = Checkpoint.load(src)
    cal = Calibration.load(src)
    if cal is None:
        raise InputError(f"{calibration_file(src)}: no calibration for {src}; the shipped model needs one")
    half = {k: v.half() if v.is_floating_point() else v for k, v in ckpt.model.items()}
    out = output_folder(out)
    dest = out / WEIGHTS
    Checkpoint(half, ckpt.card).save(dest)
    cal.save(dest)
    onnx = export_checkpoint(dest)
    write_json_atomic(out / CARD, {**card, "sha256": {p.name: sha256_file(p) for p in (dest, onnx)}})
    return dest
