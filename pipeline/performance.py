"""Playing a score as a recording: seeded variety (tempo, transposition, dynamics, timing), each
part played alone by its instrument (players.py: a SoundFont preset through FluidSynth, or recorded
samples through sfizz, drawn from an instrument library), mixed, then recording conditions from
Spotify's pedalboard (room reverb, shelving and peak EQ, compression, gain) and a noise floor.

Parts are pretty_midi instruments: a MIDI file as parsed, or a score (the generator's, or a real
one) built into one. General MIDI programs map to the 11 classes as MusicNet's do: 0-2 acoustic
pianos -> Piano, 6 -> Harpsichord, 40-43 -> Violin/Viola/Cello/Contrabass, 60 -> Horn, 68 -> Oboe,
70 -> Bassoon, 71 -> Clarinet, 73 -> Flute. Neighbours stay "others" on purpose: electric pianos,
clavinet, tremolo/pizzicato strings, string ensembles, cor anglais, piccolo sound different enough
that calling them one of the 11 would teach the wrong timbre. Label rows are note-on to note-off in
samples at 44.1 kHz: the release tail sounds but is not labelled, like a real recording's decay.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from musicid.errors import InputError
from musicid.features import REFERENCE_RATE
from musicid.vocab import CLASS_OF_PROGRAM, MUSICNET_ID, OTHER_PART_PROGRAM, PROGRAM

from .generator import NOTE_VALUES, OTHER, TIMBRES, Arrangement, voice_notes, within
from .library import Library
from .players import CHUNK, Note, Player, check_player, play_blocks

# the longest recording: a MIDI with a ten-hour note would fill the disk, not a dataset
MAX_SECONDS = 3600.0


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
    # who played each part ("Violin=tonejs-violin;Cello=FluidR3_GM:42"), set when played
    players: str = ""

    @classmethod
    def draw(cls, rng: np.random.Generator, soundfonts: list[Path], varied: bool = True) -> Variety:
        """Seeded variety; `varied=False` keeps only the SoundFont choice and plays the score as
        written, dry."""
        font = str(soundfonts[rng.integers(len(soundfonts))])
        if not varied:
            return cls(
                font,
                tempo_scale=1.0,
                transpose=0,
                velocity_scale=1.0,
                timing_jitter_s=0.0,
                reverb_room=0.0,
                reverb_wet=0.0,
                low_shelf_db=0.0,
                high_shelf_db=0.0,
                peak_hz=1000.0,
                peak_db=0.0,
                comp_threshold_db=0.0,
                comp_ratio=1.0,
                gain_db=0.0,
                noise_dbfs=float("-inf"),
                velocity_jitter=0.0,
            )
        u = rng.uniform
        return cls(
            font,
            round(u(0.85, 1.15), 3),
            int(rng.integers(-2, 3)),
            round(u(0.75, 1.15), 3),
            round(u(0.0, 0.015), 4),
            round(u(0.05, 0.8), 3),
            round(u(0.0, 0.35), 3),
            round(u(-6, 6), 2),
            round(u(-8, 4), 2),
            round(float(np.exp(u(np.log(300), np.log(6000)))), 1),
            round(u(-6, 6), 2),
            round(u(-30, -10), 2),
            round(u(1.5, 4.0), 2),
            round(u(-12, 0), 2),
            round(u(-75, -50), 1),
        )


def require_render_extra():
    try:
        import fluidsynth  # noqa: F401 - loads the system library: fails clearly when it is missing
        import pedalboard  # noqa: F401
        import pretty_midi  # noqa: F401
    except ImportError as exc:
        raise InputError(
            f"render needs the render extra and FluidSynth ({exc}); pip install 'musicid[render]' "
            "and "
            "apt-get install libfluidsynth3 (Debian/Ubuntu) or brew install fluid-synth (macOS)"
        ) from exc


def check_soundfont(path: Path) -> Path:
    """A SoundFont FluidSynth can load, or an InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such SoundFont")
    check_player(Player(path.stem, "sf2", str(path)))
    return path


