"""The instrument library record: the instruments of a library folder (recorded note samples as SFZ
instruments, and General MIDI SoundFonts) with their licences, as `library.json` lists them, and who
may play each class. `render` and `synth --engine sampled` play scores with it; `fetch.py` gathers
it.

A library is checked whole when it is read: every field of every entry, every file there, and every
sample an SFZ file plays (inside the library, readable, decodable, of a plausible length), so that a
damaged instrument is one error naming the sample, never a labelled note played as silence.

A part of a library can be held out: data played only by instruments that training never heard is
validation that resembles the world, where every player is new.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from musicid.errors import InputError
from musicid.files import read_json
from musicid.records import require
from musicid.vocab import NAMES, OTHER_PROGRAMS, PROGRAM

from .players import KINDS, Player, check_sfz

LIBRARY_FORMAT = 1
LIBRARY_FILE = "library.json"
# chance that a part whose class has recorded samples is played by them, not a SoundFont
REAL_SHARE = 0.5


@dataclass(frozen=True)
class Entry:
    """One instrument of the library: an SFZ file (path relative to the library) or a SoundFont
    (absolute)."""

    name: str
    kind: str  # "sfz" or "sf2"
    path: str
    instrument: str  # a MusicNet class; "" for others (SFZ only: a SoundFont plays every class)
    source: str
    licence: str
    attribution: str

    @classmethod
    def from_dict(cls, d: object, where: Path, index: int) -> Entry:
        """Validated field by field: every field a string, a known kind and class, a non-empty
        path."""
        what = f"{where}: instrument entry {index + 1}"
        d = require(d, tuple(f.name for f in fields(cls)), what)
        wrong = [f.name for f in fields(cls) if not isinstance(d[f.name], str)]
        if wrong:
            raise InputError(f"{what}: {wrong[0]} must be a string, not {d[wrong[0]]!r}")
        entry = cls(**{f.name: d[f.name] for f in fields(cls)})
        if (
            entry.kind not in KINDS
            or (entry.instrument and entry.instrument not in NAMES)
            or not entry.path
        ):
            raise InputError(
                f"{what} ({entry.name!r}): kind {entry.kind!r}, class {entry.instrument!r}, path "
                f"{entry.path!r}; expected {' or '.join(KINDS)}, one of {', '.join(NAMES)} or '', "
                "and a path"
            )
        return entry


@dataclass(frozen=True)
class Library:
    """An instrument library folder and its entries: who may play each class, and the others."""

    root: Path
    entries: tuple[Entry, ...] = ()

    def to_dict(self) -> dict:
        return {"format": LIBRARY_FORMAT, "instruments": [asdict(e) for e in self.entries]}

    def _player(self, e: Entry, program: int = 0) -> Player:
        path = e.path if e.kind == "sf2" else str(self.root / e.path)
        return Player(e.name if e.kind == "sfz" else f"{e.name}:{program}", e.kind, path, program)

    def players(self, instrument: str) -> tuple[list[Player], list[Player]]:
        """(recorded-sample players, SoundFont players) for a MusicNet class; `""` for the
        others."""
        sampled = [
            self._player(e) for e in self.entries if e.kind == "sfz" and e.instrument == instrument
        ]
        if instrument:
            fonts = [self._player(e, PROGRAM[instrument]) for e in self.entries if e.kind == "sf2"]
        else:
            fonts = [
                self._player(e, p) for e in self.entries if e.kind == "sf2" for p in OTHER_PROGRAMS
            ]
        return sampled, fonts

    def draw(self, instrument: str, rng: np.random.Generator) -> Player:
        """A seeded player for one part: recorded samples half the time where the class has them."""
        sampled, fonts = self.players(instrument)
        pool = sampled if sampled and (not fonts or rng.uniform() < REAL_SHARE) else fonts
        if not pool:
            raise InputError(
                f"{self.root}: the instrument library has nothing that plays "
                f"{instrument or 'others'}"
            )
        return pool[rng.integers(len(pool))]

    def licences(self) -> list[dict]:
        return [
            {k: getattr(e, k) for k in ("name", "instrument", "source", "licence", "attribution")}
            for e in self.entries
        ]


def load_library(root: Path, only: tuple[str, ...] = (), hold_out: tuple[str, ...] = ()) -> Library:
    """The library in `root` (its library.json validated entry by entry, every file present), with
    `only` its instruments of these names, or all but those `hold_out` names (see select)."""
    root = Path(root)
    where = root / LIBRARY_FILE
    data = read_json(where, "instrument library (run musicid-pipeline instruments fetch)")
    if data.get("format") != LIBRARY_FORMAT or not isinstance(data.get("instruments"), list):
        raise InputError(f"{where}: not an instrument library of format {LIBRARY_FORMAT}")
    entries = tuple(Entry.from_dict(d, where, i) for i, d in enumerate(data["instruments"]))
    lib = Library(root, entries)
    for e in entries:
        path = Path(e.path) if e.kind == "sf2" else root / e.path
        if e.kind == "sfz" and root.resolve() not in path.resolve().parents:
            raise InputError(f"{where}: {e.name}: {e.path} is outside the library folder")
        if not path.is_file():
            raise InputError(f"{where}: {e.name}: {path} is missing")
        if e.kind == "sfz":
            check_sfz(path, root)
    return select(lib, only, hold_out) if only or hold_out else lib


def open_library(
    root: Path | None, only: tuple[str, ...] = (), hold_out: tuple[str, ...] = ()
) -> Library | None:
    """load_library(root, only, hold_out), or None without a library folder, where choosing among
    its instruments is an error."""
    if root is not None:
        return load_library(root, only, hold_out)
    if only or hold_out:
        raise InputError("--players and --hold-out choose among the instruments of a --library")
    return None


def select(lib: Library, only: tuple[str, ...], hold_out: tuple[str, ...]) -> Library:
    """The library with only the instruments named in `only`, or without those in `hold_out` (one of
    the two); every name must be one of its instruments, and every one of the 11 classes must keep
    a player, so that no labelled part is left without one."""
    where = lib.root / LIBRARY_FILE
    if only and hold_out:
        raise InputError(
            "--players and --hold-out exclude each other: name the players to keep, or those to "
            "hold out"
        )
    names = [e.name for e in lib.entries]
    unknown = [n for n in (*only, *hold_out) if n not in names]
    if unknown:
        raise InputError(
            f"{where}: no instrument named {unknown[0]!r}; its instruments: {', '.join(names)}"
        )
    kept = Library(
        lib.root,
        tuple(e for e in lib.entries if (e.name in only if only else e.name not in hold_out)),
    )
    bare = [n for n in NAMES if not any(kept.players(n))]
    if bare:
        chosen = f"only {', '.join(only)}" if only else f"{', '.join(hold_out)} held out"
        raise InputError(f"{where}: with {chosen}, nothing plays {', '.join(bare)}")
    return kept
