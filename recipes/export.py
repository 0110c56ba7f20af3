"""`export_model`: a run's best checkpoint as a shipped model folder (see `musicid.run`): weights
halved to fp16 (about 22 MB instead of 45), the training state dropped, the calibration carried over
bound to the new file, its ONNX export (from the fp16 weights, stored as fp16 too: both runtimes
compute the same network), and the model card with the checksums of the two model files."""

from __future__ import annotations

from pathlib import Path

from musicid.errors import InputError
from musicid.files import atomic_path, output_folder, sha256_file, write_json_atomic
from musicid.network import export_checkpoint
from musicid.run import CARD, WEIGHTS, Calibration, Checkpoint, calibration_file, checkpoint_file


def halve_onnx(path: Path) -> Path:
    """Store an ONNX export's weights as fp16, each cast back to fp32 where the graph reads it: half
    the size in the package, the same fp32 arithmetic (ONNX Runtime folds the casts when it loads
    the model)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph, stored, casts = model.graph, [], []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) > 1:
            stored.append(
                numpy_helper.from_array(
                    numpy_helper.to_array(init).astype(np.float16), f"{init.name}.fp16"
                )
            )
            casts.append(
                helper.make_node("Cast", [f"{init.name}.fp16"], [init.name], to=TensorProto.FLOAT)
            )
        else:
            stored.append(init)
    nodes = [*casts, *graph.node]
    del graph.initializer[:], graph.node[:]
    graph.initializer.extend(stored)
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return path


def export_model(run: Path, out: Path, card: dict) -> Path:
    """Write `run`'s best checkpoint to `out` as a shipped model: fp16 weights, its ONNX export, its
    calibration, `card`."""
    src = checkpoint_file(Path(run))
    ckpt = Checkpoint.load(src)
    cal = Calibration.load(src)
    if cal is None:
        raise InputError(
            f"{calibration_file(src)}: no calibration for {src}; the shipped model needs one"
        )
    half = {k: v.half() if v.is_floating_point() else v for k, v in ckpt.model.items()}
    out = output_folder(out)
    dest = out / WEIGHTS
    Checkpoint(half, ckpt.card).save(dest)
    cal.save(dest)
    onnx = halve_onnx(export_checkpoint(dest))
    write_json_atomic(
        out / CARD, {**card, "sha256": {p.name: sha256_file(p) for p in (dest, onnx)}}
    )
    return dest
