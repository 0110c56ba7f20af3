"""The musicid-pipeline commands as a user runs them."""

from __future__ import annotations

import shutil

import pandas as pd
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import write_recording

runner = CliRunner()


def test_synth_build_inspect_verify(tmp_path):
    root, out = tmp_path / "data", tmp_path / "shards"
    r = runner.invoke(app, ["synth", str(root), "--recordings", "6", "--seconds", "2", "--seed", "4"])
    assert r.exit_code == 0 and "5 train + 1 test" in r.output
    r = runner.invoke(app, ["build-shards", str(root), str(out), "--shards-per-split", "2", "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert "realtime" not in r.output and "x real time" in r.output and "skipped: none" in r.output
    r = runner.invoke(app, ["build-shards", str(root), str(out), "--shards-per-split", "2"])
    assert r.exit_code == 0 and "already complete" in r.output
    r = runner.invoke(app, ["inspect", str(out), "--verify"])
    assert r.exit_code == 0 and "0 bad" in r.output and "train" in r.output
    shard = sorted(out.glob("train-*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[2000] ^= 0xFF
    shard.write_bytes(bytes(data))
    r = runner.invoke(app, ["inspect", str(out), "--verify"])
    assert r.exit_code == 1 and shard.name in r.output and "1 bad" in r.output
    shutil.rmtree(out)
    r = runner.invoke(app, ["inspect", str(out)])
    assert r.exit_code == 1 and "no manifest" in r.output


def test_index_writes_spans_table_csv_and_parquet(tmp_path):
    root = write_recording(tmp_path / "root", "9", [(0, 100, 1, 60), (50, 150, 41, 72), (150, 200, 41, 74),
                                                    (0, 10, 3, 60)])
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"spans.{suffix}"
        r = runner.invoke(app, ["index", str(root), str(out)])
        assert r.exit_code == 0, r.output
        assert "rows_unknown_instrument=1" in r.output
        table = pd.read_csv(out) if suffix == "csv" else pd.read_parquet(out)
        assert table.start.tolist() == [0, 50, 100, 150] and table.end.tolist() == [50, 100, 150, 200]
        assert table.Piano.tolist() == [1, 1, 0, 0] and table.Violin.tolist() == [0, 1, 1, 1]
        assert [str(n) for n in table.notes] == ["60", "60 72", "72", "74"]
    r = runner.invoke(app, ["index", str(root), str(tmp_path / "spans.txt")])
    assert r.exit_code != 0 and "csv or .parquet" in r.output
