"""Bad input: each case skipped, dropped or refused with a clear message, and counted in the manifest."""

from __future__ import annotations

import io

import numpy as np
import pytest
import webdataset as wds
from typer.testing import CliRunner

from pipeline.build import BuildConfig, build_shards
from pipeline.cli import app
from pipeline.labels import InputError
from tests.conftest import write_recording

GOOD = [(0, 44100, 1, 60), (22050, 88200, 41, 72)]
CFG = BuildConfig(shards_per_split=1, val_fraction=0.0)


def test_unpaired_files_and_bad_rows_are_skipped_and_counted(tmp_path):
    root = tmp_path / "root"
    write_recording(root, "1", GOOD)
    write_recording(root, "2", GOOD + [(100, 100, 1, 60), (-1, 50, 1, 60), (0, 10**7, 1, 60), (0, 500, 25, 60)])
    write_recording(root, "3", GOOD)
    (root / "train_labels" / "3.csv").unlink()  # wav without labels
    write_recording(root, "4", GOOD)
    (root / "train_data" / "4.wav").unlink()  # labels without wav
    m = build_shards(root, tmp_path / "out", CFG, progress=False)
    assert m["splits"]["train"]["recordings"] == ["1", "2"]
    assert m["skipped"] == {"recordings_audio_without_labels": 1, "recordings_labels_without_audio": 1,
                            "rows_end_not_after_start": 1, "rows_negative_time": 1, "rows_past_end_of_audio": 1,
                            "rows_unknown_instrument": 1}
    assert any("3.wav" in d for d in m["skipped_details"]) and any("4.csv" in d for d in m["skipped_details"])


def test_unreadable_and_truncated_audio_are_skipped(tmp_path):
    root = tmp_path / "root"
    for rid in "123":
        write_recording(root, rid, GOOD)
    (root / "train_data" / "2.wav").write_bytes(b"not audio at all" * 100)
    wav = (root / "train_data" / "3.wav").read_bytes()
    (root / "train_data" / "3.wav").write_bytes(wav[: len(wav) // 2])
    m = build_shards(root, tmp_path / "out", CFG, progress=False)
    assert m["splits"]["train"]["recordings"] == ["1"]
    assert m["skipped"]["recordings_unreadable_audio"] == 2
    details = " ".join(m["skipped_details"])
    assert "2.wav: unreadable audio" in details and "3.wav: truncated audio" in details


def test_missing_column_stops_the_build_naming_file_and_column(tmp_path):
    root = write_recording(tmp_path / "root", "5", GOOD)
    csv = root / "train_labels" / "5.csv"
    csv.write_text(csv.read_text().replace(",note,", ",pitch,"))
    with pytest.raises(InputError, match=r"5\.csv.*note"):
        build_shards(root, tmp_path / "out", CFG, progress=False)
    result = CliRunner().invoke(app, ["build-shards", str(root), str(tmp_path / "out2"), "--workers", "1"])
    assert result.exit_code != 0 and "5.csv" in result.output and "note" in result.output


def _first_sample(folder, manifest):
    url = str(folder / manifest["splits"]["train"]["shards"][0]["name"])
    sample = sorted(wds.WebDataset(url, shardshuffle=False), key=lambda s: s["__key__"])[0]
    return {k: np.load(io.BytesIO(sample[k]), allow_pickle=False) for k in ("spec.npy", "roll.npy")}


def test_stereo_is_downmixed_and_other_rates_resampled_with_labels_at_their_own_rate(tmp_path):
    rows44 = [(0, 22050, 1, 60)]  # first half second
    mono = build_shards(write_recording(tmp_path / "m", "1", rows44), tmp_path / "mo", CFG, progress=False)
    stereo = build_shards(write_recording(tmp_path / "s", "1", rows44, channels=2), tmp_path / "so", CFG,
                          progress=False)
    rows48 = [(0, 24000, 1, 60)]  # the same half second, as sample indices at 48 kHz
    r48 = build_shards(write_recording(tmp_path / "r", "1", rows48, rate=48000), tmp_path / "ro", CFG,
                       progress=False)
    a, b, c = (_first_sample(f, m) for f, m in ((tmp_path / "mo", mono), (tmp_path / "so", stereo),
                                                 (tmp_path / "ro", r48)))
    assert np.allclose(a["spec.npy"], b["spec.npy"], atol=0.1)
    tone = a["spec.npy"] > -30  # the 440 Hz tone's bins (the rest is 16-bit quantisation noise)
    assert tone.sum() > 100 and np.allclose(a["spec.npy"][tone], c["spec.npy"][tone], atol=1.0)
    assert (a["roll.npy"] == c["roll.npy"]).all() and a["roll.npy"][0].sum() in (43, 44)
    assert mono["splits"]["train"]["seconds"] == r48["splits"]["train"]["seconds"] == 2.0


@pytest.mark.parametrize("make", ["missing", "empty", "no_pairs"])
def test_empty_or_missing_root_fails_clearly(tmp_path, make):
    root = tmp_path / "root"
    if make == "empty":
        root.mkdir()
    if make == "no_pairs":
        (root / "train_data").mkdir(parents=True)
    result = CliRunner().invoke(app, ["build-shards", str(root), str(tmp_path / "out")])
    assert result.exit_code != 0
    assert str(root) in result.output and "error:" in result.output
    assert not (tmp_path / "out" / "manifest.json").exists()
