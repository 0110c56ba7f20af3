"""`render`: MIDI files -> a MusicNet-layout dataset played by sampled instruments, with seeded variety.

MIDI is parsed with pretty_midi (it also ships the default General MIDI SoundFont, TimGM6mb.sf2, and drives
the synthesizer); the synthesizer is FluidSynth (pyfluidsynth over the system library: Debian's
`libfluidsynth3`, macOS `brew install fluid-synth`), chosen over tinysoundfont because that wheel declares
PyAudio, which builds only with PortAudio's headers, for sound output we never use. Recording conditions
come from Spotify's pedalboard (reverb, shelving and peak EQ, compression, gain); a noise floor is added.

Output is exactly MusicNet's layout and label format (`instrument` = GM program + 1, times in samples at
44.1 kHz, note-on to note-off: the release tail sounds but is not labelled, like a real recording's decay),
so build-shards reads it as a further root. General MIDI programs map to the 11 classes as MusicNet's do:
0-2 acoustic pianos -> Piano, 6 -> Harpsichord, 40-43 -> Violin/Viola/Cello/Contrabass, 60 -> Horn,
68 -> Oboe, 70 -> Bassoon, 71 -> Clarinet, 73 -> Flute. Neighbours stay "others" on purpose: electric
pianos, clavinet, tremolo/pizzicato strings, string ensembles, cor anglais, piccolo sound different enough
that calling them one of the 11 would teach the wrong timbre. Others (and drums) are dropped, or with
`others="unlabelled"` kept audible without labels, so a model learns that a trumpet is none of the 11.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from musicid.errors import InputError

from .features import REFERENCE_RATE
from .instruments import Library, load_library
from .layout import claim_dataset_folder, finish_dataset, write_musicnet_recording
from .players import Note, Player, check_player, play
from .scores import SCORE_SUFFIXES, excerpt, read_parts
from .synth import NOTE_VALUES, PROGRAM, TIMBRES, _voice_notes
from .vocab import INSTRUMENTS

log = logging.getLogger("musicid")
SOURCE = "musicid render"  # the metadata's `source`: how render --overwrite knows a dataset is its own
MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")
INPUT_SUFFIXES = MIDI_SUFFIXES + SCORE_SUFFIXES
MAX_SECONDS = 3600.0  # a longer MIDI file is skipped: one recording is held in memory while it renders
EXCERPT_S = 30.0  # seconds of a score per recording
OTHER_PROGRAM = 56  # GM trumpet: the MIDI program of a generated part that an instrument outside the 11 plays
OTHERS = ("drop", "unlabelled")  # what becomes of programs outside the 11 and of drums
GM_TO_MUSICNET = {0: 1, 1: 1, 2: 1, 6: 7, 40: 41, 41: 42, 42: 43, 43: 44, 60: 61, 68: 69, 70: 71, 71: 72, 73: 74}
NAME_OF = dict(INSTRUMENTS)
META_COLUMNS = ("id", "composer", "composition", "movement", "ensemble", "source", "transcriber", "catalog_name",
                "seconds")


class SkippedMidi(InputError):
    """A MIDI file that cannot be rendered; `reason` is the count's name in the summary."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Variety:
    """One recording's seeded variety, written to the metadata."""

    soundfont: str  # the recording's SoundFont when no instrument library is given
    tempo_scale: float
    transpose: int
    velocity_scale: float
    timing_jitter_s: float
    reverb_room: float
    reverb_wet: float
    low_shelf_db: float
    high_shelf_db: float
    peak_hz: float
    peak_db: float
    comp_threshold_db: float
    comp_ratio: float
    gain_db: float
    noise_dbfs: float
    velocity_jitter: float = 6.0  # standard deviation added to each note's velocity
    players: str = ""  # who played each part ("Violin=tonejs-violin;Cello=FluidR3_GM:42"), set when played

    @classmethod
    def draw(cls, rng: np.random.Generator, soundfonts: list[Path], varied: bool = True) -> Variety:
        """Seeded variety; `varied=False` keeps only the SoundFont choice and plays the score as written, dry."""
        font = str(soundfonts[rng.integers(len(soundfonts))])
        if not varied:
            return cls(font, tempo_scale=1.0, transpose=0, velocity_scale=1.0, timing_jitter_s=0.0, reverb_room=0.0,
                       reverb_wet=0.0, low_shelf_db=0.0, high_shelf_db=0.0, peak_hz=1000.0, peak_db=0.0,
                       comp_threshold_db=0.0, comp_ratio=1.0, gain_db=0.0, noise_dbfs=float("-inf"),
                       velocity_jitter=0.0)
        u = rng.uniform
        return cls(font, round(u(0.85, 1.15), 3), int(rng.integers(-2, 3)),
                   round(u(0.75, 1.15), 3), round(u(0.0, 0.015), 4), round(u(0.05, 0.8), 3), round(u(0.0, 0.35), 3),
                   round(u(-6, 6), 2), round(u(-8, 4), 2), round(float(np.exp(u(np.log(300), np.log(6000)))), 1),
                   round(u(-6, 6), 2), round(u(-30, -10), 2), round(u(1.5, 4.0), 2), round(u(-12, 0), 2),
                   round(u(-75, -50), 1))


