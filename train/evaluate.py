"""Evaluation of a trained run on a shard split: calibration on val, predictors, metrics, reports, plots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.features import FeatureConfig, log_mel
from pipeline.manifest import differing_fields, write_json_atomic

from .checkpoint import load_checkpoint, save_checkpoint
from .data import normalise, shard_urls
from .metrics import calibrate_thresholds
from .model import build_model
from .predictors import FITTED, Calibration, predict
from .scores import score_sets
from .trainer import collect_predictions, resolve_device

NOISE_WINDOWS = 32


@dataclass
class LoadedRun:
    path: Path  # the checkpoint file
    state: dict
    model: torch.nn.Module
    device: torch.device

    @property
    def names(self) -> list[str]:
        return [i["name"] for i in self.state["instruments"]]


def load_run(run: Path, device: str = "auto") -> LoadedRun:
    """A run folder (its best.pt) or a checkpoint file, with its model ready for inference."""
    path = Path(run) / "best.pt" if Path(run).is_dir() else Path(run)
    state = load_checkpoint(path)
    dev = resolve_device(device)
    model = build_model(dropout=state["train_config"].get("dropout", 0.2))
    model.load_state_dict(state["model"])
    return LoadedRun(path, state, model.to(dev).eval(), dev)


def check_compatible(run: LoadedRun, manifest: dict, shards: Path) -> None:
    """Refuse shards whose features, window or vocabulary differ from what the model was trained on."""
    ours = {"features": run.state["features"], "instruments": run.state["instruments"],
            "n_frames": run.state["window"]["n_frames"]}
    theirs = {"features": manifest["features"], "instruments": manifest["instruments"],
              "n_frames": manifest["window"]["n_frames"]}
    diff = differing_fields(ours, theirs)
    if diff:
        raise ValueError(f"{run.path} does not fit the shards in {shards}: " + "; ".join(diff))


@torch.no_grad()
def noise_bias(run: LoadedRun, seed: int = 0) -> np.ndarray:
    """Mean prediction on white noise at several levels, through the same feature function."""
    feat = FeatureConfig.from_dict(run.state["features"])
    n_frames = run.state["window"]["n_frames"]
    rng = np.random.default_rng(seed)
    mean, std = (np.asarray(run.state["normalization"][k], dtype=np.float32) for k in ("mean", "std"))
    n = int(run.state["window"]["window_s"] * feat.sample_rate)
    specs = []
    for level in np.geomspace(1e-3, 0.3, NOISE_WINDOWS):
        spec = log_mel((level * rng.standard_normal(n)).astype(np.float32), feat.sample_rate, feat)[:, :n_frames]
        specs.append(normalise(spec, mean, std))
    x = torch.from_numpy(np.stack(specs)).to(run.device)
    return run.model.predict_proba(x).float().cpu().numpy().mean(axis=0)


def fit_calibration(run: LoadedRun, shards: Path, manifest: dict, workers: int = 0) -> Calibration:
    """Thresholds and biases from the train manifest and the val split only: never the test split."""
    urls, _ = shard_urls(shards, "val")
    probs, labels, _ = collect_predictions(run.model, urls, run.state["normalization"], run.device, workers=workers)
    if len(probs) == 0:
        raise ValueError(f"{shards}: the val split is empty; calibrated predictors need validation data")
    train = manifest["splits"]["train"]
    prior = [train["instrument_positives"][n] / max(train["samples"], 1) for n in run.names]
    return Calibration(
        thresholds=[float(t) for t in calibrate_thresholds(probs, labels)],
        biases={"prior": prior, "valmean": probs.mean(axis=0).tolist(), "noise": noise_bias(run).tolist()},
    )


def store_calibration(run: LoadedRun, cal: Calibration, shards: Path) -> None:
    """Keep the calibration with the run: in its checkpoint (for musicid-predict) and as calibration.json."""
    run.state["thresholds"] = cal.thresholds
    run.state["calibration"] = {**cal.to_dict(), "fitted_on": f"{shards} val split"}
    save_checkpoint(run.path, run.state)
    write_json_atomic(run.path.parent / "calibration.json", run.state["calibration"])


def evaluate(run: LoadedRun, shards: Path, split: str = "test", predictors: tuple[str, ...] = ("top3",),
             threshold: float = 0.5, max_instruments: int = 3, workers: int = 0) -> dict:
    """Calibrate on val, predict `split`, and score every requested predictor."""
    urls, manifest = shard_urls(shards, split)
    check_compatible(run, manifest, shards)
    if manifest["splits"][split]["samples"] == 0 or not urls:
        raise ValueError(f"{shards}: the {split} split is empty")
    if manifest["splits"]["val"]["samples"]:
        cal = fit_calibration(run, shards, manifest, workers)
        store_calibration(run, cal, shards)
    elif fitted := sorted(set(predictors) & set(FITTED)):
        raise ValueError(f"{shards}: the val split is empty; predictors {', '.join(fitted)} need validation "
                         "data for their calibration")
    else:
        cal = Calibration.from_checkpoint(run.state)
    probs, labels, _ = collect_predictions(run.model, urls, run.state["normalization"], run.device,
                                           workers=workers)
    results = {name: score_sets(predict(name, probs, cal, threshold, max_instruments), probs, labels, run.names)
               for name in predictors}
    return {"run": str(run.path), "shards": str(shards), "split": split, "calibration": cal.to_dict(),
            "threshold": threshold, "max_instruments": max_instruments, "results": results,
            "probs": probs, "labels": labels}

