"""Reading typed records (configs, manifests, checkpoints) from plain dicts, with errors that name
the field, and naming the fields where two records differ."""

from __future__ import annotations

from dataclasses import fields
from typing import TypeVar

from .errors import InputError

T = TypeVar("T")


def require(d: object, keys: tuple[str, ...], what: str) -> dict:
    """`d` as a dict holding `keys`, or an InputError naming what is missing."""
    if not isinstance(d, dict):
        raise InputError(f"{what}: expected a JSON object, found {type(d).__name__}")
    missing = [k for k in keys if k not in d]
    if missing:
        raise InputError(f"{what}: missing {', '.join(repr(k) for k in missing)}")
    return d


def from_fields(cls: type[T], d: object, what: str) -> T:
    """A dataclass from the dict's entries for its fields (extra entries such as derived values are
    ignored)."""
    names = tuple(f.name for f in fields(cls))
    d = require(d, names, what)
    try:
        return cls(**{k: d[k] for k in names})
    except TypeError as exc:
        raise InputError(f"{what}: {exc}") from exc


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
    return [
        f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
        for k in sorted(a.keys() | b.keys())
        if a.get(k) != b.get(k)
    ]
