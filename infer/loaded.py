"""A run read for inference: its card, its calibration, and its network on a runtime.

ONNX Runtime where the run has an ONNX export (`best.onnx` beside `best.pt`, `model.onnx` in a
shipped model's folder) and onnxruntime is installed: no PyTorch is imported. The export is checked
against the run: it must be a musicid export (its card inside), take the windows its card describes
and give one probability per class, and come from the checkpoint beside it (the sha256 it records).
Otherwise PyTorch, from the checkpoint, where it is installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicid.errors import InputError
from musicid.files import sha256_file
from musicid.run import (
    CARD,
    DEVICE,
    ONNX_CARD,
    ONNX_CHECKPOINT,
    Calibration,
    ModelCard,
    Predict,
    checkpoint_file,
    onnx_file,
    read_card,
    verify_shipped,
)

RUNTIMES = ("auto", "onnx", "torch")  # auto: ONNX Runtime where an export is there, else PyTorch


@dataclass
class LoadedRun:
    path: Path  # the file the network was read from (.onnx or .pt)
    card: ModelCard
    calibration: Calibration | None
    predict_proba: Predict  # normalised windows [B, 1, bins, frames] -> probabilities [B, C]
    runtime: str  # "onnxruntime" or "torch"
    # for people and reports: the model card's name and version, or the run folder and file
    name: str

    @property
    def names(self) -> list[str]:
        return self.card.names


def model_name(checkpoint: Path) -> str:
    """How outputs name a model: a shipped model by its card (name, version), a run by folder and
    file, never by a path that only means something on the machine that made them."""
    card = checkpoint.parent / CARD
    if card.is_file():
        meta = read_card(checkpoint.parent)
        return " ".join(str(meta[k]) for k in ("name", "version") if meta.get(k))
    return f"{checkpoint.parent.name}/{checkpoint.name}"


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def load_run(run: Path | str, device: str = DEVICE, runtime: str = "auto") -> LoadedRun:
    """A run folder (its best model), a shipped model folder, a checkpoint or an ONNX file, ready to
    predict."""
    if runtime not in RUNTIMES:
        raise InputError(f"--runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    ckpt = checkpoint_file(Path(run))
    export = onnx_file(ckpt)
    if runtime != "torch" and export.is_file():
        ort = _onnxruntime()
        if ort is not None:
            return _load_onnx(ort, export, ckpt)
        if runtime == "onnx" or not (ckpt.is_file() and _torch_available()):
            raise InputError(f"{export}: running it needs ONNX Runtime; pip install onnxruntime")
    if runtime == "onnx":
        raise InputError(
            f"{export}: no ONNX export of {ckpt.name}; write one with: musicid-train export {run}"
        )
    if not ckpt.is_file():
        raise InputError(
            f"{ckpt}: no checkpoint or ONNX export (give a run folder with best.pt, a .pt or .onnx "
            "file)"
        )
    if not _torch_available():
        raise InputError(
            f"{ckpt}: has no ONNX export ({export.name}) and PyTorch is not installed; write one "
            f"with musicid-train export {run} where PyTorch is, or pip install 'musicid[train]'"
        )
    return _load_torch(ckpt, device)


def _load_onnx(ort, export: Path, ckpt: Path) -> LoadedRun:
    verify_shipped(export)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: a user's terminal is for results
    try:
        session = ort.InferenceSession(str(export), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        # ONNX Runtime raises several types for files it cannot read
        raise InputError(
            f"{export}: not an ONNX model ONNX Runtime can load (truncated or another file?); "
            f"export it again with musicid-train export ({type(exc).__name__})"
        ) from exc
    meta = session.get_modelmeta().custom_metadata_map
    if ONNX_CARD not in meta or ONNX_CHECKPOINT not in meta:
        raise InputError(
            f"{export}: not a musicid export (no model card inside); write one with musicid-train "
            "export"
        )
    try:
        card = ModelCard.from_dict(json.loads(meta[ONNX_CARD]), str(export))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{export}: its model card does not read ({exc})") from exc
    (given,), (taken,) = session.get_inputs(), session.get_outputs()
    if list(given.shape[1:]) != [1, card.features.n_bins, card.n_frames] or taken.shape[-1] != len(
        card.names
    ):
        raise InputError(
            f"{export}: takes windows {given.shape} and gives {taken.shape}, but its card "
            "describes "
            f"[batch, 1, {card.features.n_bins}, {card.n_frames}] -> [batch, {len(card.names)}]; "
            "export it again with musicid-train export"
        )
    sha = meta[ONNX_CHECKPOINT]
    if ckpt.is_file() and sha256_file(ckpt) != sha:
        raise InputError(
            f"{export}: exported from another version of {ckpt.name}; export it again with "
            f"musicid-train export {ckpt}"
        )

    def predict(x):
        return session.run(None, {given.name: x})[0]

    return _checked(
        LoadedRun(
            export, card, Calibration.load(ckpt, sha), predict, "onnxruntime", model_name(ckpt)
        )
    )


def _load_torch(ckpt: Path, device: str) -> LoadedRun:
    import torch

    from musicid.network import DROPOUT, InstrumentNet, predictor, resolve_device
    from musicid.run import Checkpoint

    state = Checkpoint.load(ckpt)
    model = InstrumentNet(dropout=state.card.train_config.get("dropout", DROPOUT))
    try:
        model.load_state_dict(state.model)
    except (RuntimeError, TypeError) as exc:
        raise InputError(
            f"{ckpt}: weights do not fit the model ({str(exc).splitlines()[0]})"
        ) from exc
    dev = resolve_device(device)
    model = model.to(dev, memory_format=torch.channels_last).eval()
    return _checked(
        LoadedRun(
            ckpt,
            state.card,
            Calibration.load(ckpt),
            predictor(model, dev),
            "torch",
            model_name(ckpt),
        )
    )


def _checked(run: LoadedRun) -> LoadedRun:
    """The run, once a window of silence gives finite probabilities: damaged weights are named at
    load."""
    probe = run.predict_proba(
        np.zeros((1, 1, run.card.features.n_bins, run.card.n_frames), np.float32)
    )
    if not np.isfinite(probe).all():
        raise InputError(
            f"{run.path}: the model gives NaN or infinite probabilities: its weights are damaged; "
            "reinstall musicid, or retrain and export the model again"
        )
    return run
