"""The built-in synthetic MusicNet: learnable, not trivial, written in the exact Kaggle layout.

Eleven additive-synthesis timbres differ the way the real instruments do: harmonic profile and formants,
attack and decay (plucked/struck vs. bowed/blown), vibrato, piano inharmonicity, breath and bow noise.
Pitch ranges are the instruments' real ranges, which overlap, so pitch alone does not identify them.
Recordings are drawn from MusicNet's ensembles, with rests, silent gaps and varying loudness.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from musicid.errors import InputError

from .features import REFERENCE_RATE
from .layout import claim_dataset_folder, finish_dataset, write_musicnet_recording
from .vocab import INSTRUMENTS
from .workers import ordered_map

RATE = REFERENCE_RATE  # synth writes at MusicNet's rate
TABLE = 4096
RECORDINGS, SECONDS = 30, 20.0  # the default dataset: 30 recordings of 20 s
MAX_SECONDS = 3600.0  # one recording is held in memory while it is made
ENGINES = ("additive", "sampled")
SOURCE = "musicid synth"  # the metadata's `source`: how synth --overwrite knows a dataset is its own


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
    "Violin": Timbre(55, 100, 1.0, formant=3000, formant_gain=2.5, attack=0.08, vibrato_hz=5.8,
                     vibrato_depth=0.006, noise=0.03),
    "Viola": Timbre(48, 88, 1.1, formant=1600, formant_gain=2.5, attack=0.09, vibrato_hz=5.2,
                    vibrato_depth=0.005, noise=0.03),
    "Cello": Timbre(36, 76, 1.2, formant=700, formant_gain=2.5, attack=0.1, vibrato_hz=4.8,
                    vibrato_depth=0.005, noise=0.02),
    "Contrabass": Timbre(28, 67, 1.5, formant=300, formant_gain=2.0, attack=0.12, vibrato_hz=4.2,
                         vibrato_depth=0.003, noise=0.02),
    "Horn": Timbre(34, 77, 2.4, formant=450, formant_gain=1.5, attack=0.09),
    "Oboe": Timbre(58, 91, 0.6, formant=1300, formant_gain=4.0, attack=0.03, vibrato_hz=5.0,
                   vibrato_depth=0.002),
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
    "Wind and Strings Octet": (1, ("Clarinet", "Horn", "Bassoon", "Violin", "Viola", "Cello", "Contrabass")),
    "Viola Quintet": (1, ("Violin", "Viola", "Viola", "Cello")),
}
# Together these hold all 11 instruments: train and test each start with them.
COVERAGE = ("Wind and Strings Octet", "Violin and Harpsichord", "Wind Quintet", "Solo Piano")
NOTE_VALUES = ((0.25, "Sixteenth"), (0.5, "Eighth"), (1.0, "Quarter"), (1.5, "Dotted Quarter"),
               (2.0, "Half"), (3.0, "Dotted Half"), (4.0, "Whole"))
# Note-value weights over NOTE_VALUES: bowed and blown parts hold notes; struck and plucked parts, whose tone
# decays, move in shorter values, as keyboard writing re-strikes instead of holding.
HELD_P = (.1, .25, .3, .1, .15, .05, .05)
STRUCK_P = (.3, .4, .2, .05, .05, 0, 0)
PROGRAM = {name: prog for prog, name in INSTRUMENTS}


def _harmonic_amps(t: Timbre, f0: float, n: int) -> np.ndarray:
    k = np.arange(1, n + 1, dtype=np.float64)
    amps = k**-t.slope
    amps[1::2] *= 1.0 - t.odd_only
    if t.formant:
        amps *= 1.0 + t.formant_gain * np.exp(-0.5 * (np.log2(k * f0 / t.formant) / 0.5) ** 2)
    return amps / np.sqrt((amps**2).sum())


def _wavetable(t: Timbre, f0: float) -> np.ndarray:
    n = int(min(t.n_harmonics, (RATE / 2 - 200) // f0, TABLE // 2 - 1))
    spec = np.zeros(TABLE // 2 + 1, dtype=np.complex128)
    spec[1 : n + 1] = _harmonic_amps(t, f0, n) * TABLE / 2
    return np.fft.irfft(spec, TABLE).astype(np.float32)


def _envelope(t: Timbre, n: int, rng: np.random.Generator) -> np.ndarray:
    time = np.arange(n, dtype=np.float32) / RATE
    env = np.minimum(time / t.attack, 1.0)
    if t.decay:
        env *= np.exp(-time / (t.decay * rng.uniform(0.7, 1.4)))
    release = min(int(0.06 * RATE), n)
    env[n - release :] *= np.linspace(1.0, 0.0, release, dtype=np.float32)
    return env


def render_note(name: str, pitch: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """One note of `n` samples at unit loudness."""
    t = TIMBRES[name]
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    time = np.arange(n, dtype=np.float64) / RATE
    if t.inharmonicity:
        k = np.arange(1, min(t.n_harmonics, int((RATE / 2 - 200) // f0)) + 1)
        freqs = k * f0 * np.sqrt(1 + t.inharmonicity * k**2)
        keep = freqs < RATE / 2 - 200
        amps = _harmonic_amps(t, f0, len(k))[keep]
        # Higher partials of a struck string die faster: the tone darkens as it decays.
        damp = np.exp(-np.outer(k[keep] * f0 / 2000.0, time))
        tone = (amps[:, None] * damp * np.sin(2 * np.pi * np.outer(freqs[keep], time))).sum(0)
    else:
        inst = f0 * np.ones(n)
        if t.vibrato_hz:
            onset = np.minimum(time / 0.3, 1.0)
            inst *= 1 + t.vibrato_depth * onset * np.sin(2 * np.pi * t.vibrato_hz * time + rng.uniform(0, 6.3))
        phase = (np.cumsum(inst) / RATE + rng.uniform()) % 1.0
        tone = _wavetable(t, f0)[(phase * TABLE).astype(np.int64) % TABLE]
    if t.noise:
        noise = rng.standard_normal(n)
        noise = np.diff(noise, prepend=0.0) if name != "Flute" else noise * (0.5 + 0.5 * np.sin(2 * np.pi * f0 * time))
        tone = tone + t.noise * noise
    return (tone * _envelope(t, n, rng)).astype(np.float32)


def _voice_notes(name: str, seconds: float, beat: float, rest_p: float, rng: np.random.Generator,
                 chords: bool) -> list[tuple[float, float, int, float, float, str]]:
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
                notes.append((b * beat, min((b + length * legato) * beat, seconds), p, b, b + length, value))
        b += length
    return notes


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


def score(ensemble: str, seconds: float, rng: np.random.Generator) -> list[ScoreNote]:
    """The generator's music for one recording: every voice's notes, with rests, silent gaps and dynamics."""
    voices = ENSEMBLES[ensemble][1] if ensemble in ENSEMBLES else (ensemble.removeprefix("Solo "),)
    beat = 60.0 / rng.uniform(70, 140)
    rest_p = 0.1 + 0.06 * max(0, len(voices) - 3)
    gap_len = rng.uniform(0.5, 2.0, size=rng.integers(1, 3)) * min(1.0, seconds / 20)
    gaps = [(g, g + n) for g, n in zip(rng.uniform(0, seconds, size=len(gap_len)), gap_len, strict=True)]
    dyn_rate, dyn_phase = rng.uniform(0.03, 0.15), rng.uniform(0, 6.3)
    notes = []
    for name in voices:
        gain = rng.uniform(0.5, 1.0) / np.sqrt(len(voices))  # parts within 6 dB: each is written to be heard
        for start, end, pitch, b0, b1, value in _voice_notes(name, seconds, beat, rest_p, rng, name == "Piano"):
            for g0, g1 in gaps:  # silent gaps: drop notes starting inside, cut notes running into one
                if g0 <= start < g1:
                    end = start
                elif start < g0 < end:
                    end = g0
            if end - start < 0.05:
                continue
            loud = gain * rng.uniform(0.4, 1.0) * (0.6 + 0.4 * np.sin(2 * np.pi * dyn_rate * start + dyn_phase))
            notes.append(ScoreNote(name, start, end, pitch, round(b0, 4), round(b1, 4), value, float(loud)))
    return notes


def render_recording(ensemble: str, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple]]:
    """Mix one recording with the additive timbres; returns audio and label rows (start, end, program, pitch,
    beats, value)."""
    n = int(seconds * RATE)
    mix = np.zeros(n, dtype=np.float32)
    rows = []
    for note in score(ensemble, seconds, rng):
        i0, i1 = int(note.start * RATE), int(note.end * RATE)
        mix[i0:i1] += note.loudness * render_note(note.name, note.pitch, i1 - i0, rng)
        rows.append((i0, i1, PROGRAM[note.name], note.pitch, note.start_beat, note.end_beat, note.value))
    peak = np.abs(mix).max()
    if peak > 0.95:
        mix *= 0.95 / peak
    mix += 1e-4 * rng.standard_normal(n).astype(np.float32)  # a faint noise floor, like a real room
    rows.sort()
    return mix, rows


def ensemble_weights(balanced: bool) -> np.ndarray:
    """Draw weights of ENSEMBLES. MusicNet-like: the square root of MusicNet's counts, so harpsichord and
    contrabass stay as rare as there. Balanced: each instrument shares one unit of weight among the ensembles
    that hold it, so every instrument is expected in at least 1/11 of the recordings."""
    if not balanced:
        return np.sqrt([count for count, _ in ENSEMBLES.values()])
    holders = Counter(name for _, members in ENSEMBLES.values() for name in set(members))
    return np.array([sum(1 / holders[name] for name in set(members)) for _, members in ENSEMBLES.values()])


def choose_ensembles(count: int, rng: np.random.Generator, only: tuple[str, ...] | None = None,
                      balanced: bool = False) -> list[str]:
    """Weighted draws (see ensemble_weights) after the coverage set; or, when `only` is given, those ensembles
    in turn."""
    if only:
        return [only[i % len(only)] for i in range(count)]
    names = list(ENSEMBLES)
    weights = ensemble_weights(balanced)
    drawn = rng.choice(names, size=max(count - len(COVERAGE), 0), p=weights / weights.sum())
    return list(COVERAGE[:count]) + [str(e) for e in drawn]


def _write_one(job: tuple, base: Path, seconds: float, engine: str, fonts: list[Path] | None, varied: bool,
               library: Path | None, others: float) -> dict:
    """Render and write one recording (in a worker process); returns its metadata row."""
    folder, rid, ensemble, child_seed = job
    rec_rng = np.random.default_rng(child_seed)
    variety = {}
    if engine == "sampled":
        from .instruments import load_library
        from .render import render_score

        lib = load_library(library) if library is not None else None
        audio, rows, var = render_score(score(ensemble, seconds, rec_rng), rec_rng, fonts, varied, lib, others)
        variety = {"engine": engine, **asdict(var)}
    else:
        audio, rows = render_recording(ensemble, seconds, rec_rng)
    write_musicnet_recording(base, folder, rid, audio, RATE, rows)
    return {"id": rid, "composer": "Synth", "composition": f"Synthetic piece {rid}",
            "movement": "1. Allegro, ma non troppo", "ensemble": ensemble, "source": SOURCE,
            "transcriber": "musicid", "catalog_name": f"SYN{rid}", "seconds": int(round(seconds)), **variety}


def synthesize(out: Path, recordings: int = RECORDINGS, seconds: float = SECONDS, seed: int = 0,
               ensembles: tuple[str, ...] | None = None, overwrite: bool = False,
               engine: str = "additive", soundfonts: list[Path] | None = None,
               varied: bool = True, balanced: bool = False, workers: int = 1,
               progress: bool = False, library: Path | None = None, others: float = 0.0,
               solo: float = 0.0) -> dict[str, list[str]]:
    """Write a MusicNet-layout dataset under `out`; returns recording ids per folder.

    `ensembles` restricts the menu (names from ENSEMBLES, used in turn); by default recordings are drawn
    from all of MusicNet's ensembles (`balanced`: see ensemble_weights), and train and test each start with a
    set that holds all 11 instruments. `solo`: the share of recordings turned into a solo of one of the 11,
    drawn uniformly (MusicNet has solos of four instruments only; real music has them of every one).
    An existing dataset in `out` is refused (its files would mix with the new ones) unless `overwrite`.
    `engine`: "additive" (the built-in timbres) or "sampled" (the same scores played by a SoundFont
    synthesizer with recording-condition variety; needs the render extra), which takes `soundfonts` (default:
    the General MIDI bank inside pretty_midi) or an instrument `library` (players drawn per part),
    `varied` (False: the scores as written, dry) and `others` (the share of recordings with one more part,
    unlabelled, played by an instrument outside the 11; needs a library).
    Each recording has its own seed, so `workers` processes write the same files as one.
    """
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "sampled":
        from .instruments import load_library
        from .render import _synth, check_soundfont, default_soundfont

        _synth()
        fonts = [check_soundfont(p) for p in (soundfonts or [default_soundfont()])]
        if library is not None:
            load_library(library)
        if others and library is None:
            raise InputError("--others needs an instrument library (--library DIR) to play them")
    elif soundfonts or not varied or library is not None or others:
        raise InputError("SoundFonts, --library, --others and --no-variety apply to the sampled engine only "
                         "(--engine sampled)")
    else:
        fonts = None
    if not (np.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
        raise InputError(f"--seconds must be above 0 and at most {MAX_SECONDS:.0f}, not {seconds}")
    unknown = sorted(set(ensembles or ()) - set(ENSEMBLES))
    if unknown:  # checked first: bad arguments must not cost an existing dataset
        raise InputError(f"unknown ensemble(s) {', '.join(unknown)}; choose from {', '.join(ENSEMBLES)}")
    out = claim_dataset_folder(out, overwrite, SOURCE)
    rng = np.random.default_rng(seed)
    n_test = max(1, round(recordings / 6))
    plan = {"train": choose_ensembles(recordings - n_test, rng, ensembles, balanced),
            "test": choose_ensembles(n_test, rng, ensembles, balanced)}
    if solo:  # its own stream: the other recordings stay as without solos
        solo_rng = np.random.default_rng([seed, 1])
        names = list(TIMBRES)
        plan = {f: [f"Solo {names[solo_rng.integers(len(names))]}" if solo_rng.uniform() < solo else e for e in m]
                for f, m in plan.items()}
    base = out / "musicnet" / "musicnet"
    for folder in plan:
        (base / f"{folder}_data").mkdir(parents=True, exist_ok=True)
        (base / f"{folder}_labels").mkdir(parents=True, exist_ok=True)
    placed = [(folder, ensemble) for folder, members in plan.items() for ensemble in members]
    seeds = np.random.SeedSequence(seed).spawn(len(placed))
    jobs = [(folder, str(1000 + i), ensemble, seeds[i]) for i, (folder, ensemble) in enumerate(placed)]
    one = partial(_write_one, base=base, seconds=seconds, engine=engine, fonts=fonts, varied=varied,
                  library=library, others=others)
    # spawned, not forked: a FluidSynth instance once created in this process (the SoundFont check above)
    # leaves state behind that deadlocks a forked child's own FluidSynth
    meta = list(ordered_map(one, jobs, workers, "recordings", progress, start="spawn"))
    ids = {folder: [rid for f, rid, *_ in jobs if f == folder] for folder in plan}
    with open(out / "musicnet_metadata.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(meta[0]), quoting=csv.QUOTE_MINIMAL)
        writer.writeheader()
        writer.writerows(meta)
    finish_dataset(out)
    return ids