def default_soundfont() -> Path:
    import pretty_midi

    return Path(pretty_midi.__file__).with_name("TimGM6mb.sf2")


def _synth():
    try:
        import fluidsynth  # noqa: F401 - loads the system library: fails clearly when it is missing
        import pedalboard  # noqa: F401
        import pretty_midi  # noqa: F401
    except ImportError as exc:
        raise InputError(f"render needs the render extra and FluidSynth ({exc}); pip install 'musicid[render]' and "
                         "apt-get install libfluidsynth3 (Debian/Ubuntu) or brew install fluid-synth (macOS)") from exc


def check_soundfont(path: Path) -> Path:
    """A SoundFont FluidSynth can load, or an InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such SoundFont")
    check_player(Player(path.stem, "sf2", str(path)))
    return path


def _vary(pm, var: Variety, others: str, rng: np.random.Generator) -> list:
    """Apply the variety to the parsed MIDI in place; returns label rows (start, end, program id, pitch,
    start beat, end beat, note value) of the labelled notes."""
    rows, kept = [], []
    for inst in pm.instruments:
        label = None if inst.is_drum else GM_TO_MUSICNET.get(inst.program)
        if label is None and others == "drop":
            continue
        kept.append(inst)
        timbre = TIMBRES[NAME_OF[label]] if label else None
        for n in inst.notes:
            b0, b1 = pm.time_to_tick(n.start) / pm.resolution, pm.time_to_tick(n.end) / pm.resolution
            start = max(0.0, n.start / var.tempo_scale + rng.normal(0, var.timing_jitter_s))
            end = max(start + 0.03, n.end / var.tempo_scale + rng.normal(0, var.timing_jitter_s))
            pitch = n.pitch + var.transpose
            if not inst.is_drum and (timbre is None or timbre.low <= pitch <= timbre.high) and 0 <= pitch <= 127:
                n.pitch = pitch
            n.start, n.end = start, end
            n.velocity = int(np.clip(round(n.velocity * var.velocity_scale + rng.normal(0, var.velocity_jitter)),
                                         1, 127))
            if label:
                value = min(NOTE_VALUES, key=lambda v: abs(v[0] - (b1 - b0)))[1]
                rows.append((int(round(start * REFERENCE_RATE)), int(round(end * REFERENCE_RATE)), label, n.pitch,
                             round(b0, 4), round(b1, 4), value))
    pm.instruments = kept
    return sorted(rows)


def _condition(audio: np.ndarray, var: Variety, rng: np.random.Generator) -> np.ndarray:
    """Room, microphone colouring, compression, gain and a noise floor (pedalboard)."""
    import pedalboard as pb

    effects = [pb.Reverb(room_size=var.reverb_room, wet_level=var.reverb_wet, dry_level=1.0)] if var.reverb_wet else []
    effects += [pb.LowShelfFilter(cutoff_frequency_hz=200, gain_db=var.low_shelf_db),
                pb.HighShelfFilter(cutoff_frequency_hz=4000, gain_db=var.high_shelf_db),
                pb.PeakFilter(cutoff_frequency_hz=var.peak_hz, gain_db=var.peak_db, q=1.0),
                pb.Compressor(threshold_db=var.comp_threshold_db, ratio=var.comp_ratio),
                pb.Gain(gain_db=var.gain_db)]
    out = pb.Pedalboard(effects)(audio.astype(np.float32)[None], REFERENCE_RATE)[0]
    if np.isfinite(var.noise_dbfs):
        out += (10 ** (var.noise_dbfs / 20) * rng.standard_normal(len(out))).astype(np.float32)
    peak = np.abs(out).max()
    return out * (0.98 / peak) if peak > 0.98 else out


def render_file(path: Path, var: Variety, others: str, rng: np.random.Generator,
                library: Library | None = None) -> tuple[np.ndarray, list, Variety]:
    """One MIDI file -> (mono float32 audio at 44.1 kHz, label rows, the variety with its players);
    SkippedMidi for what cannot be used, a file over MAX_SECONDS included."""
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # noqa: BLE001 - mido and pretty_midi raise many types for broken files
        raise SkippedMidi(f"{path}: not a MIDI file that parses ({type(exc).__name__})", "midi_unparsable") from exc
    if not any(inst.notes for inst in pm.instruments):
        raise SkippedMidi(f"{path}: holds no notes", "midi_without_notes")
    if pm.get_end_time() > MAX_SECONDS:
        raise SkippedMidi(f"{path}: lasts {pm.get_end_time():.0f} s, over the {MAX_SECONDS:.0f} s a recording may "
                          "last", "midi_too_long")
    programs = sorted({i.program for i in pm.instruments if not i.is_drum})
    rows = _vary(pm, var, others, rng)
    if not rows:
        raise SkippedMidi(f"{path}: none of its instruments is one of the 11 (GM programs {programs})",
                          "midi_without_musicnet_instruments")
    audio, var = _play(pm, var, rng, None, library)
    return audio, rows, var


def _play(pm, var: Variety, rng: np.random.Generator, levels: dict[int, float] | None = None,
          library: Library | None = None) -> tuple[np.ndarray, Variety]:
    """The varied MIDI, each part played alone by its player, then the recording conditions. Players: the
    recording's SoundFont, or with a `library` one drawn per part (recorded samples or a SoundFont preset).
    With `levels` (GM program -> level) each part is scaled so that its RMS over the time its notes are held
    is its level, instead of what its player's volume and decay give: presets differ by several dB
    (TimGM6mb's piano starts about 6 dB under its cello, and a held note fades 20 dB in 1.5 s) and would
    bury parts the labels call present. Without, the parts sum at their velocities. Peak 1 before the
    conditions; the variety comes back with the players named."""
    audio, names = np.zeros(0), []
    for inst in pm.instruments:
        label = None if inst.is_drum else GM_TO_MUSICNET.get(inst.program)
        if library is not None:
            player = library.draw(NAME_OF[label] if label else "", rng)
        else:
            player = Player(Path(var.soundfont).stem, "sf2", var.soundfont, inst.program, 128 if inst.is_drum else 0)
        names.append(f"{NAME_OF[label] if label else 'other'}={player.name}")
        notes = [Note(n.start, n.end, n.pitch, n.velocity) for n in inst.notes]
        stem = play(player, notes).astype(np.float64)
        if levels is not None:
            held = np.zeros(len(stem), dtype=bool)
            for note in notes:
                held[int(note.start * REFERENCE_RATE): int(note.end * REFERENCE_RATE)] = True
            rms = np.sqrt(np.mean(stem[held] ** 2)) if held.any() else 0.0
            stem = stem * (levels[inst.program] / rms) if rms > 0 else stem * 0
        if len(stem) > len(audio):
            audio = np.pad(audio, (0, len(stem) - len(audio)))
        audio[: len(stem)] += stem
    audio = audio / max(np.abs(audio).max(), 1e-9)
    return _condition(audio, var, rng), replace(var, players=";".join(names))


def render_score(notes: list, rng: np.random.Generator, soundfonts: list[Path], varied: bool = True,
                 library: Library | None = None, others: float = 0.0) -> tuple[np.ndarray, list, Variety]:
    """A score of ScoreNotes (the generator's, or an excerpt of a real score) played part by part, each at its
    mean score loudness, with the same variety as a MIDI file. With `others` > 0 (and a `library`), that
    share of recordings gets one more part, unlabelled, played by an instrument outside the 11."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=60.0)  # one beat per second: time_to_tick gives the score's seconds
    voices: dict[str, pretty_midi.Instrument] = {}
    levels: dict[int, list[float]] = {}
    for n in notes:
        inst = voices.setdefault(n.name, pretty_midi.Instrument(program=PROGRAM[n.name] - 1))
        velocity = int(np.clip(30 + 110 * min(1.0, 2 * n.loudness), 1, 127))
        inst.notes.append(pretty_midi.Note(velocity, n.pitch, n.start, n.end))
        levels.setdefault(inst.program, []).append(n.loudness)
    if library is not None and others > 0 and rng.uniform() < others:
        seconds = max(n.end for n in notes)
        shape = str(rng.choice(list(TIMBRES)))  # a line in some instrument's range and manner
        line = _voice_notes(shape, seconds, 60.0 / rng.uniform(70, 140), 0.2, rng, False)
        other = voices.setdefault("other", pretty_midi.Instrument(program=OTHER_PROGRAM))
        other.notes += [pretty_midi.Note(90, p, s0, s1) for s0, s1, p, *_ in line]
        levels[OTHER_PROGRAM] = [float(np.mean([n.loudness for n in notes]))]
    pm.instruments = list(voices.values())
    var = Variety.draw(rng, soundfonts, varied)
    rows = _vary(pm, var, "unlabelled", rng)
    audio, var = _play(pm, var, rng, {p: float(np.mean(v)) for p, v in levels.items()}, library)
    return audio, rows, var


def input_files(inputs: list[Path]) -> list[Path]:
    """MIDI and score files given, and those in given folders (recursively), each once."""
    out = []
    for p in inputs:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in INPUT_SUFFIXES)
        else:
            out.append(p)
    return list(dict.fromkeys(out))


@dataclass
class RenderResult:
    ids: dict[str, list[str]]
    seconds: float
    skipped: Counter
    details: list[str]


def render(inputs: list[Path], out: Path, soundfonts: list[Path] | None = None, test_fraction: float = 0.2,
           others: str = "drop", seed: int = 0, overwrite: bool = False, varied: bool = True,
           library: Path | None = None, corpus: tuple[str, ...] = (), seconds: float = EXCERPT_S,
           excerpts: int = 1) -> RenderResult:
    """Render MIDI files and scores (files or folders, recursively; `corpus`: music21's corpus by composer)
    into a MusicNet-layout dataset under `out`. A MIDI file is one recording; a score gives `excerpts`
    recordings of `seconds`, each orchestrated anew (see scores.py). `library`: an instrument library folder
    whose players are drawn per part (else `soundfonts`, one per recording). `varied=False` plays each file
    as written with a dry, unprocessed sound (see Variety.draw). Every argument and input is checked before
    OUT is touched; a render that renders nothing leaves no dataset behind."""
    _synth()
    if others not in OTHERS:
        raise InputError(f"--others must be one of {', '.join(OTHERS)}, not {others!r}")
    if not (np.isfinite(seconds) and 1.0 <= seconds <= MAX_SECONDS):
        raise InputError(f"--seconds must be between 1 and {MAX_SECONDS:.0f}, not {seconds}")
    lib = load_library(library) if library is not None else None
    fonts = [check_soundfont(p) for p in (soundfonts or [default_soundfont()])]
    missing = [p for p in inputs if not Path(p).exists()]
    if missing:
        raise InputError(f"{missing[0]}: no such file or folder")
    files = input_files([Path(p) for p in inputs])
    if corpus:
        from .scores import corpus_files

        files += corpus_files(list(corpus))
    if not files:
        raise InputError(f"no MIDI files ({', '.join(MIDI_SUFFIXES)}) or scores ({', '.join(SCORE_SUFFIXES)}) "
                         "in the given inputs")
    out = claim_dataset_folder(out, overwrite, SOURCE, ("soundfont", "tempo_scale"))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    n_test = int(round(test_fraction * len(files))) if len(files) > 1 else 0
    folder_of = {files[i]: "test" if k < n_test else "train" for k, i in enumerate(order)}
    base = out / "musicnet" / "musicnet"
    for folder in ("train", "test"):
        for kind in ("data", "labels"):
            (base / f"{folder}_{kind}").mkdir(parents=True, exist_ok=True)
    _write_metadata(out, [])
    seeds = np.random.SeedSequence(seed).spawn(len(files))
    meta, ids, skipped, details, total = [], {"train": [], "test": []}, Counter(), [], 0.0
    for i, path in enumerate(files):
        file_rng = np.random.default_rng(seeds[i])
        is_score, parsed = path.suffix.lower() in SCORE_SUFFIXES, None
        for k in range(excerpts if is_score else 1):
            try:
                if is_score:
                    parsed = parsed or read_parts(path)  # parsed once for all its excerpts
                    ensemble, notes = excerpt(path, parsed, seconds, file_rng)
                    audio, rows, var = render_score(notes, file_rng, fonts, varied, lib)
                else:
                    var = Variety.draw(file_rng, fonts, varied)
                    audio, rows, var = render_file(path, var, others, file_rng, lib)
            except InputError as exc:
                reason = exc.reason if isinstance(exc, SkippedMidi) else "scores_unreadable"
                skipped[reason] += 1
                details.append(str(exc))
                log.warning("skipped %s", exc)
                break
            rid, folder = f"{i + 1:05d}" + (f"-{k + 1}" if is_score and excerpts > 1 else ""), folder_of[path]
            write_musicnet_recording(base, folder, rid, audio, REFERENCE_RATE, rows)
            present = sorted({r[2] for r in rows}, key=[p for p, _ in INSTRUMENTS].index)
            meta.append({"id": rid, "composer": "", "composition": path.stem, "movement": "",
                         "ensemble": ensemble if is_score else "+".join(NAME_OF[p] for p in present),
                         "source": SOURCE, "transcriber": "", "catalog_name": str(path),
                         "seconds": round(len(audio) / REFERENCE_RATE, 2), "others": others, **asdict(var)})
            ids[folder].append(rid)
            total += len(audio) / REFERENCE_RATE
            _write_metadata(out, meta)  # after every recording: an interrupted render is still provably ours
    if not meta:
        shutil.rmtree(out / "musicnet")  # made above, empty: nothing for a corrected command to trip on
        (out / "musicnet_metadata.csv").unlink()
        finish_dataset(out)
        raise InputError(f"none of the {len(files)} inputs could be rendered: " + "; ".join(details[:3]))
    finish_dataset(out)
    return RenderResult(ids, total, skipped, details)


def _write_metadata(out: Path, rows: list[dict]) -> None:
    columns = [*META_COLUMNS, "others", *(f.name for f in fields(Variety))]
    pd.DataFrame(rows, columns=columns).to_csv(out / "musicnet_metadata.csv", index=False)
