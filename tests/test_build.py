"""build-shards end to end: shard contract, splits, determinism, resume, ownership of OUT, argument
checks."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
from collections import defaultdict

import numpy as np
import pytest
import webdataset as wds

from musicid.errors import InputError
from musicid.features import LogMel
from musicid.pipeline import build as build_mod
from musicid.pipeline import shards as shards_mod
from musicid.pipeline.build import STATE, BuildConfig, build_shards
from musicid.pipeline.synth import synthesize
from musicid.shardset import read_manifest
from musicid.windows import WindowConfig
from tests.conftest import shard_hashes, write_recording

CFG = BuildConfig(shards_per_split=2, val_fraction=0.2)


def read_split(folder, manifest, split):
    urls = [str(folder / s.name) for s in manifest.splits[split].shards]
    return list(wds.WebDataset(urls, shardshuffle=False, nodesplitter=wds.split_by_node))


def npy(b):
    return np.load(io.BytesIO(b), allow_pickle=False)


def test_shard_contract(tiny_shards):
    m = read_manifest(tiny_shards)
    assert m.format_version == 3 and len(m.instruments) == 11
    assert m.instruments[2] == {"program": 41, "name": "Violin", "order": 2}
    assert len(m.normalization["mean"]) == m.features.n_mels == 128 and m.features.fmax == 11025
    raw = json.loads((tiny_shards / "manifest.json").read_text())
    assert "build_args" not in raw and "features" not in raw["build"]  # each setting recorded once
    seen = defaultdict(set)
    for split in ("train", "val", "test"):
        samples = read_split(tiny_shards, m, split)
        assert len(samples) == m.splits[split].samples > 0
        assert len(m.splits[split].shards) == 2
        for s in samples:
            assert set(s) >= {"json", "spec.npy", "instruments.npy", "notes.npy", "roll.npy"}
            assert not any(k.endswith((".pyd", ".pickle")) for k in s)
            assert re.fullmatch(r"\d+_\d{10}", s["__key__"])
            spec, inst, notes, roll = (
                npy(s[k]) for k in ("spec.npy", "instruments.npy", "notes.npy", "roll.npy")
            )
            assert spec.dtype == np.float16 and spec.shape == (128, m.n_frames)
            assert inst.dtype == notes.dtype == roll.dtype == np.uint8
            assert inst.shape == (11,) and notes.shape == (128,) and roll.shape == (11, m.n_frames)
            # the clip label follows the roll
            assert ((roll.mean(axis=1) >= 0.1) == inst.astype(bool)).all()
            meta = json.loads(s["json"])
            assert set(meta) == {"recording", "start_s", "end_s", "ensemble"}
            assert s["__key__"] == f"{meta['recording']}_{round(meta['start_s'] * 44100):010d}"
            seen[split].add(meta["recording"])
        assert seen[split] == set(m.splits[split].recordings)
    assert (
        not (seen["train"] & seen["val"])
        and not (seen["train"] & seen["test"])
        and not (seen["val"] & seen["test"])
    )
    assert seen["test"] == {"1010", "1011"}  # test is the official test folder


def test_every_train_shard_mixes_recordings(tiny_shards):
    m = read_manifest(tiny_shards)
    for shard in m.splits["train"].shards:
        recs = [
            json.loads(s["json"])["recording"]
            for s in wds.WebDataset(str(tiny_shards / shard.name), shardshuffle=False)
        ]
        assert len(set(recs)) >= 3
        runs = 1 + sum(a != b for a, b in zip(recs, recs[1:], strict=False))
        # blocks of different recordings interleave, not one recording after another
        assert runs >= 4


def test_deterministic_and_independent_of_workers(synth_root, tiny_shards, tmp_path):
    again = build_shards(synth_root, tmp_path / "a", CFG, workers=2).manifest
    assert shard_hashes(again) == shard_hashes(read_manifest(tiny_shards))
    other = build_shards(
        synth_root, tmp_path / "b", BuildConfig(shards_per_split=2, val_fraction=0.2, seed=9)
    )
    assert shard_hashes(other.manifest) != shard_hashes(again)


def test_interrupted_build_resumes_to_identical_shards(
    synth_root, tiny_shards, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    real_stage = build_mod.stage_recording
    calls = []

    def crash_on_fourth(rec, **kw):
        calls.append(rec.id)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_stage(rec, **kw)

    monkeypatch.setattr(build_mod, "stage_recording", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        build_shards(synth_root, out, CFG, workers=1)
    monkeypatch.setattr(build_mod, "stage_recording", real_stage)
    assert not (out / "manifest.json").exists() and not list(out.glob("*.tar"))

    real_write = shards_mod.write_shard
    written = []

    def crash_on_third_shard(job, record):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(job.path.name)
        return real_write(job, record)

    monkeypatch.setattr(build_mod, "write_shard", crash_on_third_shard)
    with pytest.raises(KeyboardInterrupt):
        build_shards(synth_root, out, CFG, workers=1)
    monkeypatch.setattr(build_mod, "write_shard", real_write)
    # only complete shards are visible
    assert sorted(p.name for p in out.glob("*.tar")) == sorted(written)

    done = build_shards(synth_root, out, CFG)
    assert done.recordings_reused == 12
    assert shard_hashes(done.manifest) == shard_hashes(read_manifest(tiny_shards))
    assert not (out / STATE).exists() and not list(out.glob(".*"))
    assert build_shards(synth_root, out, CFG).already_complete


def test_disk_full_is_resumable(synth_root, tiny_shards, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_write = shards_mod.write_shard
    calls = []

    def full_disk(job, record):
        calls.append(job)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(job.tmp))
        return real_write(job, record)

    monkeypatch.setattr(build_mod, "write_shard", full_disk)
    with pytest.raises(OSError, match="No space left"):
        build_shards(synth_root, out, CFG, workers=1)
    monkeypatch.setattr(build_mod, "write_shard", real_write)
    done = build_shards(synth_root, out, CFG)
    assert shard_hashes(done.manifest) == shard_hashes(read_manifest(tiny_shards))


def test_changed_arguments_are_refused_then_overwrite(synth_root, tmp_path):
    out = tmp_path / "o"
    build_shards(synth_root, out, CFG)
    other = BuildConfig(shards_per_split=2, val_fraction=0.2, windows=WindowConfig(hop_s=0.25))
    with pytest.raises(InputError, match=r"windows\.hop_s: 0\.5 -> 0\.25"):
        build_shards(synth_root, out, other)
    m = build_shards(synth_root, out, other, overwrite=True).manifest
    assert m.window.hop_s == 0.25 and m.splits["train"].samples > 0


def test_only_what_a_build_wrote_is_removed_or_reused(synth_root, tmp_path):
    """Files a user put in OUT are never deleted or adopted; a missing shard is rebuilt, not
    reported done."""
    out = tmp_path / "o"
    out.mkdir()
    (out / ".notes.tmp-2024").write_text("mine")
    (out / ".cache.tmp-x").mkdir()
    (out / "train-000000.tar").write_bytes(b"junk, not a shard")
    with pytest.raises(
        InputError, match=r"train-000000\.tar: a shard-named file that no musicid build"
    ):
        build_shards(synth_root, out, CFG, workers=1)
    with pytest.raises(InputError, match="no musicid build"):
        build_shards(synth_root, out, CFG, overwrite=True)
    assert (out / "train-000000.tar").read_bytes() == b"junk, not a shard"
    (out / "train-000000.tar").unlink()
    first = build_shards(synth_root, out, CFG).manifest
    assert (out / ".notes.tmp-2024").read_text() == "mine" and (out / ".cache.tmp-x").is_dir()
    (out / "train-000009.tar").write_bytes(b"someone else's")
    with pytest.raises(InputError, match="train-000009"):
        build_shards(
            synth_root, out, BuildConfig(shards_per_split=3, val_fraction=0.2), overwrite=True
        )
    assert (out / "train-000009.tar").exists()
    (out / "train-000009.tar").unlink()
    (out / "val-000001.tar").unlink()  # a lost shard: the same build rebuilds it
    again = build_shards(synth_root, out, CFG)
    assert not again.already_complete and again.rebuilt_missing == 1
    assert shard_hashes(again.manifest) == shard_hashes(first)
    (out / "manifest.json").unlink()  # shards without their manifest cannot be proven ours
    with pytest.raises(InputError, match="no musicid build"):
        build_shards(
            synth_root,
            out,
            BuildConfig(shards_per_split=2, val_fraction=0.2, features=LogMel(n_mels=64)),
        )


def test_a_second_build_into_the_same_folder_is_told_who_holds_it(synth_root, tmp_path):
    out = tmp_path / "o"
    (out / STATE).mkdir(parents=True)
    (out / STATE / "pid").write_text("4242")
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(InputError, match=r"another build \(pid 4242\) is writing here"):
            build_shards(synth_root, out, CFG, workers=1)
    finally:
        os.close(fd)


def test_out_that_is_a_file_is_refused(synth_root, tmp_path):
    (tmp_path / "o").write_text("a file")
    with pytest.raises(InputError, match="exists and is not a folder"):
        build_shards(synth_root, tmp_path / "o", CFG)


def test_long_recording_names_work(tmp_path):
    """Tar's ustar format stops at 100 characters per name; shards use PAX headers for longer
    ones."""
    name = "a" * 120
    root = write_recording(tmp_path / "root", name, [(0, 44100, 1, 60)])
    m = build_shards(
        root, tmp_path / "o", BuildConfig(shards_per_split=1, val_fraction=0.0)
    ).manifest
    (sample, *_) = read_split(tmp_path / "o", m, "train")
    assert json.loads(sample["json"])["recording"] == name and sample["__key__"].startswith(name)


def test_spans_segmentation_reproduces_prior_samples(synth_root, tmp_path):
    cfg = BuildConfig(
        shards_per_split=1, windows=WindowConfig(window_s=0.2322, segmentation="spans")
    )
    m = build_shards(synth_root, tmp_path / "s", cfg).manifest
    assert m.n_frames == 20
    samples = read_split(tmp_path / "s", m, "test")
    keys = [s["__key__"] for s in samples]
    assert len(keys) == len(set(keys)) == m.splits["test"].samples
    # each sample is a span: its instruments are constant over the (tiled) frame roll
    for s in samples[:50]:
        assert (npy(s["roll.npy"]).max(axis=1) == npy(s["instruments.npy"])).all()


def test_shard_count_and_size_cap_holds(synth_root, tmp_path):
    m = build_shards(
        synth_root, tmp_path / "c", BuildConfig(shards_per_split=3, max_shard_mb=0.2)
    ).manifest
    train = m.splits["train"].shards
    assert len(train) > 3 and all(s.samples > 0 for s in train)
    assert all(s.bytes <= 0.2 * 2**20 for split in m.splits.values() for s in split.shards)
    assert len(m.splits["test"].shards) >= 3
    with pytest.raises(InputError, match="below one sample"):
        build_shards(synth_root, tmp_path / "d", BuildConfig(max_shard_mb=0.01))


def test_plan_gives_every_shard_a_block():
    plan = shards_mod.plan_shards({"a": 5, "b": 3}, "train", n_shards=4, block_size=16, seed=0)
    assert len(plan) == 4 and all(plan)
    got = sorted((r, int(i)) for shard in plan for r, idx in shard for i in idx)
    assert got == [("a", i) for i in range(5)] + [("b", i) for i in range(3)]


def test_further_roots_add_to_train_never_to_test(synth_root, tmp_path):
    extra = tmp_path / "rendered"
    synthesize(extra, recordings=6, seconds=2.0, seed=8)  # the same ids 1000... as the main root
    m = build_shards([synth_root, extra], tmp_path / "o", CFG).manifest
    main_ids = set(read_manifest(tmp_path / "o").sources[0]["recordings"])
    assert m.splits["test"].recordings == ["1010", "1011"]  # the main root's test folder, only
    extra_ids = {r for r in m.sources[1]["recordings"]}
    assert (
        len(extra_ids) == 6
        and all(r.startswith("src1-") for r in extra_ids)
        and not extra_ids & main_ids
    )
    # its test folder too: never test, val only if asked
    assert extra_ids <= set(m.splits["train"].recordings)
    assert (
        m.sources[1]["seconds"] == 12.0 and sum(m.sources[1]["instrument_positives"].values()) > 0
    )
    assert [s["root"] for s in m.sources] == [str(synth_root.resolve()), str(extra.resolve())]
    assert "roots" not in m.build  # recorded once, with each source
    with_val = build_shards(
        [synth_root, extra],
        tmp_path / "v",
        BuildConfig(shards_per_split=2, val_fraction=0.5, extra_val=True),
    ).manifest
    assert any(r.startswith("src1-") for r in with_val.splits["val"].recordings)
    assert not any(r.startswith("src1-") for r in with_val.splits["test"].recordings)


def test_colliding_ids_across_roots_are_refused(tmp_path):
    main = write_recording(tmp_path / "main", "src1-7", [(0, 44100, 1, 60)])
    extra = write_recording(tmp_path / "extra", "7", [(0, 44100, 41, 60)])
    with pytest.raises(InputError, match="recording id src1-7 is also in"):
        build_shards([main, extra], tmp_path / "o", CFG)
