"""Each frame computed once: the network's convolutions over a whole recording's spectrogram, each
window's output read off the feature map, against the window path (every 1-s window through the
whole network, so at hop 0.5 s each frame goes through it twice). Measures, on real and rendered
recordings, how often the two paths make the same decision (instrument x window, at the model's
calibrated thresholds), the largest probability difference, and the time of each path (PyTorch,
fp32, both in this process).

The window's column span on the feature map: the columns whose receptive-field centres fall in the
window (ResNet18 downsamples time by 32). A window on its own is zero-padded at its edges; on the
whole spectrogram the same convolutions see the music beyond them: that context is where the paths
differ.
Usage: python benchmarks/fully_conv.py DIR [DIR ...] [--model RUN]   (folders of audio, searched
recursively)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from musicid.audio import load_audio
from musicid.features import normalise
from musicid.infer.predictors import predict
from musicid.network import InstrumentNet
from musicid.run import SHIPPED, Calibration, Checkpoint, checkpoint_file
from musicid.windows import sliding_windows

STRIDE = 32  # ResNet18's downsampling of the time axis
AUDIO = (".wav", ".flac", ".mp3", ".ogg", ".aif", ".aiff")


def feature_map(net: InstrumentNet, spec: torch.Tensor) -> torch.Tensor:
    """[1, 1, n_mels, T] -> [512, T / 32]: the backbone before its pooling, averaged over
    frequency."""
    b = net.backbone
    x = b.maxpool(b.relu(b.bn1(b.conv1(spec))))
    x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
    return x.mean(dim=2)[0]


def both_paths(
    net: InstrumentNet, spec: np.ndarray, n_frames: int, hop: int
) -> tuple[np.ndarray, ...]:
    """Probabilities [W, C] of the window path and of the feature-map path, and each path's
    seconds."""
    windows = [w for _, w in sliding_windows([spec], n_frames, hop)]
    t = time.perf_counter()
    with torch.no_grad():
        per_window = torch.sigmoid(net(torch.from_numpy(np.stack(windows))[:, None])).numpy()
    t_window = time.perf_counter() - t
    t = time.perf_counter()
    with torch.no_grad():
        fmap = feature_map(net, torch.from_numpy(spec)[None, None])
        cols = []
        for i in range(len(windows)):
            lo = i * hop // STRIDE
            hi = max(lo + 1, min(fmap.shape[1], -(-(i * hop + n_frames) // STRIDE)))
            cols.append(fmap[:, lo:hi].mean(dim=1))
        once = torch.sigmoid(net.head(torch.stack(cols))).numpy()
    return per_window, once, t_window, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--model", type=Path, default=SHIPPED)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    path = checkpoint_file(args.model)
    ckpt, cal = Checkpoint.load(path), Calibration.load(path)
    card = ckpt.card
    net = InstrumentNet()
    net.load_state_dict({k: v.float() for k, v in ckpt.model.items()})
    net.eval()
    cfg, hop = card.features, round(card.window.hop_s * card.features.frame_rate)
    print(
        f"{path}: window {card.n_frames} frames, hop {hop}; decisions at the calibrated thresholds"
    )
    print(
        "| set | files | windows | decisions agreeing | windows with the same instruments | max |p "
        "diff| "
        "| window path s | feature-map path s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for folder in args.folders:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO)
        a, b, tw, tf = [], [], 0.0, 0.0
        for f in files:
            audio, rate = load_audio(f)
            spec = normalise(cfg.compute(audio, rate), card.mean, card.std)[0]
            if spec.shape[1] < card.n_frames:
                continue
            p, q, t1, t2 = both_paths(net, spec, card.n_frames, hop)
            a.append(p)
            b.append(q)
            tw, tf = tw + t1, tf + t2
        p, q = np.concatenate(a), np.concatenate(b)
        dp, dq = predict("calibrated", p, cal), predict("calibrated", q, cal)
        print(
            f"| {folder} | {len(a)} | {len(p)} | {(dp == dq).mean():.4f} | "
            f"{(dp == dq).all(axis=1).mean():.4f} "
            f"| {np.abs(p - q).max():.3f} | {tw:.1f} | {tf:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
