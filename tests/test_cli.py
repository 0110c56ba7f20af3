"""The musicid-pipeline commands as a user runs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from musicid.pipeline.cli import app
from musicid.shardset import read_manifest
from tests.conftest import invoke, write_recording


def test_synth_build_inspect_verify(tmp_path):
    root, out = tmp_path / "data", tmp_path / "shards"
    r = invoke(app, ["synth", root, "--recordings", "6", "--seconds", "2", "--seed", "4"])
    assert r.exit_code == 0 and "5 train + 1 test" in r.output
    r = invoke(app, ["build-shards", root, out, "--shards-per-split", "2", "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert "x real time" in r.output and "skipped: none" in r.output
    r = invoke(app, ["build-shards", root, out, "--shards-per-split", "2"])
    assert r.exit_code == 0 and "already complete" in r.output
    before = read_manifest(out).shards("train")
    r = invoke(
        app, ["synth", root, "--recordings", "6", "--seconds", "2", "--seed", "5", "--overwrite"]
    )
    r = invoke(app, ["build-shards", root, out, "--shards-per-split", "2", "--overwrite"])
    # --overwrite starts over
    assert r.exit_code == 0 and "already complete" not in r.output, r.output
    # the new recordings' shards, not the old ones
    assert read_manifest(out).shards("train") != before
    r = invoke(app, ["inspect", out, "--verify"])
    assert r.exit_code == 0 and "0 bad" in r.output and "train" in r.output
    shard = sorted(out.glob("train-*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[2000] ^= 0xFF
    shard.write_bytes(bytes(data))
    r = invoke(app, ["inspect", out, "--verify"])
    assert r.exit_code == 1 and shard.name in r.output and "1 bad" in r.output
    r = invoke(app, ["synth", tmp_path / "more", "--recordings", "4", "--seconds", "2"])
    r = invoke(
        app, ["build-shards", root, tmp_path / "more", tmp_path / "two", "--shards-per-split", "1"]
    )
    assert r.exit_code == 0 and "source 1:" in r.output and "4 recordings" in r.output, r.output
    shutil.rmtree(out)
    r = invoke(app, ["inspect", out])
    assert r.exit_code == 1 and "no manifest" in r.output


def test_index_writes_spans_table_csv_and_parquet(tmp_path):
    root = write_recording(
        tmp_path / "root",
        "9",
        [(0, 100, 1, 60), (50, 150, 41, 72), (150, 200, 41, 74), (0, 10, 3, 60)],
    )
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"spans.{suffix}"
        r = invoke(app, ["index", root, out])
        assert r.exit_code == 0, r.output
        assert "rows_unknown_instrument=1" in r.output
        table = pd.read_csv(out) if suffix == "csv" else pd.read_parquet(out)
        assert table.start.tolist() == [0, 50, 100, 150] and table.end.tolist() == [
            50,
            100,
            150,
            200,
        ]
        assert table.Piano.tolist() == [1, 1, 0, 0] and table.Violin.tolist() == [0, 1, 1, 1]
        assert [str(n) for n in table.notes] == ["60", "60 72", "72", "74"]
    r = invoke(app, ["index", root, tmp_path / "spans.csv"])
    assert r.exit_code == 1 and "already exists" in r.output  # never replaced unasked
    r = invoke(app, ["index", root, tmp_path / "spans.txt"])
    assert r.exit_code == 1 and "csv or .parquet" in r.output


def test_debug_shows_the_traceback(tmp_path):
    r = invoke(app, ["inspect", tmp_path / "nothing"])
    assert r.exit_code == 1 and r.output.count("\n") == 1
    result = subprocess.run(
        [sys.executable, "-m", "musicid.pipeline", "inspect", str(tmp_path), "--debug"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "Traceback" in result.stderr and "InputError" in result.stderr


def test_no_generic_top_level_packages_are_installed(tmp_path):
    """Installed, musicid lives under one namespace: a user's own `train.py` or `pipeline` package
    is safe."""
    code = (
        "import importlib.util as u, musicid; print(u.find_spec('pipeline'), u.find_spec('train'), "
        "u.find_spec('infer'), callable(musicid.predict_file))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.stdout.split() == ["None", "None", "None", "True"], result.stderr


def test_prediction_imports_no_training_code(tmp_path):
    """Using a model loads no trainer, DDP plumbing, losses, augmentation or training stream."""
    code = (
        "import sys, musicid.infer.predict, musicid.infer.predict_cli, musicid.infer.eval_cli; "
        "print(sorted(m for m in sys.modules if m.startswith('musicid.train')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


def test_the_offline_pipeline_writes_shard_sets_without_pytorch(tmp_path):
    """The shard set's module serves the writer too; its reading half imports torch and webdataset
    only when it reads."""
    code = (
        "import sys, musicid.pipeline.cli, musicid.pipeline.build, musicid.shardset; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'webdataset', "
        "'torchvision')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


PACKAGES = ("musicid", "musicid.pipeline", "musicid.train", "musicid.infer", "musicid.recipes")


def module_files() -> dict[str, Path]:
    import importlib.util

    files = {}
    for package in PACKAGES:
        for path in Path(importlib.util.find_spec(package).origin).parent.glob("*.py"):
            files[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return files


def import_graph() -> dict[str, set[str]]:
    """Every import between musicid's modules (top-level or inside a function), as module ->
    modules."""
    import ast

    graph = {}
    for name, path in module_files().items():
        package = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                target = ".".join(p for p in (base, node.module or "") if p)
                edges |= {target} | {f"{target}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
        graph[name] = {e for e in edges if e.startswith("musicid")}
    return {k: {e for e in v if e in graph and e != k} for k, v in graph.items()}


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != "open", " -> ".join([*stack, node, nxt])
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


FOUNDATION = {
    "musicid.vocab",
    "musicid.features",
    "musicid.windows",
    "musicid.events",
    "musicid.splits",
    "musicid.audio",
    "musicid.errors",
    "musicid.files",
    "musicid.records",
    "musicid.cli",
}
ARTIFACTS = {"musicid.shardset", "musicid.run"}
# the model, and what val and eval share
SHARED = {"musicid.network", "musicid.validation", "musicid.metrics"}


def test_the_parts_meet_only_in_the_foundation():
    """What every part shares lives in musicid/ (vocabulary, features, windows, splits, audio
    decoding, errors, files, records, CLI conventions), beside the two artifact records (shard set,
    run) and the model; pipeline writes shard sets, train writes runs, infer reads both: none
    imports another's code, and the foundation imports none of them. Only the recipes (demo, shipped
    model), which run everything, may. Each record is defined once."""
    import ast

    floor = FOUNDATION | ARTIFACTS | SHARED
    allowed = {
        "musicid.pipeline": {"musicid.pipeline", *FOUNDATION, "musicid.shardset"},
        "musicid.train": {"musicid.train", *floor},
        "musicid.infer": {"musicid.infer", *floor},
        "musicid": floor,
    }
    for module, targets in import_graph().items():
        part = (
            ".".join(module.split(".")[:2])
            if module.split(".")[1:2] in (["pipeline"], ["train"], ["infer"], ["recipes"])
            else "musicid"
        )
        for target in targets if part in allowed else ():
            assert any(target == a or target.startswith(f"{a}.") for a in allowed[part]), (
                f"{module} -> {target}"
            )
    defined = {}
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                defined.setdefault(node.name, []).append(name)
    for record, module in (
        ("Manifest", "musicid.shardset"),
        ("ShardInfo", "musicid.shardset"),
        ("Checkpoint", "musicid.run"),
        ("ModelCard", "musicid.run"),
        ("Calibration", "musicid.run"),
        ("InstrumentNet", "musicid.network"),
    ):
        assert defined[record] == [module], (record, defined[record])
