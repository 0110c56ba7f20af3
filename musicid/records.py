"""Reading typed records (configs, manifests, checkpoints) from plain dicts, with errors that name the field."""

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
    """A dataclass from the dict's entries for its fields (extra entries such as derived values are ignored)."""
    names = tuple(f.name for f in fields(cls))
    d = require(d, names, what)
    try:
        return cls(**{k: d[k] for k in names})
    except TypeError as exc:
        raise InputError(f"{what}: {exc}") from exc
