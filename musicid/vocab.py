"""The instrument vocabulary, owned here for every part: the 11 classes in musicid's output order,
the General MIDI programs that play them, and the programs that count as "other" (none of the 11).

Program numbers are General MIDI's, 0-based, as MIDI files and synthesizers number them. MusicNet's
label files give `program + 1` in their `instrument` column: that 1-based number is called a
MusicNet id here, and it is what the manifest's and checkpoint's vocabulary records under "program",
as MusicNet does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Instrument:
    name: str
    program: int  # General MIDI, 0-based

    @property
    def musicnet_id(self) -> int:
        """The 1-based number MusicNet's label files use for this instrument."""
        return self.program + 1


INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("Piano", 0),
    Instrument("Harpsichord", 6),
    Instrument("Violin", 40),
    Instrument("Viola", 41),
    Instrument("Cello", 42),
    Instrument("Contrabass", 43),
    Instrument("Horn", 60),
    Instrument("Oboe", 68),
    Instrument("Bassoon", 70),
    Instrument("Clarinet", 71),
    Instrument("Flute", 73),
)
NAMES: tuple[str, ...] = tuple(i.name for i in INSTRUMENTS)
N_INSTRUMENTS = len(INSTRUMENTS)
N_PITCHES = 128
PROGRAM = {i.name: i.program for i in INSTRUMENTS}
MUSICNET_ID = {i.name: i.musicnet_id for i in INSTRUMENTS}
NAME_OF_ID = {i.musicnet_id: i.name for i in INSTRUMENTS}

# General MIDI programs played as one of the 11, as MusicNet's own labels do: the three acoustic
# pianos are Piano. Neighbours (electric pianos, clavinet, tremolo/pizzicato strings, string
# ensembles, cor anglais, piccolo) stay outside on purpose: their timbres differ enough that calling
# them one of the 11 would teach the wrong sound.
CLASS_OF_PROGRAM = {**{i.program: i.name for i in INSTRUMENTS}, 1: "Piano", 2: "Piano"}

# Instruments outside the 11 that data generation plays as unlabelled "others", by General MIDI
# program: brass, reeds, plucked and struck strings, organs, mallets, voices. SoundFonts play each
# of these programs; the instrument library's recorded others name theirs.
OTHER_PROGRAMS: dict[int, str] = {
    4: "electric piano",
    11: "vibraphone",
    12: "marimba",
    13: "xylophone",
    16: "organ",
    19: "church organ",
    21: "accordion",
    24: "nylon guitar",
    25: "steel guitar",
    26: "electric guitar",
    32: "bass",
    46: "harp",
    52: "choir",
    53: "voice",
    56: "trumpet",
    57: "trombone",
    58: "tuba",
    64: "soprano saxophone",
    65: "alto saxophone",
    66: "tenor saxophone",
    67: "baritone saxophone",
    105: "banjo",
}
# trumpet: the program of a generated part that an instrument outside the 11 plays
OTHER_PART_PROGRAM = 56
assert OTHER_PART_PROGRAM in OTHER_PROGRAMS and not set(OTHER_PROGRAMS) & set(CLASS_OF_PROGRAM)

# MusicNet id -> output index, -1 for ids outside the vocabulary.
_ID_INDEX = np.full(129, -1, dtype=np.int64)
_ID_INDEX[[i.musicnet_id for i in INSTRUMENTS]] = np.arange(N_INSTRUMENTS)


def musicnet_id_to_index(ids: np.ndarray) -> np.ndarray:
    """Map MusicNet ids (1-based programs, as label files hold them) to output indices; others map
    to -1."""
    ids = np.asarray(ids)
    out = np.full(ids.shape, -1, dtype=np.int64)
    ok = (ids >= 0) & (ids <= 128) & (ids == np.round(ids))
    out[ok] = _ID_INDEX[ids[ok].astype(np.int64)]
    return out


def vocabulary() -> list[dict]:
    """The vocabulary as the manifest and checkpoints record it ("program": the MusicNet id)."""
    return [
        {"program": i.musicnet_id, "name": i.name, "order": k} for k, i in enumerate(INSTRUMENTS)
    ]
