"""The streaming trainer on tiny synthetic shards: epochs, learning, resume, DDP, bad shards,
checkpoints."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import resnet18

from musicid.errors import InputError
from musicid.features import LogMel
from musicid.network import build_model, use_bf16
from musicid.pipeline.build import BuildConfig, build_shards
from musicid.run import CARD_FIELDS, Calibration, Checkpoint
from musicid.shardset import epoch_order
from musicid.train import trainer as trainer_mod
from musicid.train.augment import SpecAugment
from musicid.train.cli import app
from musicid.train.trainer import TrainConfig, Trainer
from tests.conftest import invoke

FAST = {"batch_size": 8, "workers": 0, "shuffle_buffer": 64}


def run(shards, out, resume=False, overwrite=False, **kw) -> list[dict]:
    t = Trainer(TrainConfig(shards=str(shards), out=str(out), **{**FAST, **kw}))
    try:
        if resume:
            t.resume()
        return t.fit(overwrite=overwrite)
    finally:
        t.close()


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_one_epoch_writes_run_folder_and_checkpoint(tiny_shards, tmp_path):
    out = tmp_path / "run"
    run(tiny_shards, out, epochs=1)
    assert {p.name for p in out.iterdir()} >= {"best.pt", "last.pt", "metrics.jsonl", "config.json"}
    (row,) = metrics(out)
    assert (
        row["epoch"] == 1
        and row["steps"] > 0
        and 0 <= row["val_mAP"] <= 1
        and row["bad_shards"] == []
    )
    state = torch.load(out / "best.pt", map_location="cpu", weights_only=True)  # no pickle needed
    assert {"format_version", "model", *CARD_FIELDS} <= set(state) and "thresholds" not in state
    assert state["default_predictor"] == "events"
    assert state["features"]["n_mels"] == 128 and len(state["normalization"]["mean"]) == 128
    assert [i["name"] for i in state["instruments"]][:3] == ["Piano", "Harpsichord", "Violin"]
    # the calibration beside it, fitted for exactly this checkpoint
    cal = Calibration.load(out / "best.pt")
    assert (
        cal is not None
        and len(cal.thresholds) == 11
        and set(cal.biases) == {"prior", "valmean", "noise"}
    )
    model = build_model()
    model.load_state_dict(Checkpoint.load(out).model)
    assert not list(out.glob(".*"))
    with pytest.raises(InputError, match="holds an earlier run"):  # never replaced unasked
        run(tiny_shards, out, epochs=1)
    (out / "notes.txt").write_text("mine")
    run(tiny_shards, out, epochs=1, overwrite=True)  # starts over: its own files only
    assert [r["epoch"] for r in metrics(out)] == [1] and (out / "notes.txt").read_text() == "mine"


def test_loss_decreases_on_learnable_data(tiny_shards, tmp_path):
    history = run(tiny_shards, tmp_path / "run", epochs=4, lr=2e-3)
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]


@pytest.mark.parametrize(
    ("loss", "extra"),
    [("iou", {}), ("mse", {}), ("bce", {"conditions": 0.5, "mixup": 0.4, "spec_augment": True})],
)
def test_other_losses_and_augmentations_train(tiny_shards, tmp_path, loss, extra):
    (row,) = run(tiny_shards, tmp_path / loss, epochs=1, loss=loss, freeze_backbone=True, **extra)
    assert row["train_loss"] > 0 and row["val_mAP"] is not None


def test_resume_continues_epochs_and_matches_uninterrupted(
    tiny_shards, synth_root, tmp_path, monkeypatch
):
    full = run(tiny_shards, tmp_path / "full", epochs=3)
    real = trainer_mod.Trainer.train_epoch

    def crash_at_third(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(self, epoch)

    monkeypatch.setattr(trainer_mod.Trainer, "train_epoch", crash_at_third)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_shards, tmp_path / "part", epochs=3)
    monkeypatch.setattr(trainer_mod.Trainer, "train_epoch", real)
    assert [r["epoch"] for r in metrics(tmp_path / "part")] == [1, 2]
    with pytest.raises(
        InputError, match=r"other settings than the run's \(train.lr: 0.001 -> 0.002"
    ):
        run(tiny_shards, tmp_path / "part", epochs=3, resume=True, lr=2e-3)
    mel64 = tmp_path / "mel64"
    build_shards(
        synth_root,
        mel64,
        BuildConfig(shards_per_split=2, val_fraction=0.2, features=LogMel(n_mels=64)),
    )
    with pytest.raises(InputError, match=r"data.features.n_mels: 128 -> 64"):
        run(mel64, tmp_path / "part", epochs=3, resume=True)
    resumed = run(tiny_shards, tmp_path / "part", epochs=3, resume=True)
    assert [r["epoch"] for r in resumed] == [3]
    assert [r["epoch"] for r in metrics(tmp_path / "part")] == [1, 2, 3]
    assert resumed[-1]["steps"] == full[-1]["steps"]
    assert resumed[-1]["train_loss"] == pytest.approx(full[-1]["train_loss"], rel=1e-4)


def test_precision_auto_follows_the_hardware_and_bf16_trains(tiny_shards, tmp_path):
    cpu = torch.device("cpu")
    assert use_bf16(cpu, "bf16") and not use_bf16(cpu, "fp32")
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert use_bf16(cpu, "auto") == native
    with pytest.raises(InputError, match="precision must be one of"):
        use_bf16(cpu, "fp16")
    rows = {
        p: run(tiny_shards, tmp_path / p, epochs=1, precision=p, freeze_backbone=True)[0]
        for p in ("fp32", "bf16")
    }
    assert all(np.isfinite(r["train_loss"]) and r["val_mAP"] is not None for r in rows.values())
    # the forward pass did run in bf16
    assert rows["fp32"]["train_loss"] != rows["bf16"]["train_loss"]
    r = invoke(app, ["--shards", tiny_shards, "--out", tmp_path / "x", "--precision", "fp16"])
    assert r.exit_code == 1 and "fp16" in r.output


def test_a_split_without_val_recordings_trains_and_best_follows_last(synth_root, tmp_path):
    shards = tmp_path / "shards"
    build_shards(synth_root, shards, BuildConfig(shards_per_split=2, val_fraction=0.0))
    r = invoke(
        app,
        [
            "--shards",
            shards,
            "--out",
            tmp_path / "run",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--workers",
            "0",
            "--freeze-backbone",
        ],
    )
    assert r.exit_code == 0 and "no val split, best.pt = last.pt" in r.output, r.output
    assert [row["val_mAP"] for row in metrics(tmp_path / "run")] == [None, None]
    best, last = (Checkpoint.load(tmp_path / "run" / f"{n}.pt") for n in ("best", "last"))
    assert (
        best.training["epoch"] == last.training["epoch"] == 1
        and best.card.default_predictor == "top3"
    )


def test_truncated_shard_is_skipped_and_counted(tiny_shards, tmp_path):
    shards = tmp_path / "shards"
    shutil.copytree(tiny_shards, shards)
    bad = sorted(shards.glob("train-*.tar"))[0]
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 3])
    (row,) = run(shards, tmp_path / "run", epochs=1)
    assert row["bad_shards"] == [str(bad)] and row["steps"] > 0


def test_every_shard_unreadable_is_one_line(tiny_shards, tmp_path):
    shards = tmp_path / "shards"
    shutil.copytree(tiny_shards, shards)
    for bad in shards.glob("train-*.tar"):
        bad.write_bytes(b"\0" * 100)
    r = invoke(
        app, ["--shards", shards, "--out", tmp_path / "run", "--workers", "0", "--batch-size", "8"]
    )
    assert r.exit_code == 1 and "gave no full batch" in r.output
    assert r.output.strip().splitlines()[-1].startswith("error:")


def test_shards_from_a_url_template_on_the_command_line(tiny_shards, tmp_path):
    """Remote shards: the user's --shard-url template (here `pipe:cat ...`), never names in a
    manifest."""
    manifest = tmp_path / "elsewhere" / "manifest.json"
    manifest.parent.mkdir()
    shutil.copy(tiny_shards / "manifest.json", manifest)
    (row,) = run(
        manifest,
        tmp_path / "run",
        epochs=1,
        freeze_backbone=True,
        shard_url=f"pipe:cat {tiny_shards}/{{name}}",
    )
    assert row["steps"] > 0 and row["bad_shards"] == [] and row["val_mAP"] is not None


def test_epoch_steps_makes_short_equal_runs_and_refuses_more_than_a_pass(tiny_shards, tmp_path):
    history = run(tiny_shards, tmp_path / "short", epochs=2, epoch_steps=2)
    # the schedule spans the short run
    assert [r["steps"] for r in history] == [2, 4] and history[-1]["lr"] == 0
    r = invoke(
        app,
        [
            "--shards",
            tiny_shards,
            "--out",
            tmp_path / "r",
            "--epoch-steps",
            "100000",
            "--workers",
            "0",
        ],
    )
    assert (
        r.exit_code == 1
        and "--epoch-steps 100000 is more than one pass over the train split" in r.output
    )
    assert "Traceback" not in r.output and not (tmp_path / "r").exists()


def test_too_few_shards_or_samples_are_refused(tiny_shards, tmp_path):
    with pytest.raises(InputError, match=r"2 shards, fewer than world_size 1 x workers 4 = 4"):
        Trainer(TrainConfig(shards=str(tiny_shards), out=str(tmp_path / "r"), workers=4))
    with pytest.raises(
        InputError, match=r"fewer than world_size 1 x batch size 4096; lower --batch-size"
    ):
        Trainer(
            TrainConfig(
                shards=str(tiny_shards), out=str(tmp_path / "r"), batch_size=4096, workers=0
            )
        )


def test_local_pretrained_state_dict_is_folded_into_one_channel(tmp_path):
    ref = resnet18(weights=None)
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    model = build_model(str(tmp_path / "r18.pth"), freeze_backbone=True)
    assert torch.allclose(model.backbone.conv1.weight, ref.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(model.backbone.layer4[1].conv2.weight, ref.layer4[1].conv2.weight)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    with pytest.raises(InputError, match="nope.pth"):
        build_model(str(tmp_path / "nope.pth"))


def test_pretrained_files_that_are_not_weights_are_named(tiny_run, tmp_path):
    (tmp_path / "notes.txt").write_text("not weights")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    for name, message in (
        ("notes.txt", "not a PyTorch weights file"),
        ("tensor.pt", "not a state dict"),
    ):
        with pytest.raises(InputError, match=message):
            build_model(str(tmp_path / name))
    ours = build_model(str(tiny_run / "best.pt"))  # a musicid checkpoint: its backbone
    assert torch.equal(
        ours.backbone.conv1.weight, Checkpoint.load(tiny_run).model["backbone.conv1.weight"]
    )


def test_imagenet_without_cache_or_network_fails_clearly(tmp_path, monkeypatch):
    from torchvision.models import ResNet18_Weights

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(type(ResNet18_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(InputError, match=r"resnet18-f37072fd\.pth.*hub/checkpoints"):
        build_model("imagenet")


def test_ddp_two_cpu_processes_equal_steps_disjoint_shards(tiny_shards, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "musicid.train.cli",
        "--shards",
        str(tiny_shards),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--device",
        "cpu",
    ]
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = metrics(out)
    assert [r["epoch"] for r in rows] == [1, 2]
    for r in rows:
        a, b = r["shards_per_rank"]
        assert (
            len(r["steps_per_rank"]) == 2 and r["steps_per_rank"][0] == r["steps_per_rank"][1] > 0
        )
        assert a and b and not set(a) & set(b)
        assert sorted(a + b) == ["train-000000.tar", "train-000001.tar"]
    assert (out / "best.pt").exists()


def test_shard_order_is_new_each_epoch_and_deterministic():
    urls = [f"train-{i:06d}.tar" for i in range(16)]
    assert epoch_order(urls, 0, 3) == epoch_order(urls, 0, 3)
    assert (
        epoch_order(urls, 0, 3) != epoch_order(urls, 0, 4)
        and sorted(epoch_order(urls, 0, 4)) == urls
    )


def test_spec_augment_masks_bands_and_spans_within_limits():
    augment = SpecAugment(freq_masks=1, freq_width=5, time_masks=1, time_width=4)
    spec = np.ones((1, 32, 40), dtype=np.float32)
    masked = 0
    for seed in range(20):
        out = augment(spec, random.Random(seed))
        zero_rows = (out[0] == 0).all(axis=1).sum()
        zero_cols = (out[0] == 0).all(axis=0).sum()
        assert zero_rows <= 5 and zero_cols <= 4
        assert (
            (out == 0) <= ((out[0] == 0).all(axis=1)[:, None] | (out[0] == 0).all(axis=0)[None])
        ).all()
        masked += bool(zero_rows and zero_cols)
    # masks are usually drawn; the input is left untouched
    assert masked >= 10 and spec.min() == 1.0


def test_divergence_tpu_and_a_run_stopped_before_its_first_checkpoint(tiny_shards, tmp_path):
    base = [
        "--shards",
        tiny_shards,
        "--epochs",
        "1",
        "--epoch-steps",
        "2",
        "--batch-size",
        "8",
        "--workers",
        "0",
    ]
    r = invoke(app, [*base, "--out", tmp_path / "d", "--lr", "1e30"])
    assert r.exit_code == 1 and "training diverged" in r.output and "lower --lr" in r.output
    r = invoke(app, [*base, "--out", tmp_path / "t", "--device", "tpu"])
    assert r.exit_code == 1 and "--device must be one of auto, cpu, cuda" in r.output
    r = invoke(app, [*base, "--out", tmp_path / "t", "--lr", "inf"])
    assert r.exit_code == 1 and "--lr must be a finite number" in r.output
    stopped = tmp_path / "stopped"  # what SIGTERM in the first epoch leaves: the config alone
    stopped.mkdir()
    (stopped / "config.json").write_text("{}")
    r = invoke(app, [*base, "--out", stopped])
    assert r.exit_code == 0, r.output
    assert (stopped / "best.pt").exists() and json.loads((stopped / "config.json").read_text())[
        "epochs"
    ] == 1


def test_a_checkpoint_is_the_same_bytes_whichever_process_saves_it(tiny_run, tmp_path):
    """Saved through a file object: no temporary name or process id inside the archive."""
    code = (
        "import sys; from musicid.run import Checkpoint; "
        "Checkpoint.load(sys.argv[1]).save(sys.argv[2])"
    )
    for name in ("a.pt", "b.pt"):
        subprocess.run(
            [sys.executable, "-c", code, str(tiny_run / "best.pt"), str(tmp_path / name)],
            check=True,
        )
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
