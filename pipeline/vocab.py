"""The fixed instrument vocabulary: MusicNet's 1-based General MIDI program ids in musicid's output order."""

from __future__ import annotations

import numpy as np

INSTRUMENTS: tuple[tuple[int, str], ...] = (
    (1, "Piano"),
    (7, "Harpsichord"),
    (41, "Violin"),
    (42, "Viola"),
    (43, "Cello"),
    (44, "Contrabass"),
    (61, "Horn"),
    (69, "Oboe"),
    (71, "Bassoon"),
    (72, "Clarinet"),
    (74, "Flute"),
)
PROGRAMS = np.array([p for p, _ in INSTRUMENTS], dtype=np.int64)
NAMES: tuple[str, ...] = tuple(n for _, n in INSTRUMENTS)
N_INSTRUMENTS = len(INSTRUMENTS)
N_PITCHES = 128

# Lookup table program -> output index, -1 for programs outside the vocabulary.
_PROGRAM_INDEX = np.full(129, -1, dtype=np.int64)
_PROGRAM_INDEX[PROGRAMS] = np.arange(N_INSTRUMENTS)


def program_to_index(programs: np.ndarray) -> np.ndarray:
    """Map 1-based GM programs to output indices; anything outside the 11 maps to -1."""
    programs = np.asarray(programs)
    out = np.full(programs.shape, -1, dtype=np.int64)
    ok = (programs >= 0) & (programs <= 128) & (programs == np.round(programs))
    out[ok] = _PROGRAM_INDEX[programs[ok].astype(np.int64)]
    return out


def vocabulary() -> list[dict]:
    """The vocabulary as the manifest and checkpoints record it."""
    return [{"program": p, "name": n, "order": i} for i, (p, n) in enumerate(INSTRUMENTS)]
