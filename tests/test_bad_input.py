"""Bad and foreign input to the pipeline: each case skipped, dropped or refused with one clear line,
and counted in the manifest. Audio comes from other writers too (LAME MP3s, FFmpeg AAC/Opus,
hand-built WAVs)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import webdataset as wds

from musicid.errors import InputError
from musicid.pipeline.build import BuildConfig, build_shards
from musicid.pipeline.cli import app
from musicid.shardset import read_manifest
from tests.audio_writers import tone, write_ffmpeg, write_float_wav, write_mp3
from tests.conftest import invoke, write_recording

GOOD = [(0, 44100, 1, 60), (22050, 88200, 41, 72)]
CFG = BuildConfig(shards_per_split=1, val_fraction=0.0)


def cli(*args):
    return invoke(app, list(args))


def test_unpaired_files_other_files_and_bad_rows_are_skipped_and_counted(tmp_path):
    root = tmp_path / "root"
    write_recording(root, "1", GOOD)
    write_recording(
        root,
        "2",
        GOOD
        + [
            (100, 100, 1, 60),
            (-1, 50, 1, 60),
            (0, 10**7, 1, 60),
            (0, 500, 25, 60),
            (0, 500, 41.7, 60),
            (0, 500, 41, 60.9),
            (0, 1e30, 1, 60),
            (0, float("inf"), 1, 60),
        ],
    )
    write_recording(root, "3", GOOD)
    (root / "train_labels" / "3.csv").unlink()  # wav without labels
    write_recording(root, "4", GOOD)
    (root / "train_data" / "4.wav").unlink()  # labels without wav
    (root / "train_data" / "README.txt").write_text("notes")
    with _no_warnings():
        m = build_shards(root, tmp_path / "out", CFG).manifest
    assert m.splits["train"].recordings == ["1", "2"]
    assert m.skipped == {
        "files_not_audio": 1,
        "recordings_audio_without_labels": 1,
        "recordings_labels_without_audio": 1,
        "rows_end_not_after_start": 1,
        "rows_negative_time": 1,
        "rows_not_finite": 1,
        "rows_not_integer": 2,
        "rows_past_end_of_audio": 2,
        "rows_unknown_instrument": 1,
    }
    details = " ".join(m.skipped_details)
    assert "3.wav" in details and "4.csv" in details and "README.txt" in details


class _no_warnings:
    """No RuntimeWarnings (e.g. numpy casting inf) may reach the user."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def test_unreadable_truncated_and_nan_audio_are_skipped(tmp_path):
    root = tmp_path / "root"
    for rid in "1234":
        write_recording(root, rid, GOOD)
    (root / "train_data" / "2.wav").write_bytes(b"not audio at all" * 100)
    wav = (root / "train_data" / "3.wav").read_bytes()
    (root / "train_data" / "3.wav").write_bytes(wav[: len(wav) // 2])
    audio = tone(2.0, 44100)
    audio[1000] = np.nan
    write_float_wav(root / "train_data" / "4.wav", audio, 44100)
    m = build_shards(root, tmp_path / "out", CFG).manifest
    assert m.splits["train"].recordings == ["1"]
    assert m.skipped["recordings_unreadable_audio"] == 3
    details = " ".join(m.skipped_details)
    assert "2.wav: not audio, or a format we cannot decode" in details
    assert "3.wav: truncated audio" in details
    assert "4.wav: audio contains NaN" in details


@pytest.mark.parametrize(
    ("rate", "channels", "vbr"),
    [(44100, 1, False), (22050, 2, True), (48000, 2, False), (44100, 2, True)],
)
def test_mp3s_from_lame_are_read_to_their_end(tmp_path, rate, channels, vbr):
    """MP3 frame counts are estimates (encoder delay, padding, VBR): never called truncated, always
    decoded whole."""
    root = tmp_path / "root"
    write_recording(root, "1", [(0, rate, 1, 60)], rate=rate)
    (root / "train_data" / "1.wav").unlink()
    write_mp3(root / "train_data" / "1.mp3", tone(3.0, rate, channels), rate, vbr)
    m = build_shards(root, tmp_path / "out", CFG).manifest
    assert m.skipped == {} and m.splits["train"].recordings == ["1"]
    # the whole file, plus at most the encoder's padding
    assert 3.0 <= m.splits["train"].seconds < 3.2


@pytest.mark.parametrize(
    ("name", "codec", "rate"),
    [
        ("1.m4a", "aac", 44100),
        ("1.mp4", "aac", 44100),
        ("1.mkv", "libopus", 48000),
        ("1.webm", "libopus", 48000),
    ],
)
def test_containers_only_ffmpeg_reads(tmp_path, name, codec, rate):
    root = tmp_path / "root"
    write_recording(root, "1", [(0, rate, 1, 60)], rate=rate)
    (root / "train_data" / "1.wav").unlink()
    write_ffmpeg(root / "train_data" / name, tone(2.0, rate, 2), rate, codec)
    m = build_shards(root, tmp_path / "out", CFG).manifest
    assert m.skipped == {} and 2.0 <= m.splits["train"].seconds < 2.1


def test_missing_column_stops_the_build_naming_file_and_column(tmp_path):
    root = write_recording(tmp_path / "root", "5", GOOD)
    csv = root / "train_labels" / "5.csv"
    csv.write_text(csv.read_text().replace(",note,", ",pitch,"))
    with pytest.raises(InputError, match=r"5\.csv.*note"):
        build_shards(root, tmp_path / "out", CFG)
    r = cli("build-shards", root, tmp_path / "out2", "--workers", "1")
    assert r.exit_code == 1 and "5.csv" in r.output and "note" in r.output


def _first_sample(folder, manifest):
    url = str(folder / manifest.splits["train"].shards[0].name)
    sample = sorted(wds.WebDataset(url, shardshuffle=False), key=lambda s: s["__key__"])[0]
    return {k: np.load(io.BytesIO(sample[k]), allow_pickle=False) for k in ("spec.npy", "roll.npy")}


def test_stereo_is_downmixed_and_other_rates_resampled_with_labels_at_their_own_rate(tmp_path):
    rows44 = [(0, 22050, 1, 60)]  # first half second
    mono = build_shards(write_recording(tmp_path / "m", "1", rows44), tmp_path / "mo", CFG).manifest
    stereo = build_shards(
        write_recording(tmp_path / "s", "1", rows44, channels=2), tmp_path / "so", CFG
    ).manifest
    rows48 = [(0, 24000, 1, 60)]  # the same half second, as sample indices at 48 kHz
    r48 = build_shards(
        write_recording(tmp_path / "r", "1", rows48, rate=48000), tmp_path / "ro", CFG
    ).manifest
    a, b, c = (
        _first_sample(f, m)
        for f, m in ((tmp_path / "mo", mono), (tmp_path / "so", stereo), (tmp_path / "ro", r48))
    )
    assert np.allclose(a["spec.npy"], b["spec.npy"], atol=0.1)
    # the 440 Hz tone's bins (the rest is 16-bit quantisation noise)
    tone_bins = a["spec.npy"] > -30
    assert tone_bins.sum() > 100 and np.allclose(
        a["spec.npy"][tone_bins], c["spec.npy"][tone_bins], atol=1.0
    )
    assert (a["roll.npy"] == c["roll.npy"]).all() and a["roll.npy"][0].sum() in (43, 44)
    assert mono.splits["train"].seconds == r48.splits["train"].seconds == 2.0


@pytest.mark.parametrize("make", ["missing", "empty", "no_pairs", "file"])
def test_empty_missing_or_file_root_fails_clearly(tmp_path, make):
    root = tmp_path / "root"
    if make == "empty":
        root.mkdir()
    if make == "no_pairs":
        (root / "train_data").mkdir(parents=True)
    if make == "file":
        root.write_text("x")
    r = cli("build-shards", root, tmp_path / "out")
    assert r.exit_code == 1 and str(root) in r.output and r.output.startswith("error:")
    assert len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_out_that_is_a_file_and_bad_options_are_one_line(synth_root, tmp_path):
    (tmp_path / "f").write_text("x")
    r = cli("build-shards", synth_root, tmp_path / "f")
    assert r.exit_code == 1 and "exists and is not a folder" in r.output
    r = cli("build-shards", synth_root, tmp_path / "o", "--segmentation", "notes")
    assert r.exit_code == 1 and "notes" in r.output and len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"splits": {}}, "missing 'format_version'"),
        ({"format_version": 3, "splits": {}}, "missing 'window'"),
        ("[1, 2]", "a JSON object was expected"),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_file_that_is_not_a_manifest_is_named(tmp_path, content, message):
    (tmp_path / "manifest.json").write_text(
        content if isinstance(content, str) else json.dumps(content)
    )
    r = cli("inspect", tmp_path)
    assert r.exit_code == 1 and message in r.output and "manifest.json" in r.output


