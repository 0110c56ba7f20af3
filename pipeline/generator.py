"""The built-in score generator: MusicNet's ensembles, each instrument's range and manner, and
seeded scores with rests, silent gaps and dynamics. Played by the additive timbres (synth.py) or by
sampled instruments (performance.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from musicid.errors import InputError, MusicidError


@dataclass(frozen=True)
class Timbre:
    low: int  # MIDI pitch range
    high: int
    slope: float  # harmonic k amplitude ~ k**-slope
    odd_only: float = 0.0  # 1.0 suppresses even harmonics (clarinet)
    formant: float = 0.0  # Hz centre of a spectral resonance, 0 for none
    formant_gain: float = 0.0
    attack: float = 0.05  # seconds
    decay: float = 0.0  # seconds, exponential decay time; 0 = sustained
    vibrato_hz: float = 0.0
    vibrato_depth: float = 0.0  # fraction of f0
    noise: float = 0.0  # breath / bow noise level relative to the tone
    inharmonicity: float = 0.0  # B in f_k = k f0 sqrt(1 + B k^2), explicit partials only
    n_harmonics: int = 30


TIMBRES: dict[str, Timbre] = {
    "Piano": Timbre(21, 108, 1.6, attack=0.004, decay=0.9, inharmonicity=4e-4, n_harmonics=10),
    "Harpsichord": Timbre(29, 89, 0.7, formant=2500, formant_gain=2.0, attack=0.002, decay=0.35),
    "Violin": Timbre(
        55,
        100,
        1.0,
        formant=3000,
        formant_gain=2.5,
        attack=0.08,
        vibrato_hz=5.8,
        vibrato_depth=0.006,
        noise=0.03,
    ),
    "Viola": Timbre(
        48,
        88,
        1.1,
        formant=1600,
        formant_gain=2.5,
        attack=0.09,
        vibrato_hz=5.2,
        vibrato_depth=0.005,
        noise=0.03,
    ),
    "Cello": Timbre(
        36,
        76,
        1.2,
        formant=700,
        formant_gain=2.5,
        attack=0.1,
        vibrato_hz=4.8,
        vibrato_depth=0.005,
        noise=0.02,
    ),
    "Contrabass": Timbre(
        28,
        67,
        1.5,
        formant=300,
        formant_gain=2.0,
        attack=0.12,
        vibrato_hz=4.2,
        vibrato_depth=0.003,
        noise=0.02,
    ),
    "Horn": Timbre(34, 77, 2.4, formant=450, formant_gain=1.5, attack=0.09),
    "Oboe": Timbre(
        58,
        91,
        0.6,
        formant=1300,
        formant_gain=4.0,
        attack=0.03,
        vibrato_hz=5.0,
        vibrato_depth=0.002,
    ),
    "Bassoon": Timbre(34, 75, 0.8, formant=500, formant_gain=3.5, attack=0.04),
    "Clarinet": Timbre(50, 94, 1.3, odd_only=0.9, attack=0.03),
    "Flute": Timbre(60, 96, 3.0, attack=0.05, vibrato_hz=5.0, vibrato_depth=0.004, noise=0.12),
}

# MusicNet's ensembles with their recording counts: the generator's menu and its weights.
ENSEMBLES: dict[str, tuple[int, tuple[str, ...]]] = {
    "Solo Piano": (156, ("Piano",)),
    "String Quartet": (57, ("Violin", "Violin", "Viola", "Cello")),
    "Accompanied Violin": (22, ("Violin", "Piano")),
    "Solo Cello": (12, ("Cello",)),
    "Wind Quintet": (9, ("Flute", "Oboe", "Clarinet", "Bassoon", "Horn")),
    "Solo Violin": (9, ("Violin",)),
    "Piano Quartet": (8, ("Piano", "Violin", "Viola", "Cello")),
    "Piano Trio": (7, ("Piano", "Violin", "Cello")),
    "Accompanied Cello": (7, ("Cello", "Piano")),
    "Pairs Clarinet-Horn-Bassoon": (6, ("Clarinet", "Horn", "Bassoon")),
    "String Sextet": (5, ("Violin", "Violin", "Viola", "Cello", "Cello")),
    "Piano Quintet": (4, ("Piano", "Violin", "Viola", "Cello")),
    "Accompanied Clarinet": (3, ("Clarinet", "Piano")),
    "Horn Piano Trio": (3, ("Horn", "Violin", "Piano")),
    "Violin and Harpsichord": (3, ("Violin", "Harpsichord")),
    "Wind Octet": (2, ("Oboe", "Clarinet", "Horn", "Bassoon")),
    "Clarinet Quintet": (2, ("Clarinet", "Violin", "Viola", "Cello")),
    "Solo Flute": (2, ("Flute",)),
    "Clarinet-Cello-Piano Trio": (2, ("Clarinet", "Cello", "Piano")),
    "Wind and Strings Octet": (
        1,
        ("Clarinet", "Horn", "Bassoon", "Violin", "Viola", "Cello", "Contrabass"),
    ),
    "Viola Quintet": (1, ("Violin", "Viola", "Viola", "Cello")),
}
# Together these hold all 11 instruments: train and test each start with them.
COVERAGE = ("Wind and Strings Octet", "Violin and Harpsichord", "Wind Quintet", "Solo Piano")
NOTE_VALUES = (
    (0.25, "Sixteenth"),
    (0.5, "Eighth"),
    (1.0, "Quarter"),
    (1.5, "Dotted Quarter"),
    (2.0, "Half"),
    (3.0, "Dotted Half"),
    (4.0, "Whole"),
)
# Note-value weights over NOTE_VALUES: bowed and blown parts hold notes; struck and plucked parts,
# whose tone decays, move in shorter values, as keyboard writing re-strikes instead of holding.
HELD_P = (0.1, 0.25, 0.3, 0.1, 0.15, 0.05, 0.05)
STRUCK_P = (0.3, 0.4, 0.2, 0.05, 0.05, 0, 0)


def voice_notes(
    name: str, seconds: float, beat: float, rest_p: float, rng: np.random.Generator, chords: bool
) -> list[tuple[float, float, int, float, float, str]]:
    """(start_s, end_s, pitch, start_beat, end_beat, note_value) for one melodic line."""
    t = TIMBRES[name]
    centre = rng.integers(t.low + 6, t.high - 6)
    notes, b = [], 0.0
    while b * beat < seconds:
        length, value = NOTE_VALUES[rng.choice(len(NOTE_VALUES), p=STRUCK_P if t.decay else HELD_P)]
        if not notes or rng.uniform() >= rest_p:
            centre = int(np.clip(centre + rng.integers(-4, 5), t.low + 3, t.high - 3))
            pitches = {centre}
            if chords and rng.uniform() < 0.5:
                pitches.add(int(np.clip(centre + rng.choice([3, 4, 7, 12]), t.low, t.high)))
            legato = rng.uniform(0.75, 1.0)
            for p in sorted(pitches):
                notes.append(
                    (b * beat, min((b + length * legato) * beat, seconds), p, b, b + length, value)
                )
        b += length
    return notes


OTHER = "other"  # the voice of an instrument outside the 11: played, never labelled


@dataclass(frozen=True)
class Arrangement:
    """How a recording's parts are set against each other, beyond what the score says. The defaults
    are what MusicNet's chamber music mostly is: every written part heard within 6 dB of the
    loudest, over the whole excerpt. Real ensembles also have accompaniment far under the melody,
    entries and exits, and instruments outside the 11 beside or between the ones to name."""

    # each part's level is drawn within this many dB under the loudest possible
    spread_db: float = 6.0
    entries: float = 0.0  # share of parts that enter late, leave early, or both
    # share of recordings with one more part, unlabelled, by an instrument outside the 11
    others: float = 0.0
    # that part's level: drawn within +-others_db of the labelled parts' mean
    others_db: float = 0.0

    def __post_init__(self):
        if not (
            0 <= self.spread_db <= 60
            and 0 <= self.entries <= 1
            and 0 <= self.others <= 1
            and 0 <= self.others_db <= 30
        ):
            raise InputError(
                f"arrangement: need 0 <= spread_db <= 60, 0 <= entries <= 1, 0 <= others <= 1 and "
                f"0 <= others_db <= 30 (got {self})"
            )

    def part_gain(self, rng: np.random.Generator, n_voices: int) -> float:
        """A part's level (linear), shared by the voices of an ensemble."""
        return rng.uniform(10 ** (-self.spread_db / 20), 1.0) / np.sqrt(n_voices)

    def part_span(self, rng: np.random.Generator, seconds: float) -> tuple[float, float]:
        """The stretch of the excerpt a part plays: all of it, or for a share `entries` of parts an
        entry after 15-60 % of it, an exit before its end, or both."""
        if not self.entries or rng.uniform() >= self.entries:
            return 0.0, seconds
        kind = rng.integers(3)  # 0: enters late, 1: leaves early, 2: both
        start = rng.uniform(0.15, 0.6) * seconds if kind != 1 else 0.0
        end = rng.uniform(start / seconds + 0.25, 1.0) * seconds if kind != 0 else seconds
        return start, min(end, seconds)