def vary(pm, var: Variety, others: str, rng: np.random.Generator) -> list:
    """Apply the variety to the parsed MIDI in place; returns label rows (start, end, program id,
    pitch, start beat, end beat, note value) of the labelled notes."""
    rows, kept = [], []
    for inst in pm.instruments:
        label = None if inst.is_drum else CLASS_OF_PROGRAM.get(inst.program)
        if label is None and others == "drop":
            continue
        kept.append(inst)
        timbre = TIMBRES[label] if label else None
        for n in inst.notes:
            b0, b1 = (
                pm.time_to_tick(n.start) / pm.resolution,
                pm.time_to_tick(n.end) / pm.resolution,
            )
            start = max(0.0, n.start / var.tempo_scale + rng.normal(0, var.timing_jitter_s))
            end = max(start + 0.03, n.end / var.tempo_scale + rng.normal(0, var.timing_jitter_s))
            pitch = n.pitch + var.transpose
            if (
                not inst.is_drum
                and (timbre is None or timbre.low <= pitch <= timbre.high)
                and 0 <= pitch <= 127
            ):
                n.pitch = pitch
            n.start, n.end = start, end
            n.velocity = int(
                np.clip(
                    round(n.velocity * var.velocity_scale + rng.normal(0, var.velocity_jitter)),
                    1,
                    127,
                )
            )
            if label:
                value = min(NOTE_VALUES, key=lambda v: abs(v[0] - (b1 - b0)))[1]
                rows.append(
                    (
                        int(round(start * REFERENCE_RATE)),
                        int(round(end * REFERENCE_RATE)),
                        MUSICNET_ID[label],
                        n.pitch,
                        round(b0, 4),
                        round(b1, 4),
                        value,
                    )
                )
    pm.instruments = kept
    return sorted(rows)


class Take:
    """A played recording, held on disk (float32 in a scratch folder) and read back in blocks, so
    that memory does not grow with its length; `np.asarray(take)` gives it whole. The folder goes
    with the object."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="musicid-take-")
        self.folder, self.n = Path(self._dir.name), 0

    def blocks(self, name: str = "take") -> Iterator[np.ndarray]:
        """The take's (or a stage's) samples in blocks of CHUNK, zero-padded to the take's length: a
        part may end before the others."""
        with open(self.folder / f"{name}.f32", "rb") as fh:
            for start in range(0, self.n, CHUNK):
                block = np.frombuffer(fh.read(4 * min(CHUNK, self.n - start)), np.float32)
                yield np.pad(block, (0, min(CHUNK, self.n - start) - len(block)))

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.blocks()

    def __len__(self) -> int:
        return self.n

    def __array__(self, dtype=None, copy=None):
        return np.concatenate([np.zeros(0, np.float32), *self.blocks()]).astype(dtype or np.float32)


def _effects(var: Variety):
    """Room, microphone colouring, compression and gain (pedalboard)."""
    import pedalboard as pb

    effects = (
        [pb.Reverb(room_size=var.reverb_room, wet_level=var.reverb_wet, dry_level=1.0)]
        if var.reverb_wet
        else []
    )
    effects += [
        pb.LowShelfFilter(cutoff_frequency_hz=200, gain_db=var.low_shelf_db),
        pb.HighShelfFilter(cutoff_frequency_hz=4000, gain_db=var.high_shelf_db),
        pb.PeakFilter(cutoff_frequency_hz=var.peak_hz, gain_db=var.peak_db, q=1.0),
        pb.Compressor(threshold_db=var.comp_threshold_db, ratio=var.comp_ratio),
        pb.Gain(gain_db=var.gain_db),
    ]
    return pb.Pedalboard(effects)


def play_parts(
    pm,
    var: Variety,
    rng: np.random.Generator,
    levels: dict[int, float] | None = None,
    library: Library | None = None,
) -> tuple[Take, Variety]:
    """The varied MIDI, each part played alone by its player, then the recording conditions.
    Players: the recording's SoundFont, or with a `library` one drawn per part (recorded samples or
    a SoundFont preset). With `levels` (GM program -> level) each part is scaled so that its RMS
    over the time its notes are held is its level, instead of what its player's volume and decay
    give: presets differ by several dB (TimGM6mb's piano starts about 6 dB under its cello, and a
    held note fades 20 dB in 1.5 s) and would bury parts the labels call present. Without, the parts
    sum at their velocities. The mix is scaled to peak 1, then played through the room, microphone,
    compressor and gain (pedalboard, in blocks, its state carried over), a noise floor is added and
    the peak is kept under 0.98. Every pass goes block by block through files in the take's scratch
    folder; the variety comes back with the players named."""
    take, names, stems = Take(), [], []
    for i, inst in enumerate(pm.instruments):
        label = None if inst.is_drum else CLASS_OF_PROGRAM.get(inst.program)
        if library is not None:
            player = library.draw(label or "", rng)
        else:
            player = Player(
                Path(var.soundfont).stem,
                "sf2",
                var.soundfont,
                inst.program,
                128 if inst.is_drum else 0,
            )
        names.append(f"{label or 'other'}={player.name}")
        notes = [Note(n.start, n.end, n.pitch, n.velocity) for n in inst.notes]
        h0 = np.array([int(n.start * REFERENCE_RATE) for n in notes], dtype=np.int64)
        h1 = np.array([int(n.end * REFERENCE_RATE) for n in notes], dtype=np.int64)
        power, count, n = 0.0, 0, 0
        with open(take.folder / f"part{i}.f32", "wb") as fh:
            for block in play_blocks(player, notes):
                mask, here = np.zeros(len(block), dtype=bool), (h1 > n) & (h0 < n + len(block))
                for a, b in zip(h0[here], h1[here], strict=True):  # the notes held in this block
                    mask[max(a - n, 0) : b - n] = True
                power += float(np.sum(block[mask].astype(np.float64) ** 2))
                count += int(mask.sum())
                block.tofile(fh)
                n += len(block)
        rms = np.sqrt(power / count) if count else 0.0
        scale = (levels[inst.program] / rms if rms > 0 else 0.0) if levels is not None else 1.0
        stems.append((f"part{i}", n, scale))
    take.n = max((n for _, n, _ in stems), default=0)
    peak = _pass(
        take,
        "mix",
        lambda k, blocks: sum(scale * b for (_, _, scale), b in zip(stems, blocks, strict=True)),
        [take.blocks(name) for name, _, _ in stems],
    )
    board, level = (
        _effects(var),
        10 ** (var.noise_dbfs / 20) if np.isfinite(var.noise_dbfs) else 0.0,
    )

    def condition(k: int, blocks: list) -> np.ndarray:
        out = board.process(blocks[0][None] / max(peak, 1e-9), REFERENCE_RATE, reset=k == 0)[0]
        return out + (level * rng.standard_normal(len(out))).astype(np.float32) if level else out

    peak = _pass(take, "conditioned", condition, [take.blocks("mix")])
    _pass(
        take,
        "take",
        lambda k, blocks: blocks[0] * (0.98 / peak) if peak > 0.98 else blocks[0],
        [take.blocks("conditioned")],
    )
    return take, replace(var, players=";".join(names))


def _pass(take: Take, name: str, step, sources: list) -> float:
    """One block-by-block pass over the take: `step(k, blocks)` on the k-th block of every source,
    written to `name`; returns the output's peak."""
    peak = 0.0
    with open(take.folder / f"{name}.f32", "wb") as fh:
        for k, blocks in enumerate(zip(*sources, strict=True)):
            out = np.asarray(step(k, list(blocks)), dtype=np.float32)
            peak = max(peak, float(np.abs(out).max(initial=0.0)))
            out.tofile(fh)
    return peak