@pytest.mark.parametrize(
    "name",
    [
        "pipe:touch MARKER; cat test-000000.tar",
        "../elsewhere/test-000000.tar",
        "/abs/test-000000.tar",
        "test-000000.tar.pyd",
    ],
)
def test_shard_names_cannot_leave_the_folder_or_run_commands(tiny_shards, tmp_path, name):
    manifest = json.loads((tiny_shards / "manifest.json").read_text())
    manifest["splits"]["test"]["shards"][0]["name"] = name
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="is not of the form"):
        read_manifest(tmp_path)
    assert not (tmp_path / "MARKER").exists()


def test_full_disk_is_one_line_that_says_what_to_do(synth_root, tmp_path, monkeypatch):
    from musicid.pipeline import build as build_mod

    def full(job, record):
        raise OSError(28, "No space left on device", str(job.tmp))

    monkeypatch.setattr(build_mod, "write_shard", full)
    r = cli("build-shards", synth_root, tmp_path / "o", "--workers", "1", "--shards-per-split", "2")
    assert r.exit_code == 1 and "No space left on device; free space and rerun" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_trainer_names_a_manifest_that_is_not_one(tmp_path):
    from musicid.train.cli import app as train_app

    (tmp_path / "manifest.json").write_text('{"splits": {}}')
    r = invoke(train_app, ["--shards", tmp_path, "--out", tmp_path / "run"])
    assert r.exit_code == 1 and "not a musicid manifest: missing 'format_version'" in r.output


