"""`synth`: the built-in synthetic MusicNet, written in the exact Kaggle layout: the generator's
scores (generator.py) played by eleven additive-synthesis timbres, or by sampled instruments
(`engine="sampled"`, performance.py).

The additive timbres differ the way the real instruments do: harmonic profile and formants, attack
and decay (plucked/struck vs. bowed/blown), vibrato, piano inharmonicity, breath and bow noise.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np

from musicid.errors import InputError
from musicid.features import REFERENCE_RATE
from musicid.vocab import MUSICNET_ID

from .generator import ENSEMBLES, OTHER, TIMBRES, Arrangement, Timbre, choose_ensembles, score
from .layout import dataset_writer, finish_dataset, write_musicnet_recording
from .library import Library, open_library
from .performance import MAX_SECONDS, check_soundfont, render_score, require_render_extra
from .players import default_soundfont
from .workers import WORKERS, ordered_map

RATE = REFERENCE_RATE  # synth writes at MusicNet's rate
TABLE = 4096
RECORDINGS, SECONDS = 30, 20.0  # the default dataset: 30 recordings of 20 s
ENGINES = ("additive", "sampled")
# the metadata's `source`: how synth --overwrite knows a dataset is its own
SOURCE = "musicid synth"


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
            inst *= 1 + t.vibrato_depth * onset * np.sin(
                2 * np.pi * t.vibrato_hz * time + rng.uniform(0, 6.3)
            )
        phase = (np.cumsum(inst) / RATE + rng.uniform()) % 1.0
        tone = _wavetable(t, f0)[(phase * TABLE).astype(np.int64) % TABLE]
    if t.noise:
        noise = rng.standard_normal(n)
        noise = (
            np.diff(noise, prepend=0.0)
            if name != "Flute"
            else noise * (0.5 + 0.5 * np.sin(2 * np.pi * f0 * time))
        )
        tone = tone + t.noise * noise
    return (tone * _envelope(t, n, rng)).astype(np.float32)


def render_recording(
    ensemble: str, seconds: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple]]:
    """Mix one recording with the additive timbres; returns audio and label rows (start, end,
    program, pitch, beats, value)."""
    n = int(seconds * RATE)
    mix = np.zeros(n, dtype=np.float32)
    rows = []
    for note in score(ensemble, seconds, rng):
        i0, i1 = int(note.start * RATE), int(note.end * RATE)
        mix[i0:i1] += note.loudness * render_note(note.name, note.pitch, i1 - i0, rng)
        rows.append(
            (i0, i1, MUSICNET_ID[note.name], note.pitch, note.start_beat, note.end_beat, note.value)
        )
    peak = np.abs(mix).max()
    if peak > 0.95:
        mix *= 0.95 / peak
    mix += 1e-4 * rng.standard_normal(n).astype(np.float32)  # a faint noise floor, like a real room
    rows.sort()
    return mix, rows


def _write_one(
    job: tuple,
    base: Path,
    seconds: float,
    engine: str,
    fonts: list[Path] | None,
    varied: bool,
    library: Library | None,
    arrangement: Arrangement,
) -> dict:
    """Render and write one recording (in a worker process); returns its metadata row."""
    folder, rid, ensemble, child_seed = job
    rec_rng = np.random.default_rng(child_seed)
    variety = {}
    if engine == "sampled":
        notes = score(ensemble, seconds, rec_rng, arrangement)
        audio, rows, var = render_score(notes, rec_rng, fonts, varied, library, arrangement)
        variety = {"engine": engine, **asdict(var)}
    else:  # the additive timbres' scores keep their parts' original balance
        audio, rows = render_recording(ensemble, seconds, rec_rng)
    write_musicnet_recording(base, folder, rid, audio, RATE, rows)
    return {
        "id": rid,
        "composer": "Synth",
        "composition": f"Synthetic piece {rid}",
        "movement": "1. Allegro, ma non troppo",
        "ensemble": ensemble,
        "source": SOURCE,
        "transcriber": "musicid",
        "catalog_name": f"SYN{rid}",
        "seconds": int(round(seconds)),
        **variety,
    }


def synthesize(
    out: Path,
    recordings: int = RECORDINGS,
    seconds: float = SECONDS,
    seed: int = 0,
    ensembles: tuple[str, ...] | None = None,
    overwrite: bool = False,
    engine: str = "additive",
    soundfonts: list[Path] | None = None,
    varied: bool = True,
    balanced: bool = False,
    workers: int = WORKERS,
    progress: bool = False,
    library: Path | None = None,
    solo: float = 0.0,
    arrangement: Arrangement = Arrangement(),
    others_only: float = 0.0,
    only: tuple[str, ...] = (),
    hold_out: tuple[str, ...] = (),
) -> dict[str, list[str]]:
    """Write a MusicNet-layout dataset under `out`; returns recording ids per folder.

    `ensembles` restricts the menu (names from ENSEMBLES, used in turn); by default recordings are
    drawn from all of MusicNet's ensembles (`balanced`: see ensemble_weights), and train and test
    each start with a set that holds all 11 instruments. `solo`: the share of recordings turned into
    a solo of one of the 11, drawn uniformly (MusicNet has solos of four instruments only; real
    music has them of every one). An existing dataset in `out` is refused (its files would mix with
    the new ones) unless `overwrite`. `engine`: "additive" (the built-in timbres) or "sampled" (the
    same scores played by a SoundFont synthesizer with recording-condition variety; needs the render
    extra), which takes `soundfonts` (default: the General MIDI bank inside pretty_midi) or an
    instrument `library` (players drawn per part), `varied` (False: the scores as written, dry),
    `arrangement` (the parts' balance and entries, and `others`, the share of recordings with one
    more part, unlabelled, played by an instrument outside the 11; needs a library) and
    `others_only` (the share of recordings that are a line of such an instrument alone, with no
    label at all); `only` / `hold_out`: the library's instruments to play, or those never to play
    (library.select). Each recording has its own seed, so `workers` processes write the same files
    as one.
    """
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "sampled":
        require_render_extra()
        fonts = [check_soundfont(p) for p in (soundfonts or [default_soundfont()])]
        # read once, handed to the workers
        lib = open_library(library, only, hold_out)
        if (arrangement.others or others_only) and library is None:
            raise InputError(
                "--others and --others-only need an instrument library (--library DIR) to play them"
            )
    elif (
        soundfonts
        or not varied
        or library is not None
        or only
        or hold_out
        or arrangement != Arrangement()
        or others_only
    ):
        raise InputError(
            "SoundFonts, --library, --players, --hold-out, --others, --others-only, --spread-db, "
            "--entries and --no-variety apply to the sampled engine only (--engine sampled)"
        )
    else:
        fonts, lib = None, None
    if not 0 <= solo + others_only <= 1:
        raise InputError(
            f"--solo and --others-only are shares of the recordings: together at most 1, not "
            f"{solo + others_only:g}"
        )
    if not (np.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
        raise InputError(f"--seconds must be above 0 and at most {MAX_SECONDS:.0f}, not {seconds}")
    unknown = sorted(set(ensembles or ()) - set(ENSEMBLES))
    if unknown:  # checked first: bad arguments must not cost an existing dataset
        raise InputError(
            f"unknown ensemble(s) {', '.join(unknown)}; choose from {', '.join(ENSEMBLES)}"
        )
    with dataset_writer(out, overwrite, SOURCE) as out:
        rng = np.random.default_rng(seed)
        n_test = max(1, round(recordings / 6))
        plan = {
            "train": choose_ensembles(recordings - n_test, rng, ensembles, balanced),
            "test": choose_ensembles(n_test, rng, ensembles, balanced),
        }
        if solo:  # its own stream: the other recordings stay as without solos
            solo_rng = np.random.default_rng([seed, 1])
            names = list(TIMBRES)
            plan = {
                f: [
                    f"Solo {names[solo_rng.integers(len(names))]}"
                    if solo_rng.uniform() < solo
                    else e
                    for e in m
                ]
                for f, m in plan.items()
            }
        if others_only:  # its own stream too
            other_rng = np.random.default_rng([seed, 2])
            plan = {
                f: [f"Solo {OTHER}" if other_rng.uniform() < others_only else e for e in m]
                for f, m in plan.items()
            }
        base = out / "musicnet" / "musicnet"
        for folder in plan:
            (base / f"{folder}_data").mkdir(parents=True, exist_ok=True)
            (base / f"{folder}_labels").mkdir(parents=True, exist_ok=True)
        placed = [(folder, ensemble) for folder, members in plan.items() for ensemble in members]
        seeds = np.random.SeedSequence(seed).spawn(len(placed))
        jobs = [
            (folder, str(1000 + i), ensemble, seeds[i])
            for i, (folder, ensemble) in enumerate(placed)
        ]
        one = partial(
            _write_one,
            base=base,
            seconds=seconds,
            engine=engine,
            fonts=fonts,
            varied=varied,
            library=lib,
            arrangement=arrangement,
        )
        # spawned, not forked: a FluidSynth instance once created in this process (the SoundFont
        # check above) leaves state behind that deadlocks a forked child's own FluidSynth
        meta = list(ordered_map(one, jobs, workers, "recordings", progress, start="spawn"))
        ids = {folder: [rid for f, rid, *_ in jobs if f == folder] for folder in plan}
        finish_dataset(out, meta, list(meta[0]))
        return ids
