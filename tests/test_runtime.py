"""Prediction on ONNX Runtime without PyTorch: the export beside each run, the checks on loading it,
the fallback to PyTorch, and the features the same function computes for shards and for
prediction."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import soundfile as sf

from musicid.errors import InputError
from musicid.features import LogMel, mel_filterbank, power_spectrogram
from musicid.infer.loaded import load_run
from musicid.infer.predict import predict_file
from musicid.infer.predict_cli import app as predict_app
from musicid.pipeline.build import BuildConfig, build_shards
from musicid.run import ONNX_CARD
from musicid.shardset import load_npy, read_manifest
from musicid.train.cli import app as train_app
from tests.audio_writers import tone, write_mp3
from tests.conftest import invoke


@pytest.fixture()
def song(tmp_path):
    return write_mp3(tmp_path / "song.mp3", tone(3.0, 44100, 2, 440.0), 44100, vbr=True)


@pytest.fixture()
def run_copy(tiny_run, tmp_path):
    """A copy of the tiny run that a test may damage."""
    return shutil.copytree(tiny_run, tmp_path / "run")


def test_training_exports_onnx_and_both_runtimes_agree(tiny_run, song):
    assert (tiny_run / "best.onnx").is_file()
    on_onnx, on_torch = load_run(tiny_run), load_run(tiny_run, runtime="torch")
    assert (on_onnx.runtime, on_torch.runtime) == ("onnxruntime", "torch")
    assert on_onnx.card.to_dict() == on_torch.card.to_dict()
    assert on_onnx.calibration.to_dict() == on_torch.calibration.to_dict()
    a, b = predict_file(song, on_onnx), predict_file(song, on_torch)
    assert np.abs(a.probs - b.probs).max() < 1e-4 and (a.active == b.active).all()


def test_prediction_on_onnx_runtime_loads_no_pytorch(tiny_run, song):
    code = (
        f"import sys, musicid; p = musicid.predict_file({str(song)!r}, {str(tiny_run)!r}); "
        "from musicid.infer.loaded import load_run; print(load_run({!r}).runtime); ".format(
            str(tiny_run)
        )
        + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', "
        "'librosa', "
        "'sklearn', 'webdataset', 'pandas')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["onnxruntime", "[]"], done.stdout


def test_help_and_mistakes_answer_before_heavy_imports(tmp_path):
    code = (
        "import sys\nfrom musicid.infer.predict_cli import main\nsys.argv = ['musicid-predict', "
        f"{str(tmp_path / 'nope.wav')!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnxruntime', "
        "'matplotlib', "
        "'librosa', 'sklearn')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "nope.wav: no such file or folder" in done.stderr and done.stdout.strip() == "[]", done


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", "not an ONNX model ONNX Runtime can load"),
        ("foreign", "not a musicid export"),
        ("other card", "its card describes [batch, 1, 128, 40]"),
        ("stale", "exported from another version of best.pt"),
    ],
)
def test_an_export_that_does_not_fit_its_run_is_one_line(run_copy, song, damage, message):
    path = run_copy / "best.onnx"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "foreign":
        model = onnx.load(str(path))
        del model.metadata_props[:]
        onnx.save(model, str(path))
    elif damage == "other card":
        model = onnx.load(str(path))
        prop = next(p for p in model.metadata_props if p.key == ONNX_CARD)
        card = json.loads(prop.value)
        card["window"]["n_frames"] = 40
        prop.value = json.dumps(card)
        onnx.save(model, str(path))
    else:  # the checkpoint changed after the export
        (run_copy / "best.pt").write_bytes((run_copy / "best.pt").read_bytes() + b"\0")
    r = invoke(predict_app, [song, "--model", run_copy, "-o", run_copy / "out"])
    assert (
        r.exit_code == 1
        and message in r.output
        and "best.onnx" in r.output
        and r.output.count("\n") == 1
    )


def test_a_run_without_its_export_predicts_on_pytorch_and_can_export(run_copy, song):
    (run_copy / "best.onnx").unlink()
    assert load_run(run_copy).runtime == "torch"
    with pytest.raises(InputError, match="musicid-train export"):
        load_run(run_copy, runtime="onnx")
    r = invoke(train_app, ["export", run_copy])
    assert r.exit_code == 0 and (run_copy / "best.onnx").is_file()
    assert load_run(run_copy).runtime == "onnxruntime"


def test_without_pytorch_or_onnx_runtime_the_error_says_what_to_do(run_copy, song):
    (run_copy / "best.onnx").rename(run_copy / "kept.onnx")
    no_torch = (
        "import sys; sys.modules['torch'] = None; from musicid.infer.loaded import load_run\n"
        "try:\n    load_run(sys.argv[1])\nexcept Exception as e:\n    print(e)"
    )
    done = subprocess.run(
        [sys.executable, "-c", no_torch, str(run_copy)], capture_output=True, text=True
    )
    assert "PyTorch is not installed" in done.stdout and "musicid-train export" in done.stdout, done
    (run_copy / "kept.onnx").rename(run_copy / "best.onnx")
    (run_copy / "best.pt").unlink()  # an export alone: onnxruntime or nothing
    no_ort = no_torch.replace("'torch'", "'onnxruntime'")
    done = subprocess.run(
        [sys.executable, "-c", no_ort, str(run_copy)], capture_output=True, text=True
    )
    assert "needs ONNX Runtime; pip install onnxruntime" in done.stdout, done
    # the export alone predicts, its calibration bound to it
    assert load_run(run_copy).runtime == "onnxruntime"
    assert load_run(run_copy).calibration is not None


def test_log_mel_equals_librosas_definition():
    librosa = pytest.importorskip("librosa")
    cfg = LogMel()
    assert np.array_equal(
        mel_filterbank(22050, 1024, 128, 30.0, 11025.0),
        librosa.filters.mel(sr=22050, n_fft=1024, n_mels=128, fmin=30.0, fmax=11025.0).astype(
            np.float32
        ),
    )
    y = np.pad(np.random.default_rng(0).standard_normal(22050).astype(np.float32), cfg.n_fft // 2)
    stft = librosa.stft(y, n_fft=1024, hop_length=256, center=False)
    assert np.allclose(
        power_spectrogram(y, 1024, 256), stft.real**2 + stft.imag**2, rtol=1e-5, atol=1e-6
    )


def test_prediction_computes_the_features_the_shards_hold(tmp_path):
    """One recording at 48 kHz: the streaming features of prediction (chunks of 1.3 s) equal the
    whole-file features, and those equal the shards' spec.npy (stored as float16)."""
    from tests.conftest import write_recording

    audio = tone(4.0, 48000, 1, 330.0)[:, 0] * np.linspace(0.2, 1.0, 4 * 48000, dtype=np.float32)
    root = write_recording(
        tmp_path / "data", "77", [(0, 40000, 41, 60)], rate=48000, audio=audio, folder="test"
    )
    write_recording(
        tmp_path / "data", "78", [(0, 40000, 41, 60)], rate=48000, audio=audio, folder="train"
    )
    build_shards(root, tmp_path / "shards", BuildConfig(shards_per_split=1, val_fraction=0.0))
    m = read_manifest(tmp_path / "shards")
    cfg = m.features
    whole = cfg.compute(sf.read(root / "test_data" / "77.wav", dtype="float32")[0], 48000)
    stream, parts = cfg.stream(48000), []
    x = sf.read(root / "test_data" / "77.wav", dtype="float32")[0]
    for i in range(0, len(x), int(1.3 * 48000)):
        parts.append(stream.push(x[i : i + int(1.3 * 48000)]))
    parts.append(stream.push(np.zeros(0, np.float32), last=True))
    streamed = np.concatenate(parts, axis=1)
    # soxr: stream vs one shot
    assert streamed.shape == whole.shape and np.abs(streamed - whole).max() < 1e-3
    import tarfile

    with tarfile.open(tmp_path / "shards" / m.shards("test")[0].name) as tar:
        for member in tar.getmembers():
            if member.name.endswith("spec.npy"):
                start = int(member.name.split("_")[1].split(".")[0]) * cfg.frame_rate / 44100
                spec = load_npy(tar.extractfile(member).read()).astype(np.float32)
                frame0 = int(round(start))
                assert np.allclose(spec, whole[:, frame0 : frame0 + m.n_frames], atol=0.05)