def test_full_disk_while_staging_says_so(synth_root, tmp_path, monkeypatch):
    from musicid.pipeline import staging

    def short_write(*args, **kwargs):  # what numpy raises on a full disk: no errno, no file name
        raise OSError("44160 requested and 16320 written")

    monkeypatch.setattr(staging.np, "save", short_write)
    r = cli("build-shards", synth_root, tmp_path / "o", "--workers", "1", "--shards-per-split", "2")
    assert (
        r.exit_code == 1
        and "no space left on the device" in r.output
        and "free space and rerun" in r.output
    )


def test_roots_are_checked_before_anything_is_written(synth_root, tmp_path):
    out = tmp_path / "o1"
    r = cli("build-shards", tmp_path / "nope", out)
    assert r.exit_code == 1 and "does not exist" in r.output and not out.exists()
    r = cli("build-shards", synth_root, synth_root, out)
    assert r.exit_code == 1 and "the same folder as root" in r.output and not out.exists()
    r = cli("build-shards", synth_root, synth_root / "musicnet", out)
    assert r.exit_code == 1 and "inside root" in r.output and not out.exists()
    r = cli("build-shards", synth_root, out, "--window", "inf")
    assert r.exit_code == 1 and "--window must be a finite number" in r.output and not out.exists()
    r = cli("build-shards", synth_root, out, "--workers", "1", "--shards-per-split", "2")
    assert r.exit_code == 0, r.output