def within(notes: list[tuple], span: tuple[float, float]) -> list[tuple]:
    """Notes (start, end, ...) that start inside `span`, cut at its end."""
    lo, hi = span
    return [(s, min(e, hi), *rest) for s, e, *rest in notes if lo <= s < hi]


@dataclass(frozen=True)
class ScoreNote:
    name: str  # instrument
    start: float  # seconds
    end: float
    pitch: int
    start_beat: float
    end_beat: float
    value: str
    loudness: float  # linear amplitude, about 0.05-1


DRAWS = 10  # a recording's music is drawn again when a draw holds no note at all


def score(
    ensemble: str,
    seconds: float,
    rng: np.random.Generator,
    arrangement: Arrangement = Arrangement(),
) -> list[ScoreNote]:
    """The generator's music for one recording: every voice's notes, with rests, silent gaps and
    dynamics, set against each other by `arrangement`. `Solo other`: a line of an instrument outside
    the 11 alone. A sparse line can fall wholly into the silent gaps or outside a late entry: such a
    draw is made again, so that no recording is silence."""
    for _ in range(DRAWS):
        notes = _draw(ensemble, seconds, rng, arrangement)
        if notes:
            return notes
    raise MusicidError(
        f"{ensemble}: {DRAWS} draws of {seconds:g} s held no note; give it more --seconds"
    )


