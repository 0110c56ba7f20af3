"""`python -m musicid.recipes.calibrate SHARDS [--model DIR]`: fit a model's calibration again
(thresholds, biases, event rules) on the val split of SHARDS, and store it beside the model (a
shipped model's folder, or a training run's best checkpoint), bound to its weights.

For a model whose calibration predates a part of it (a format-1 calibration has no event rules, so
its events are its thresholds window by window) or was fitted on data unlike the music it meets (a
run's own val split is played by the instruments it trained on; data played by instruments held out
of its training, `synth --players`, is more like a user's recording, where every player is new). The
prior bias stays the model's own (its training data's label frequency); everything else is fitted on
SHARDS' val split, which should be data the model was not trained on. The calibration, and a shipped
model's card, record what it was fitted on. A shipped model whose default predictor was a
window-by-window fitted one gets the events predictor as its default (the event rules are what it
lacked): its checkpoint's card says so, and its ONNX export is made again from the same weights."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from musicid.cli import command, new_app, run
from musicid.errors import InputError
from musicid.files import sha256_file, write_json_atomic
from musicid.infer.evaluate import check_compatible
from musicid.infer.loaded import LoadedRun, load_run
from musicid.infer.predictors import FITTED
from musicid.network import export_checkpoint
from musicid.run import (
    BEST,
    CARD,
    EVENTS,
    SHIPPED,
    WEIGHTS,
    Calibration,
    Checkpoint,
    checkpoint_file,
    read_card,
)
from musicid.shardset import Manifest, read_manifest, shard_urls
from musicid.validation import Predictions, collect_predictions, fit_calibration

from .export import halve_onnx

app = new_app()


def refit(loaded: LoadedRun, manifest: Manifest, val: Predictions, shards: Path) -> Calibration:
    """`loaded`'s calibration fitted on `val`, the predictions of SHARDS' val split, keeping its
    own prior bias."""
    cal = fit_calibration(
        loaded.predict_proba,
        loaded.card,
        manifest,
        val,
        f"{shards} val split ({len(val.probs)} windows)",
    )
    if loaded.calibration is not None:  # the training data's label frequency, not SHARDS'
        cal.biases["prior"] = loaded.calibration.biases["prior"]
    return cal


def recalibrate(folder: Path, shards: Path) -> Path:
    """Fit the calibration of the shipped model or run in `folder` on `shards`' val split (see the
    module's docstring); returns the calibration file."""
    weights = checkpoint_file(folder)
    if not weights.is_file():
        raise InputError(f"{folder}: no {WEIGHTS} or {BEST} (a shipped model's or a run's folder)")
    loaded = load_run(weights)
    manifest = read_manifest(shards)
    check_compatible(loaded, manifest, shards)
    if manifest.splits["val"].samples == 0:
        raise InputError(f"{shards}: the val split is empty")
    val = collect_predictions(
        loaded.predict_proba, shard_urls(manifest, shards, "val"), loaded.card
    )
    cal = refit(loaded, manifest, val, shards)
    if weights.name == BEST:  # a run: its card is inside the checkpoint, and stays as it is
        path = cal.save(weights)
        print(f"{path}: fitted on {cal.fitted_on}")
        return path
    card = {**read_card(folder), "calibration": cal.fitted_on}
    if loaded.card.default_predictor in FITTED:
        ckpt = Checkpoint.load(weights)
        Checkpoint(ckpt.model, replace(ckpt.card, default_predictor=EVENTS)).save(weights)
        # until both files exist again, the card records no checksum
        write_json_atomic(folder / CARD, {k: v for k, v in card.items() if k != "sha256"})
        onnx = halve_onnx(export_checkpoint(weights))
        card["sha256"] = {p.name: sha256_file(p) for p in (weights, onnx)}
        print(f"{weights}, {onnx}: default predictor {EVENTS}")
    path = cal.save(weights)
    write_json_atomic(folder / CARD, card)
    print(f"{path}: fitted on {cal.fitted_on}")
    return path


@app.command()
@command
def calibrate(
    shards: Path = typer.Argument(
        ..., help="A shard set whose val split the model was not trained on."
    ),
    model: Path = typer.Option(
        None,
        help="A shipped model's folder or a training run's (default: the package's "
        "musicid/model/).",
    ),
):
    """Fit the model's calibration on SHARDS' val split and store it beside the model."""
    recalibrate(model or SHIPPED, shards)


def main(args: list[str] | None = None) -> None:
    run(app, "python -m musicid.recipes.calibrate", args)


if __name__ == "__main__":
    main()
