"""The network a run holds: torchvision's ResNet18 for log-mel input, a one-channel stem and an
11-way head.

One-channel input: conv1's ImageNet RGB kernels are summed into one channel ("folded"), which equals
feeding the spectrogram copied into 3 channels, at a third of the stem's cost. The original fc is
replaced by a head (dropout + Linear 512->11); the model returns logits, `predict_proba` the
sigmoid. `export_onnx` writes the same network (sigmoid included) for ONNX Runtime, the runtime
prediction uses.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn as nn
from torchvision.models import ResNet18_Weights, resnet18

from musicid.errors import InputError
from musicid.files import atomic_path, sha256_file
from musicid.run import (
    DEVICE,
    DEVICES,
    ONNX_CARD,
    ONNX_CHECKPOINT,
    Checkpoint,
    ModelCard,
    Predict,
    check_finite,
    load_torch_file,
    onnx_file,
    shipped_model,
    verify_shipped,
)
from musicid.vocab import N_INSTRUMENTS

IMAGENET_FILE = "resnet18-f37072fd.pth"
DROPOUT = 0.2
PRECISIONS = ("auto", "fp32", "bf16")  # of the forward pass
PRECISION = PRECISIONS[0]  # bf16 where the hardware computes it natively, else fp32 (see use_bf16)


class InstrumentNet(nn.Module):
    def __init__(self, n_classes: int = N_INSTRUMENTS, dropout: float = DROPOUT):
        super().__init__()
        self.backbone = resnet18(weights=None)
        self.backbone.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.backbone.fc = nn.Identity()
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(512, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [batch, 1, n_mels, n_frames] normalised log-mel -> logits [batch, n_classes]."""
        return self.head(self.backbone(x))

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Sigmoid outputs in fp32, the one inference path (eval, val, calibration, predict):
        channels_last, and bf16 autocast where the hardware computes bf16 natively (faster than fp32
        there; the demo's test mAP is the same to three decimals either way)."""
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(
            x.device.type, dtype=torch.bfloat16, enabled=use_bf16(x.device, PRECISION)
        ):
            return torch.sigmoid(self(x).float())

    def load_backbone(self, state: dict, source: str = "weights") -> None:
        """Load a torchvision resnet18 state dict, or a musicid model's (3-channel conv1 folded,
        fc/head dropped)."""
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise InputError(
                f"{source}: not a state dict of tensors (found {type(state).__name__})"
            )
        state = {
            k.removeprefix("backbone."): v
            for k, v in state.items()
            if not k.startswith(("fc.", "head."))
        }
        conv1 = state.get("conv1.weight")
        if conv1 is not None and conv1.ndim == 4 and conv1.shape[1] == 3:
            state["conv1.weight"] = conv1.sum(dim=1, keepdim=True)
        missing, unexpected = self.backbone.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise InputError(
                f"{source}: does not fit resnet18 (missing {', '.join(missing[:3]) or 'nothing'}; "
                f"unexpected {', '.join(unexpected[:3]) or 'nothing'})"
            )

    def freeze_backbone(self) -> None:
        """Train the head only (the prior work's setting); batch-norm statistics stay fixed too."""
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and not any(p.requires_grad for p in self.backbone.parameters()):
            self.backbone.eval()
        return self


def imagenet_state() -> dict:
    """torchvision's ImageNet ResNet18 weights from its cache, or the network; a clear error
    otherwise."""
    hub = (
        Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    )
    try:
        return ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # noqa: BLE001 - any download failure means the same thing to the user
        raise InputError(
            f"ImageNet weights for ResNet18 are not available here ({type(exc).__name__}). Put "
            f"{IMAGENET_FILE} (from {ResNet18_Weights.IMAGENET1K_V1.url}) into {hub}/ or set "
            "TORCH_HOME, "
            "or use --pretrained PATH with a local state dict, or --pretrained none."
        ) from exc


def load_weights_file(path: Path) -> dict:
    """A torchvision resnet18 state dict, or the weights of a musicid checkpoint."""
    state = load_torch_file(
        Path(path),
        "--pretrained file not found (use none, imagenet or a weights file)",
        "not a PyTorch weights file",
    )
    # a musicid checkpoint: its weights
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    return check_finite(state, Path(path)) if isinstance(state, dict) else state


def use_bf16(device: torch.device, precision: str) -> bool:
    """Whether to run the forward pass under bf16 autocast (weights, gradients and the loss stay
    fp32). `auto`: where the hardware computes bf16 natively (CUDA with bf16; CPUs with AVX512-BF16
    or AMX; benchmarks/ train_speed.py measures the gain), else fp32: emulated bf16 would be slower
    than fp32."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision != PRECISION:
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    native = [
        getattr(torch.cpu, name, lambda: False)()
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    return device.type == "cpu" and any(native)


def build_model(
    pretrained: str = "none", freeze_backbone: bool = False, dropout: float = DROPOUT
) -> InstrumentNet:
    """`pretrained`: 'none', 'imagenet', 'default' (the shipped model), or a weights file
    (torchvision resnet18 or a musicid checkpoint)."""
    model = InstrumentNet(dropout=dropout)
    if pretrained == "imagenet":
        model.load_backbone(imagenet_state(), "ImageNet weights")
    elif pretrained == "default":
        path = shipped_model()
        verify_shipped(path)
        model.load_backbone({k: v.float() for k, v in load_weights_file(path).items()}, str(path))
    elif pretrained != "none":
        model.load_backbone(load_weights_file(Path(pretrained)), pretrained)
    if freeze_backbone:
        model.freeze_backbone()
    return model


def resolve_device(name: str = DEVICE, local_rank: int = 0) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without it is a clear error."""
    if name not in DEVICES:
        raise InputError(f"--device must be one of {', '.join(DEVICES)}, not {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda asked for, but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device(name)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """The model in eval mode (no dropout, fixed batch norm) for the block, then back in the mode it
    was in: training's validation runs between its steps."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def predictor(model: InstrumentNet, device: torch.device) -> Predict:
    """The network as a `Predict` function (numpy windows in, probabilities out), in eval mode."""

    def predict(x):
        with eval_mode(model):
            return model.predict_proba(torch.from_numpy(x).to(device)).cpu().numpy()

    return predict


class _Probabilities(nn.Module):
    """What an export computes: the sigmoid of the network's logits, in fp32 (no autocast)."""

    def __init__(self, model: InstrumentNet):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(x))


ONNX_OPSET = 20


def export_onnx(model: InstrumentNet, card: ModelCard, checkpoint_sha256: str, path: Path) -> Path:
    """The network (eval mode, sigmoid included) as ONNX for windows [batch, 1, bins, frames], with
    its model card and the sha256 of the checkpoint it came from in the file's metadata: a loader
    checks it against the checkpoint and its calibration. Written atomically; torch's exporter
    (dynamo) and `onnx` needed."""
    import onnx

    x = torch.zeros(2, 1, card.features.n_bins, card.n_frames)
    # the exporter prints its progress
    with eval_mode(model), contextlib.redirect_stdout(io.StringIO()):
        program = torch.onnx.export(
            _Probabilities(model).cpu().eval(),
            (x,),
            dynamo=True,
            input_names=["windows"],
            output_names=["probabilities"],
            opset_version=ONNX_OPSET,
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            external_data=False,
        )
    proto = program.model_proto
    for key, value in (
        (ONNX_CARD, json.dumps(card.to_dict())),
        (ONNX_CHECKPOINT, checkpoint_sha256),
    ):
        proto.metadata_props.add(key=key, value=value)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
    return path


def export_checkpoint(path: Path) -> Path:
    """The ONNX export of a checkpoint, written beside it (`best.pt` -> `best.onnx`)."""
    ckpt = Checkpoint.load(path)
    model = InstrumentNet(dropout=ckpt.card.train_config.get("dropout", DROPOUT))
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in ckpt.model.items()}
    )
    return export_onnx(model, ckpt.card, sha256_file(path), onnx_file(path))