def render_score(
    notes: list,
    rng: np.random.Generator,
    soundfonts: list[Path],
    varied: bool = True,
    library: Library | None = None,
    arrangement: Arrangement = Arrangement(),
) -> tuple[Take, list, Variety]:
    """A score of ScoreNotes (the generator's, or an excerpt of a real score) played part by part,
    each at its mean score loudness, with the same variety as a MIDI file. With a `library`, a share
    `arrangement.others` of recordings gets one more part, unlabelled, played by an instrument
    outside the 11, at a level within `arrangement.others_db` of the labelled parts' and over the
    stretch `arrangement.part_span` gives it. Notes of the voice `OTHER` (a solo of an outsider) are
    played the same way, unlabelled."""
    import pretty_midi

    # one beat per second: time_to_tick gives the score's seconds
    pm = pretty_midi.PrettyMIDI(initial_tempo=60.0)
    voices: dict[str, pretty_midi.Instrument] = {}
    levels: dict[int, list[float]] = {}
    for n in notes:
        inst = voices.setdefault(
            n.name, pretty_midi.Instrument(program=PROGRAM.get(n.name, OTHER_PART_PROGRAM))
        )
        velocity = int(np.clip(30 + 110 * min(1.0, 2 * n.loudness), 1, 127))
        inst.notes.append(pretty_midi.Note(velocity, n.pitch, n.start, n.end))
        levels.setdefault(inst.program, []).append(n.loudness)
    labelled = [n.loudness for n in notes if n.name != OTHER]
    if (
        library is not None
        and labelled
        and arrangement.others > 0
        and rng.uniform() < arrangement.others
    ):
        seconds = max(n.end for n in notes)
        shape = str(rng.choice(list(TIMBRES)))  # a line in some instrument's range and manner
        line = voice_notes(shape, seconds, 60.0 / rng.uniform(70, 140), 0.2, rng, False)
        line = within(line, arrangement.part_span(rng, seconds))
        other = voices.setdefault(OTHER, pretty_midi.Instrument(program=OTHER_PART_PROGRAM))
        other.notes += [pretty_midi.Note(90, p, s0, s1) for s0, s1, p, *_ in line]
        spread = arrangement.others_db
        level = float(np.mean(labelled)) * (
            10 ** (rng.uniform(-spread, spread) / 20) if spread else 1.0
        )
        levels.setdefault(OTHER_PART_PROGRAM, []).append(level)
    pm.instruments = list(voices.values())
    var = Variety.draw(rng, soundfonts, varied)
    rows = vary(pm, var, "unlabelled", rng)
    audio, var = play_parts(
        pm, var, rng, {p: float(np.mean(v)) for p, v in levels.items()}, library
    )
    return audio, rows, var
