"""The shipped model: export (fp16, calibration carried over), the default for predict and eval,
fine-tuning from it, the model inside the package itself, and scoring on labelled real-clip folders
(realdev's shape) with clips written by LAME and by hand-built WAV headers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import musicid.run as shipped
from musicid.errors import InputError
from musicid.infer.clips import clips_table, read_clips, score_clips
from musicid.infer.eval_cli import app as eval_app
from musicid.infer.loaded import load_run
from musicid.infer.predict import predict_file
from musicid.infer.predict_cli import app as predict_app
from musicid.network import build_model
from musicid.recipes.export import export_model
from musicid.run import Checkpoint
from musicid.vocab import NAMES
from tests.audio_writers import tone, write_float_wav, write_mp3
from tests.conftest import invoke


@pytest.fixture()
def clips(tmp_path):
    """Three labelled clips from other writers (LAME MP3, a hand-built float WAV) and one of an
    'other'."""
    folder = tmp_path / "clips"
    (folder / "audio").mkdir(parents=True)
    write_mp3(folder / "audio" / "a.mp3", tone(1.5, 44100, 1, 262.0), 44100, vbr=True)
    write_float_wav(folder / "audio" / "b.wav", tone(2.0, 22050, 2, 440.0), 22050)
    write_mp3(folder / "audio" / "c.mp3", tone(1.0, 48000, 2, 600.0), 48000, vbr=False)
    (folder / "labels.csv").write_text(
        "file,instruments,notes\na.mp3,Piano,x\nb.wav,violin,\nc.mp3,other:trumpet,\n"
    )
    return folder


@pytest.fixture()
def exported(tiny_run, tmp_path, monkeypatch):
    """The tiny run exported as the package's model (the package's folder swapped for a temporary
    one)."""
    folder = tmp_path / "model"
    export_model(tiny_run, folder, {"name": "test", "version": "1.0", "data_sources": []})
    monkeypatch.setattr(shipped, "SHIPPED", folder)
    return folder


def test_export_halves_the_weights_and_keeps_the_calibration(tiny_run, exported, clips):
    ckpt = Checkpoint.load(exported / "model.pt")
    assert all(v.dtype == torch.float16 for v in ckpt.model.values() if v.is_floating_point())
    size = (exported / "model.pt").stat().st_size
    assert ckpt.training is None and size < 0.6 * (tiny_run / "best.pt").stat().st_size
    run = load_run(exported)  # a folder: its model.pt
    original = load_run(tiny_run)
    assert (
        run.calibration is not None
        and run.calibration.thresholds == original.calibration.thresholds
    )
    wav = clips / "audio" / "b.wav"
    a, b = predict_file(wav, run).probs, predict_file(wav, original).probs
    assert np.abs(a - b).max() < 0.05  # fp16 weights, fp32 arithmetic
    assert json.loads((exported / "card.json").read_text())["name"] == "test"


def test_predict_and_eval_use_the_shipped_model_by_default(exported, clips, tmp_path):
    pred = predict_file(clips / "audio" / "a.mp3")
    assert pred.model == "test 1.0"  # named by its card, not by a path on this machine
    r = invoke(predict_app, [clips / "audio" / "a.mp3", "-o", tmp_path / "out", "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "out" / "a.instruments.json").read_text())
    assert doc["model"] == "test 1.0" and str(exported) not in json.dumps(
        {k: doc[k] for k in doc if k != "path"}
    )
    r = invoke(eval_app, ["clips", clips, "--out", tmp_path / "rep"])
    assert r.exit_code == 0 and "top-1" in r.output, r.output
    r = invoke(eval_app, ["clips", clips, "--out", tmp_path / "rep"])
    assert r.exit_code == 1 and "already exists" in r.output


def test_no_shipped_model_is_one_line_that_says_what_to_do(tmp_path, monkeypatch, clips):
    monkeypatch.setattr(shipped, "SHIPPED", tmp_path / "none")
    r = invoke(predict_app, [clips / "audio" / "a.mp3"])
    assert r.exit_code == 1 and "ships no model" in r.output and "--model" in r.output
    with pytest.raises(InputError, match="ships no model"):
        build_model("default")


def test_fine_tuning_starts_from_the_shipped_weights(exported):
    model = build_model("default")
    weights = Checkpoint.load(exported / "model.pt").model
    assert torch.equal(model.backbone.conv1.weight, weights["backbone.conv1.weight"].float())


def test_the_package_ships_a_model_that_predicts():
    path = shipped.shipped_model()
    card = shipped.read_card()
    assert path.stat().st_size < 30e6 and card["data_sources"] and card["seed"] == 0
    for runtime in ("onnx", "torch"):
        run = load_run(shipped.SHIPPED, runtime=runtime)
        assert run.calibration is not None and run.name == f"{card['name']} {card['version']}"
        probs = run.predict_proba(
            np.zeros((1, 1, run.card.features.n_bins, run.card.n_frames), np.float32)
        )
        assert probs.shape == (1, len(NAMES)) and np.isfinite(probs).all()


def test_clip_scores_follow_the_probabilities(tiny_run, clips):
    run = load_run(tiny_run)
    result = score_clips(run, clips)
    assert result["clips"] == 3 and result["solo_clips"] == 2 and result["others"]["clips"] == 1
    rows = {r["file"]: r for r in result["rows"]}
    expected = np.mean([rows["a.mp3"]["top3"][0] == "Piano", rows["b.wav"]["top3"][0] == "Violin"])
    assert result["top1"] == expected
    assert (
        result["per_class"]["Piano"]["clips"] == 1 and result["per_class"]["Oboe"]["top1"] is None
    )
    assert "| Piano | 1 |" in clips_table(result)


@pytest.mark.parametrize(
    "row, message",
    [
        ("a.mp3,Kazoo", "unknown instrument 'Kazoo'"),
        ("nope.wav,Piano", "no audio file"),
        ("a.mp3,", "no instruments given"),
    ],
)
def test_bad_clip_labels_name_the_line(clips, row, message):
    (clips / "labels.csv").write_text(f"file,instruments\n{row}\n")
    with pytest.raises(InputError, match=message):
        read_clips(clips)


def test_calibrate_fits_event_rules_and_makes_events_the_default(tiny_run, tiny_shards, tmp_path):
    from dataclasses import replace

    from musicid.files import write_json_atomic
    from musicid.recipes.calibrate import app as calibrate_app
    from musicid.run import Calibration

    folder = tmp_path / "model"
    export_model(tiny_run, folder, {"name": "test", "version": "1.0", "data_sources": []})
    # an older model: a window-by-window default, a format-1 calibration (no event rules), no ONNX
    ckpt, old = Checkpoint.load(folder / "model.pt"), Calibration.load(folder / "model.pt")
    Checkpoint(ckpt.model, replace(ckpt.card, default_predictor="calibrated")).save(
        folder / "model.pt"
    )
    replace(old, events=None, format=1).save(folder / "model.pt")
    (folder / "model.onnx").unlink()
    card = json.loads((folder / "card.json").read_text())
    write_json_atomic(folder / "card.json", {k: v for k, v in card.items() if k != "sha256"})
    assert load_run(folder).calibration.events is None

    r = invoke(calibrate_app, [tiny_shards, "--model", folder])
    assert r.exit_code == 0, r.output
    run = load_run(folder)  # the card's checksums match both rewritten files, or this refuses
    card = json.loads((folder / "card.json").read_text())
    assert run.runtime == "onnxruntime" and set(card["sha256"]) == {"model.pt", "model.onnx"}
    assert run.card.default_predictor == "events" and len(run.calibration.events) == len(NAMES)
    assert run.calibration.biases["prior"] == old.biases["prior"]  # the training data's, kept
    assert (
        card["calibration"] == run.calibration.fitted_on and str(tiny_shards) in card["calibration"]
    )
    clip = tmp_path / "clip.wav"
    write_float_wav(clip, tone(2.0, 22050, 1, 440.0), 22050)
    assert predict_file(clip, run).predictor == "events"


def test_calibrate_refits_a_runs_calibration_and_leaves_its_weights(
    tiny_run, tiny_shards, tmp_path
):
    """A training run's calibration fitted again on other shards (e.g. players held out of its
    training): beside best.pt, the prior bias its own, best.pt and the ONNX export untouched."""
    import shutil

    from musicid.files import sha256_file
    from musicid.recipes.calibrate import app as calibrate_app
    from musicid.run import Calibration

    run = shutil.copytree(tiny_run, tmp_path / "run")
    old = Calibration.load(run / "best.pt")
    weights = {p.name: sha256_file(p) for p in (run / "best.pt", run / "best.onnx")}
    r = invoke(calibrate_app, [tiny_shards, "--model", run])
    assert r.exit_code == 0, r.output
    new = Calibration.load(run / "best.pt")
    assert (
        f"{tiny_shards} val split" in new.fitted_on and new.biases["prior"] == old.biases["prior"]
    )
    assert {p.name: sha256_file(p) for p in (run / "best.pt", run / "best.onnx")} == weights
    assert load_run(run).calibration.fitted_on == new.fitted_on
    r = invoke(calibrate_app, [tiny_shards, "--model", tmp_path])
    assert r.exit_code == 1 and "no model.pt or best.pt" in r.output
