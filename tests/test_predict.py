"""musicid-predict on synthetic recordings with known labels: agreement, outputs, chunking, bad files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import soxr
from typer.testing import CliRunner

from pipeline.build import BuildConfig, build_shards
from pipeline.labels import read_labels
from pipeline.spans import frame_activity, merge_spans
from pipeline.synth import synthesize
from train.predict import predict_file
from train.predict_cli import app
from train.trainer import TrainConfig, Trainer

SOLOS = ("Solo Piano", "Solo Flute", "Solo Violin", "Solo Cello")
runner = CliRunner()


@pytest.fixture(scope="module")
def solo(tmp_path_factory):
    """A tiny model trained here on four solo timbres (20 train recordings of 6 s), and its test folder."""
    base = tmp_path_factory.mktemp("solo")
    synthesize(base / "data", recordings=24, seconds=6.0, seed=5, ensembles=SOLOS)
    build_shards(base / "data", base / "shards", BuildConfig(shards_per_split=2, val_fraction=0.25), progress=False)
    trainer = Trainer(TrainConfig(shards=str(base / "shards"), out=str(base / "run"), epochs=5, batch_size=8,
                                  workers=0, shuffle_buffer=64, lr=2e-3))
    trainer.fit()
    return base / "run", base / "data" / "musicnet" / "musicnet"


def window_truth(pred, labels_csv):
    notes, _ = read_labels(labels_csv)
    mids = ((pred.starts + pred.ends) / 2 * 44100).astype(np.int64)
    return frame_activity(merge_spans(notes), mids)[0].T.astype(bool)


def test_timeline_agrees_with_labels(solo):
    """Stated agreement: top1 names an instrument that is sounding in >= 70% of the sounding windows of the
    unseen test recordings (silent windows excluded)."""
    run, data = solo
    right = total = 0
    for wav in sorted((data / "test_data").glob("*.wav")):
        pred = predict_file(wav, run, predictor="top1")
        truth = window_truth(pred, data / "test_labels" / f"{wav.stem}.csv")
        sounding = truth.any(axis=1)
        right += int((pred.active & truth)[sounding].any(axis=1).sum())
        total += int(sounding.sum())
    assert total >= 20 and right / total >= 0.7, (right, total)


def test_chunked_equals_whole_file(solo):
    run, data = solo
    wav = sorted((data / "test_data").glob("*.wav"))[0]
    whole = predict_file(wav, run, chunk_s=1000)
    chunked = predict_file(wav, run, chunk_s=1.3)
    assert np.allclose(whole.starts, chunked.starts)
    assert np.allclose(whole.probs, chunked.probs, atol=1e-4)
    assert (whole.active == chunked.active).all()


def test_cli_outputs_are_well_formed_and_bad_files_reported(solo, tmp_path):
    run, data = solo
    src = sorted((data / "test_data").glob("*.wav"))[0]
    inputs = tmp_path / "in" / "nested"
    inputs.mkdir(parents=True)
    audio, sr = sf.read(src, dtype="float32")
    audio = soxr.resample(audio, sr, 48000)
    sf.write(inputs / "stereo48k.flac", np.stack([audio, 0.5 * audio], 1), 48000)  # FLAC, stereo, 48 kHz
    (inputs / "broken.wav").write_bytes(b"RIFF....WAVEnot really")
    out = tmp_path / "out"
    r = runner.invoke(app, [str(tmp_path / "in"), str(src), "--model", str(run), "-o", str(out), "--top-k", "2"])
    assert r.exit_code == 1
    assert "broken.wav" in r.output and "1 of 3 file(s) failed" in r.output
    for stem in ("stereo48k", src.stem):
        rows = list(csv.DictReader(open(out / f"{stem}.instruments.csv")))
        assert list(rows[0])[:3] == ["start_s", "end_s", "Piano"] and list(rows[0])[-1] == "predicted"
        assert all(0 <= float(row["Flute"]) <= 1 for row in rows)
        doc = json.loads((out / f"{stem}.instruments.json").read_text())
        assert doc["duration_s"] == pytest.approx(6.0) and doc["predictor"] == "calibrated"
        for inst in doc["instruments"]:
            assert 0 < inst["share_of_time"] <= 1 and all(0 <= s < e <= 6.0 for s, e in inst["segments"])
        assert (out / f"{stem}.instruments.png").stat().st_size > 5000
    summary = r.output.split(f"{src}")[1]
    assert summary.count("% of time") <= 2


def test_missing_model_is_a_clear_error(tmp_path):
    r = runner.invoke(app, [str(tmp_path), "--model", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "no checkpoint" in r.output