def _draw(
    ensemble: str, seconds: float, rng: np.random.Generator, arrangement: Arrangement
) -> list[ScoreNote]:
    voices = ENSEMBLES[ensemble][1] if ensemble in ENSEMBLES else (ensemble.removeprefix("Solo "),)
    beat = 60.0 / rng.uniform(70, 140)
    rest_p = 0.1 + 0.06 * max(0, len(voices) - 3)
    gap_len = rng.uniform(0.5, 2.0, size=rng.integers(1, 3)) * min(1.0, seconds / 20)
    gaps = [
        (g, g + n) for g, n in zip(rng.uniform(0, seconds, size=len(gap_len)), gap_len, strict=True)
    ]
    dyn_rate, dyn_phase = rng.uniform(0.03, 0.15), rng.uniform(0, 6.3)
    notes = []
    for name in voices:
        gain = arrangement.part_gain(rng, len(voices))
        # an outsider plays some range
        shape = name if name != OTHER else str(rng.choice(list(TIMBRES)))
        line = voice_notes(shape, seconds, beat, rest_p, rng, name == "Piano")
        for start, end, pitch, b0, b1, value in within(line, arrangement.part_span(rng, seconds)):
            # silent gaps: drop notes starting inside, cut notes running into one
            for g0, g1 in gaps:
                if g0 <= start < g1:
                    end = start
                elif start < g0 < end:
                    end = g0
            if end - start < 0.05:
                continue
            loud = (
                gain
                * rng.uniform(0.4, 1.0)
                * (0.6 + 0.4 * np.sin(2 * np.pi * dyn_rate * start + dyn_phase))
            )
            notes.append(
                ScoreNote(name, start, end, pitch, round(b0, 4), round(b1, 4), value, float(loud))
            )
    return notes


def ensemble_weights(balanced: bool) -> np.ndarray:
    """Draw weights of ENSEMBLES. MusicNet-like: the square root of MusicNet's counts, so
    harpsichord and contrabass stay as rare as there. Balanced: each instrument shares one unit of
    weight among the ensembles that hold it, so every instrument is expected in at least 1/11 of the
    recordings."""
    if not balanced:
        return np.sqrt([count for count, _ in ENSEMBLES.values()])
    holders = Counter(name for _, members in ENSEMBLES.values() for name in set(members))
    return np.array(
        [sum(1 / holders[name] for name in set(members)) for _, members in ENSEMBLES.values()]
    )


def choose_ensembles(
    count: int,
    rng: np.random.Generator,
    only: tuple[str, ...] | None = None,
    balanced: bool = False,
) -> list[str]:
    """Weighted draws (see ensemble_weights) after the coverage set; or, when `only` is given, those
    ensembles in turn."""
    if only:
        return [only[i % len(only)] for i in range(count)]
    names = list(ENSEMBLES)
    weights = ensemble_weights(balanced)
    drawn = rng.choice(names, size=max(count - len(COVERAGE), 0), p=weights / weights.sum())
    return list(COVERAGE[:count]) + [str(e) for e in drawn]
