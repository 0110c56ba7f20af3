"""Hostile input, round three, by cause: damaged instruments (SFZ text written by hand, WAV headers
built by hand), damaged models (a checkpoint damaged by hand, bit rot in a shipped file), recipe
stamps that would lie, two writers in one folder, and the loose ends (header-only tables, lying AIFF
headers, empty excerpts)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import struct
import sys
import wave

import numpy as np
import pytest

from musicid.errors import AudioError, InputError
from musicid.infer.clips import read_clips
from musicid.infer.loaded import load_run
from musicid.infer.predict_cli import app as predict_app
from musicid.pipeline.cli import app as pipeline_app
from musicid.run import Checkpoint
from tests.audio_writers import tone, write_float_wav, write_mp3
from tests.conftest import invoke


def _render_extra():
    try:
        import fluidsynth  # noqa: F401
        import music21  # noqa: F401
        import pysfizz  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(
            "no FluidSynth/sfizz/music21 here (make setup installs them; CI always runs these "
            "tests)"
        )


def _note(path, seconds=1.0):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(44100)
        t = np.arange(int(seconds * 44100)) / 44100
        w.writeframes((0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2").tobytes())


def _library(root, sfz_text):
    """A library of one hand-written SFZ instrument over one good note."""
    from musicid.pipeline.library import LIBRARY_FILE

    (root / "viol").mkdir(parents=True)
    _note(root / "viol" / "A4.wav")
    (root / "viol" / "viol.sfz").write_text(sfz_text)
    entry = {
        "name": "viol",
        "kind": "sfz",
        "path": "viol/viol.sfz",
        "instrument": "Violin",
        "source": "hand",
        "licence": "CC0",
        "attribution": "tests",
    }
    (root / LIBRARY_FILE).write_text(json.dumps({"format": 1, "instruments": [entry]}))
    return root


def _lying_wav(path, claims: int):
    """A WAV whose data chunk claims `claims` bytes and holds one second."""
    data = np.zeros(44100, "<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 44100, 88200, 2, 16)
    path.write_bytes(
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", claims)
        + data
    )


@pytest.mark.parametrize(
    "region, message",
    [
        ("sample=missing.wav", "'missing.wav': no such file"),
        ("sample=empty.wav", "'empty.wav': empty file"),
        ("sample=../../etc/passwd", "is outside the instrument library"),
        ("sample=/etc/passwd", "is outside the instrument library"),
        ("sample=huge.wav", "'huge.wav': truncated audio"),
        ("sample=*sine", "is a generator, not a recorded sample"),
        ("sample=notes.txt", "'notes.txt': not audio, or a format we cannot decode"),
    ],
)
def test_a_damaged_instrument_is_an_error_naming_the_sample(tmp_path, region, message):
    _render_extra()
    from musicid.pipeline.library import load_library

    root = _library(
        tmp_path / "lib",
        f"<region> sample=A4.wav lokey=0 hikey=60\n<region> {region} lokey=61 hikey=127\n",
    )
    (root / "viol" / "empty.wav").write_bytes(b"")
    (root / "viol" / "notes.txt").write_text("not a sample")
    _lying_wav(root / "viol" / "huge.wav", 0xFFFFFFF0)  # 4 GB claimed, one second held
    with pytest.raises(InputError, match=message):
        load_library(root)
    out = tmp_path / "data"
    r = invoke(
        pipeline_app,
        [
            "synth",
            out,
            "--recordings",
            "4",
            "--seconds",
            "1",
            "--engine",
            "sampled",
            "--library",
            root,
        ],
    )
    assert r.exit_code == 1 and "viol.sfz: region sample" in r.output and not out.exists()


def test_a_library_record_with_fields_of_the_wrong_type_is_one_line(tmp_path):
    _render_extra()
    from musicid.pipeline.library import LIBRARY_FILE, load_library

    root = _library(tmp_path / "lib", "<region> sample=A4.wav\n")
    for bad in (3, None, ["a"]):
        data = json.loads((root / LIBRARY_FILE).read_text())
        data["instruments"][0]["path"] = bad
        (root / LIBRARY_FILE).write_text(json.dumps(data))
        with pytest.raises(InputError, match="instrument entry 1: path must be a string"):
            load_library(root)
    (root / LIBRARY_FILE).write_text(json.dumps({"format": 1, "instruments": ["viol"]}))
    with pytest.raises(InputError, match="instrument entry 1: expected a JSON object"):
        load_library(root)


def test_corpus_names_are_composers_only(tmp_path):
    _render_extra()
    r = invoke(pipeline_app, ["render", tmp_path / "out", "--corpus", "lib"])
    assert (
        r.exit_code == 1
        and "'lib' is not a composer of music21's corpus" in r.output
        and "haydn" in r.output
    )
    assert not (tmp_path / "out").exists()


def test_a_second_render_into_a_folder_being_written_is_refused(tmp_path):
    _render_extra()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".musicid-writer").write_text("4242\n")
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a render is writing here
    try:
        r = invoke(
            pipeline_app, ["synth", out, "--recordings", "2", "--seconds", "1", "--overwrite"]
        )
        assert r.exit_code == 1 and "another musicid synth (pid 4242) is writing here" in r.output
    finally:
        os.close(fd)
    assert (
        invoke(
            pipeline_app, ["synth", out, "--recordings", "2", "--seconds", "1", "--overwrite"]
        ).exit_code
        == 0
    )
    assert not (out / ".musicid-writer").exists()


def test_an_excerpt_in_a_long_rest_is_drawn_again_or_counted(tmp_path):
    _render_extra()
    from musicid.pipeline.scores import Skipped, draw_excerpt, excerpt

    parts = ([[(0.0, 1.0, 60), (400.0, 401.0, 62)], [(0.0, 1.0, 48), (400.0, 401.0, 50)]], False)
    rng = np.random.default_rng(0)
    drawn = [excerpt(tmp_path / "x.xml", parts, 2.0, rng)[1] for _ in range(20)]
    assert any(not d for d in drawn)  # most excerpts land in the rest
    with pytest.raises(Skipped) as info:
        for seed in range(50):
            draw_excerpt(tmp_path / "x.xml", parts, 2.0, np.random.default_rng(seed))
    assert info.value.reason == "score_excerpts_empty"


def test_damaged_weights_are_one_error_naming_the_file(tiny_run, tmp_path):
    import torch

    run = shutil.copytree(tiny_run, tmp_path / "run")
    ckpt = Checkpoint.load(run / "best.pt")
    ckpt.model["backbone.layer1.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    ckpt.save(run / "best.pt")
    song = write_mp3(tmp_path / "a.mp3", tone(2.0, 44100, 1), 44100, vbr=False)
    for runtime in ("torch", "onnx"):
        if runtime == "onnx":  # an export of the damaged weights: its probabilities are NaN
            from musicid.files import sha256_file
            from musicid.network import InstrumentNet, export_onnx

            model = InstrumentNet()
            model.load_state_dict(ckpt.model)
            export_onnx(model, ckpt.card, sha256_file(run / "best.pt"), run / "best.onnx")
            message = "gives NaN or infinite probabilities"
        else:
            message = "damaged weights: backbone.layer1.0.conv1.weight holds NaN"
        r = invoke(
            predict_app, [song, "--model", run, "--runtime", runtime, "-o", tmp_path / "out"]
        )
        errors = [line for line in r.output.splitlines() if line.startswith("error:")]
        assert r.exit_code == 1 and len(errors) == 1 and message in errors[0], r.output
    assert torch.isnan(ckpt.model["backbone.layer1.0.conv1.weight"]).any()


def test_a_shipped_file_with_bit_rot_is_named(tiny_run, tmp_path, monkeypatch):
    import musicid.run as shipped
    from musicid.network import build_model
    from musicid.recipes.export import export_model

    folder = tmp_path / "model"
    export_model(tiny_run, folder, {"name": "test", "version": "1", "data_sources": []})
    monkeypatch.setattr(shipped, "SHIPPED", folder)
    assert load_run(folder).runtime == "onnxruntime"
    for name in ("model.onnx", "model.pt"):
        data = bytearray((folder / name).read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit, deep in the weights
        (folder / f"{name}.kept").write_bytes((folder / name).read_bytes())
        (folder / name).write_bytes(bytes(data))
        with pytest.raises(InputError, match=f"{name}: does not match the checksum"):
            load_run(folder, runtime="onnx" if name.endswith("onnx") else "torch")
        if name == "model.pt":
            with pytest.raises(InputError, match="does not match the checksum"):
                build_model("default")
        (folder / f"{name}.kept").replace(folder / name)


def test_two_predictions_into_one_folder_at_once(tiny_run, tmp_path, monkeypatch):
    """The second finds the first's outputs only when it writes (both checked before predicting):
    refused."""
    import musicid.infer.outputs as outputs

    song = write_mp3(tmp_path / "song.mp3", tone(2.0, 44100, 1), 44100, vbr=False)
    out = tmp_path / "out"
    real = outputs.predict_file

    def meanwhile(*args, **kwargs):  # the other process writes its outputs while this one predicts
        monkeypatch.setattr(outputs, "predict_file", real)
        assert (
            invoke(
                predict_app, [song, "--model", tiny_run, "-o", out, "--format", "json"]
            ).exit_code
            == 0
        )
        return real(*args, **kwargs)

    monkeypatch.setattr(outputs, "predict_file", meanwhile)
    r = invoke(predict_app, [song, "--model", tiny_run, "-o", out, "--format", "json"])
    assert r.exit_code == 1 and "another command wrote it meanwhile" in r.output
    first = (out / "song.instruments.json").read_text()
    assert json.loads(first)["file"] == "song.mp3" and not list(out.glob(".*tmp*"))


def test_a_stray_value_after_a_flag_is_named(tiny_run, tmp_path):
    song = write_mp3(tmp_path / "song.mp3", tone(1.0, 44100, 1), 44100, vbr=False)
    r = invoke(predict_app, [song, "--overwrite", "true", "--model", tiny_run])
    assert (
        r.exit_code == 1 and "true: not a file; options such as --overwrite are flags" in r.output
    )


def test_a_clips_table_with_only_its_header_says_so(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "labels.csv").write_text("file,instruments\n")
    with pytest.raises(InputError, match="no clips"):
        read_clips(tmp_path)


def test_an_aiff_whose_header_lies_is_truncated_not_shortened(tmp_path):
    from musicid.audio import load_audio

    frames = np.zeros(1000, ">i2").tobytes()
    # 44100 Hz, 80-bit float
    comm = struct.pack(">hIh", 1, 44100, 16) + b"\x40\x0e\xac\x44" + b"\0" * 6
    ssnd = struct.pack(">II", 0, 0) + frames
    body = (
        b"AIFF"
        + b"COMM"
        + struct.pack(">I", len(comm))
        + comm
        + b"SSND"
        + struct.pack(">I", 8 + 88200)
        + ssnd
    )
    path = tmp_path / "lie.aiff"
    path.write_bytes(b"FORM" + struct.pack(">I", len(body)) + body)
    with pytest.raises(AudioError, match="truncated audio \\(SSND chunk declares"):
        load_audio(path)
    write_float_wav(tmp_path / "ok.wav", tone(0.5, 44100), 44100)
    assert len(load_audio(tmp_path / "ok.wav")[0]) == 22050


def test_a_silent_failing_npm_says_so(tmp_path, monkeypatch):
    import subprocess

    from musicid.pipeline import fetch

    monkeypatch.setattr(fetch.shutil, "which", lambda _: "/bin/false")
    monkeypatch.setattr(
        fetch.subprocess,
        "run",
        lambda *a, **k: subprocess.CompletedProcess(a, 1, stdout="", stderr=""),
    )
    with pytest.raises(InputError, match=r"npm pack x failed \(exit 1\), saying nothing") as info:
        fetch._npm_pack("x", tmp_path)
    assert "[]" not in str(info.value)


# --- the recipe's stamps
# --------------------------------------------------------------------------------------


def _recipe_steps(tmp_path, fail_at: str | None = None):
    from musicid.recipes.model import Steps

    log = tmp_path / "ran.txt"
    steps = Steps(tmp_path)
    for name in ("data", "shards", "train"):
        code = (
            f"open({str(log)!r}, 'a')"
            f".write('{name} ' + ' '.join(__import__('sys').argv[1:]) + '\\n')"
        )
        if name == fail_at:
            code += "; raise SystemExit(3)"
        steps.run(
            name, [sys.executable, "-c", code, f"--setting={tmp_path.name}"], again=("--overwrite",)
        )
    return log


def test_recipe_stamps_record_settings_and_rerun_what_changed(tmp_path):
    log = _recipe_steps(tmp_path)
    assert log.read_text().splitlines() == [f"data --setting={tmp_path.name}"] + [
        # after a step that ran
        f"{n} --setting={tmp_path.name} --overwrite"
        for n in ("shards", "train")
    ]
    log.unlink()
    _recipe_steps(tmp_path)
    assert not log.exists()  # the same settings: every step is done
    (tmp_path / ".done-shards").write_text("")  # marked done by hand: no settings recorded
    _recipe_steps(tmp_path)
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["shards", "train"]
    assert "--overwrite" in log.read_text()  # run again over its earlier outputs
    stamp = json.loads((tmp_path / ".done-data").read_text())
    assert stamp["command"][-1] == f"--setting={tmp_path.name}" and "seconds" in stamp
    log.unlink()
    # a stamp of other settings: that step and every later one again
    stamp["command"][-1] = "--setting=other"
    (tmp_path / ".done-data").write_text(json.dumps(stamp))
    _recipe_steps(tmp_path)
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["data", "shards", "train"]


def _recipe_commands(tmp_path, monkeypatch, args: list[str]) -> dict[str, list[str]]:
    """The commands the recipe's steps would run with `args`, up to and including training
    (nothing runs)."""
    from musicid.recipes import model

    ran = {}

    def record(self, name, cmd, again=(), resume=()):
        ran[name] = cmd
        if name == "train":
            raise SystemExit(0)

    monkeypatch.setattr(model.Steps, "run", record)
    r = invoke(model.app, ["--out", tmp_path, *args])
    assert r.exit_code == 0, r.output
    return ran


def test_the_recipe_holds_players_out_of_training_and_calibrates_on_them(tmp_path, monkeypatch):
    """--hold-out: the training data (synth, render) never plays those instruments, the
    calibration data plays only them."""
    held = ["--hold-out", "MuseScore_General,tonejs-cello"]
    ran = _recipe_commands(tmp_path, monkeypatch, held)
    for name in ("synth", "render"):
        i = ran[name].index("--hold-out")
        assert ran[name][i : i + 2] == held and "--players" not in ran[name]
    i = ran["synth-cal"].index("--players")
    assert ran["synth-cal"][i + 1] == held[1] and "--hold-out" not in ran["synth-cal"]


@pytest.mark.parametrize("args, expected", [([], None), (["--mixup", "1.0"], "1.0")])
def test_the_recipe_passes_mixup_to_training_only_when_asked(tmp_path, monkeypatch, args, expected):
    """The default train command is unchanged (an earlier run's stamp still matches it)."""
    train = _recipe_commands(tmp_path, monkeypatch, args)["train"]
    assert (train[train.index("--mixup") + 1] if "--mixup" in train else None) == expected


def test_a_failed_step_leaves_no_stamp_and_reruns(tmp_path):
    from musicid.errors import MusicidError

    with pytest.raises(MusicidError, match="recipe step shards failed"):
        _recipe_steps(tmp_path, fail_at="shards")
    assert (tmp_path / ".done-data").exists() and not (tmp_path / ".done-shards").exists()
    log = tmp_path / "ran.txt"
    log.unlink()
    _recipe_steps(tmp_path)
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["shards", "train"]
