"""The shard set's manifest: atomic JSON writing, reading, and comparing build arguments."""

from __future__ import annotations

import json
import os
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON under a temporary name, then rename: readers never see a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False))
    os.replace(tmp, path)


def read_manifest(path: Path) -> dict:
    """Load a manifest from a shard folder or a manifest path."""
    path = path / MANIFEST if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest (is this a shard folder made by build-shards?)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: manifest is not valid JSON ({exc})") from exc


def flatten(d: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}: so that differences can be named field by field."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differing_fields(old: dict, new: dict) -> list[str]:
    """'field: old -> new' for every field where two argument dicts differ."""
    a, b = flatten(old), flatten(new)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
