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
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from musicid.errors import InputError

from .features import REFERENCE_RATE
from .layout import claim_dataset_folder, write_musicnet_recording
from .synth import NOTE_VALUES, PROGRAM, TIMBRES
from .vocab import INSTRUMENTS

log = logging.getLogger("musicid")
SOURCE = "musicid render"  # the metadata's `source`: how render --overwrite knows a dataset is its own
MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")
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

    soundfont: str
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
    _load_synth(path)[0].delete()
    return path


def midi_files(inputs: list[Path]) -> list[Path]:
    out = []
    for p in inputs:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MIDI_SUFFIXES)
        else:
            out.append(p)
    return list(dict.fromkeys(out))


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


def render_file(path: Path, var: Variety, others: str, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """One MIDI file -> (mono float32 audio at 44.1 kHz, label rows); InputError for what cannot be used."""
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # noqa: BLE001 - mido and pretty_midi raise many types for broken files
        raise SkippedMidi(f"{path}: not a MIDI file that parses ({type(exc).__name__})", "midi_unparsable") from exc
    if not any(inst.notes for inst in pm.instruments):
        raise SkippedMidi(f"{path}: holds no notes", "midi_without_notes")
    programs = sorted({i.program for i in pm.instruments if not i.is_drum})
    rows = _vary(pm, var, others, rng)
    if not rows:
        raise SkippedMidi(f"{path}: none of its instruments is one of the 11 (GM programs {programs})",
                          "midi_without_musicnet_instruments")
    return _play(pm, var, rng), rows


def _play(pm, var: Variety, rng: np.random.Generator, levels: dict[int, float] | None = None) -> np.ndarray:
    """The varied MIDI through FluidSynth with the recording's SoundFont, then its recording conditions;
    with `levels`, the parts mixed at those levels (see _mix_parts), else the file's own mix."""
    synth, sfid = _load_synth(Path(var.soundfont))
    try:
        if levels is None:
            audio = pm.fluidsynth(fs=REFERENCE_RATE, synthesizer=synth, sfid=sfid)
        else:
            audio = _mix_parts(pm, synth, sfid, levels)
    finally:
        synth.delete()
    return _condition(audio, var, rng)


def _mix_parts(pm, synth, sfid: int, levels: dict[int, float]) -> np.ndarray:
    """Each instrument (GM program -> level) played alone and scaled so that its RMS over the time its notes
    are held is its level, instead of what its preset's volume and decay give: presets differ by several dB
    (TimGM6mb's piano starts about 6 dB under its cello, and a held note fades 20 dB in 1.5 s) and would
    bury parts the labels call present. Peak 1, as FluidSynth's own mix."""
    audio = np.zeros(0)
    for inst in pm.instruments:
        stem = inst.fluidsynth(fs=REFERENCE_RATE, synthesizer=synth, sfid=sfid)
        held = np.zeros(len(stem), dtype=bool)
        for note in inst.notes:
            held[int(note.start * REFERENCE_RATE): int(note.end * REFERENCE_RATE)] = True
        rms = np.sqrt(np.mean(stem[held] ** 2)) if held.any() else 0.0
        if len(stem) > len(audio):
            audio = np.pad(audio, (0, len(stem) - len(audio)))
        if rms > 0:
            audio[: len(stem)] += stem * (levels[inst.program] / rms)
    return audio / max(np.abs(audio).max(), 1e-9)


def _load_synth(soundfont: Path):
    """A FluidSynth instance with the SoundFont loaded once, its own reverb and chorus off: the room comes from
    the recording conditions (and rendering twice as fast)."""
    import fluidsynth

    synth = fluidsynth.Synth(samplerate=float(REFERENCE_RATE))
    synth.setting("synth.reverb.active", 0)
    synth.setting("synth.chorus.active", 0)
    sfid = synth.sfload(str(soundfont))
    if sfid == -1:
        synth.delete()
        raise InputError(f"{soundfont}: not a SoundFont that FluidSynth can load (SF2/SF3)")
    return synth, sfid


def render_score(notes: list, rng: np.random.Generator, soundfonts: list[Path],
                 varied: bool = True) -> tuple[np.ndarray, list, Variety]:
    """synth's sampled engine: the generator's score played by the SoundFont path, with the same variety."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=60.0)  # one beat per second: time_to_tick gives the score's seconds
    voices: dict[str, pretty_midi.Instrument] = {}
    for n in notes:
        inst = voices.setdefault(n.name, pretty_midi.Instrument(program=PROGRAM[n.name] - 1))
        velocity = int(np.clip(30 + 110 * min(1.0, 2 * n.loudness), 1, 127))
        inst.notes.append(pretty_midi.Note(velocity, n.pitch, n.start, n.end))
    pm.instruments = list(voices.values())
    # each part at its mean score loudness, as the additive engine plays it
    levels = {inst.program: float(np.mean([n.loudness for n in notes if n.name == name]))
              for name, inst in voices.items()}
    var = Variety.draw(rng, soundfonts, varied)
    rows = _vary(pm, var, "drop", rng)
    return _play(pm, var, rng, levels), rows, var


@dataclass
class RenderResult:
    ids: dict[str, list[str]]
    seconds: float
    skipped: Counter
    details: list[str]


def render(inputs: list[Path], out: Path, soundfonts: list[Path] | None = None, test_fraction: float = 0.2,
           others: str = "drop", seed: int = 0, overwrite: bool = False, varied: bool = True) -> RenderResult:
    """Render MIDI files (or folders, recursively) into a MusicNet-layout dataset under `out`; `varied=False`
    plays each file as written with a dry, unprocessed sound (see Variety.draw)."""
    _synth()
    if others not in OTHERS:
        raise InputError(f"--others must be one of {', '.join(OTHERS)}, not {others!r}")
    fonts = [check_soundfont(p) for p in (soundfonts or [default_soundfont()])]
    files = midi_files([Path(p) for p in inputs])
    if not files:
        raise InputError("no MIDI files (.mid, .midi) in the given inputs")
    out = claim_dataset_folder(out, overwrite, SOURCE, ("soundfont", "tempo_scale"))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    n_test = int(round(test_fraction * len(files))) if len(files) > 1 else 0
    folder_of = {files[i]: "test" if k < n_test else "train" for k, i in enumerate(order)}
    base = out / "musicnet" / "musicnet"
    _write_metadata(out, [])
    for folder in ("train", "test"):
        for kind in ("data", "labels"):
            (base / f"{folder}_{kind}").mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(seed).spawn(len(files))
    meta, ids, skipped, details, seconds = [], {"train": [], "test": []}, Counter(), [], 0.0
    for i, path in enumerate(files):
        file_rng = np.random.default_rng(seeds[i])
        var = Variety.draw(file_rng, fonts, varied)
        try:
            audio, rows = render_file(path, var, others, file_rng)
        except SkippedMidi as exc:
            skipped[exc.reason] += 1
            details.append(str(exc))
            log.warning("skipped %s", exc)
            continue
        rid, folder = f"{i + 1:05d}", folder_of[path]
        write_musicnet_recording(base, folder, rid, audio, REFERENCE_RATE, rows)
        present = sorted({r[2] for r in rows}, key=[p for p, _ in INSTRUMENTS].index)
        meta.append({"id": rid, "composer": "", "composition": path.stem, "movement": "",
                     "ensemble": "+".join(NAME_OF[p] for p in present), "source": SOURCE, "transcriber": "",
                     "catalog_name": str(path), "seconds": round(len(audio) / REFERENCE_RATE, 2),
                     "others": others, **asdict(var)})
        ids[folder].append(rid)
        seconds += len(audio) / REFERENCE_RATE
        _write_metadata(out, meta)  # after every recording: an interrupted render is still provably ours
    if not meta:
        raise InputError(f"none of the {len(files)} MIDI files could be rendered: " + "; ".join(details[:3]))
    return RenderResult(ids, seconds, skipped, details)


def _write_metadata(out: Path, rows: list[dict]) -> None:
    columns = [*META_COLUMNS, "others", *(f.name for f in fields(Variety))]
    pd.DataFrame(rows, columns=columns).to_csv(out / "musicnet_metadata.csv", index=False)
