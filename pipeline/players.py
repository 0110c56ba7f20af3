"""Instrument players: one part's notes -> mono audio at 44.1 kHz, from a SoundFont preset
(FluidSynth) or an SFZ instrument of recorded note samples (sfizz, through its Python bindings
`pysfizz`).

Both are driven the same way: note events placed at their sample (FluidSynth starts them at its next
64-sample block, sfizz exactly), audio rendered in blocks between them. FluidSynth is read through
its float output: its 16-bit output adds dither drawn from the C library's shared random state,
which other libraries in the process (pedalboard) also draw from, so the same render differed from
process to process. Each part gets a new FluidSynth instance; an SFZ instrument is loaded once per
process and silenced before every part.
"""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from musicid.errors import InputError
from musicid.features import REFERENCE_RATE

KINDS = ("sf2", "sfz")  # a SoundFont preset, or an SFZ instrument
BLOCK = 1024  # samples sfizz renders between looks at the event list
CHUNK = 256 * BLOCK  # samples handed on at a time (about 6 s): what a part holds in memory
TAIL_S = 1.5  # rendered after the last note-off: the release sounds, unlabelled, like a real decay


def default_soundfont() -> Path:
    """TimGM6mb, the General MIDI SoundFont inside pretty_midi's wheel: played when no other is
    given."""
    import pretty_midi

    return Path(pretty_midi.__file__).with_name("TimGM6mb.sf2")


@dataclass(frozen=True)
class Player:
    """Who plays a part: `kind` "sf2" (a SoundFont file, a General MIDI `program` and `bank`: 128
    for drum kits) or "sfz" (an SFZ file; `program` and `bank` unused). `name` identifies it in
    metadata."""

    name: str
    kind: str
    path: str
    program: int = 0
    bank: int = 0

    def __post_init__(self):
        # an unknown kind is refused here, never handed to one of the synthesizers
        if self.kind not in KINDS:
            raise InputError(
                f"{self.name}: player kind must be one of {', '.join(KINDS)}, not {self.kind!r}"
            )


@dataclass(frozen=True)
class Note:
    start: float  # seconds
    end: float
    pitch: int
    velocity: int


def play(player: Player, notes: list[Note], seconds: float | None = None) -> np.ndarray:
    """The notes played by `player`: float32 mono at 44.1 kHz, `seconds` long (default: the last
    note-off plus the release tail)."""
    return np.concatenate([np.zeros(0, np.float32), *play_blocks(player, notes, seconds)])


def play_blocks(
    player: Player, notes: list[Note], seconds: float | None = None
) -> Iterator[np.ndarray]:
    """`play` in blocks of CHUNK samples (the last one shorter): memory does not grow with the
    part's length."""
    end = max((n.end for n in notes), default=0.0)
    total = int(round((seconds if seconds is not None else end + TAIL_S) * REFERENCE_RATE))
    events = sorted(
        [(int(round(n.start * REFERENCE_RATE)), 1, n.pitch, n.velocity) for n in notes]
        + [(int(round(n.end * REFERENCE_RATE)), 0, n.pitch, 0) for n in notes]
    )
    render = _fluidsynth if player.kind == "sf2" else _sfizz
    return render(player, events, total)


@cache
def _write_float():
    import fluidsynth

    return fluidsynth.cfunc(
        "fluid_synth_write_float",
        ctypes.c_int,
        ("synth", ctypes.c_void_p, 1),
        ("len", ctypes.c_int, 1),
        ("lout", ctypes.c_void_p, 1),
        ("loff", ctypes.c_int, 1),
        ("lincr", ctypes.c_int, 1),
        ("rout", ctypes.c_void_p, 1),
        ("roff", ctypes.c_int, 1),
        ("rincr", ctypes.c_int, 1),
    )


def fluid_synth(path: str):
    """A new FluidSynth instance with the SoundFont loaded, its own reverb and chorus off (the room
    comes from the recording conditions, and it renders twice as fast); InputError when FluidSynth
    cannot load the file. Samples load when a preset is selected (dynamic sample loading), so a new
    instance per part is cheap (0.01-0.08 s, against 2.5 s to load all of a 86 MB SF3) and no part
    depends on what another played: a reused instance mixes a part's voices differently after other
    parts."""
    import fluidsynth

    quiet_fluidsynth()
    synth = fluidsynth.Synth(samplerate=float(REFERENCE_RATE))
    synth.setting("synth.reverb.active", 0)
    synth.setting("synth.chorus.active", 0)
    synth.setting("synth.dynamic-sample-loading", 1)
    with _quiet_fd2():
        sfid = synth.sfload(str(path))
    if sfid == -1:
        synth.delete()
        raise InputError(f"{path}: not a SoundFont that FluidSynth can load (SF2/SF3)")
    return synth, sfid


@contextmanager
def _quiet_fd2():
    """Standard error closed at the file-descriptor level: libinstpatch, which reads SF3 files for
    FluidSynth, reports a broken file through GLib straight to descriptor 2 (`** CRITICAL **:
    ipatch_...`), past any logging setting."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@cache
def quiet_fluidsynth() -> None:
    """FluidSynth logs its own errors to stderr (several lines for a broken SoundFont, before ours):
    route every level to nothing; the one-line error that names the file is ours."""
    import fluidsynth

    try:
        set_log = fluidsynth.cfunc(
            "fluid_set_log_function",
            ctypes.c_void_p,
            ("level", ctypes.c_int, 1),
            ("fun", ctypes.c_void_p, 1),
            ("data", ctypes.c_void_p, 1),
        )
    except Exception:  # noqa: BLE001 - an old library without it only stays noisy
        return
    for level in range(5):  # FLUID_PANIC .. FLUID_DBG
        set_log(level, None, None)


def _fluidsynth(player: Player, events: list[tuple], total: int) -> Iterator[np.ndarray]:
    synth, sfid = fluid_synth(player.path)
    try:
        synth.program_select(0, sfid, player.bank, player.program)
        write, k = _write_float(), 0
        for c0 in range(0, total, CHUNK):
            c1 = min(c0 + CHUNK, total)
            out, pos = np.zeros((c1 - c0, 2), dtype=np.float32), c0
            while True:  # render up to the next event in this chunk, then apply it
                t = min(events[k][0], c1) if k < len(events) else c1
                if t > pos:
                    view = out[pos - c0 : t - c0]
                    write(synth.synth, t - pos, view.ctypes.data, 0, 2, view.ctypes.data, 1, 2)
                    pos = t
                if k == len(events) or events[k][0] >= c1:
                    break
                _, on, pitch, vel = events[k]
                synth.noteon(0, pitch, vel) if on else synth.noteoff(0, pitch)
                k += 1
            yield out.mean(axis=1)
    finally:
        synth.delete()


# the longest recorded note a region may play: a longer one is a damaged file or not a note
MAX_SAMPLE_S = 120.0
# where an opcode's value ends: the next opcode, header or line end
_OPCODE = r"(?=\s+[A-Za-z0-9_$]+=|\s*<|\s*$)"
_SAMPLE = re.compile(r"(?:^|\s|>)sample=(.+?)" + _OPCODE)
_DEFAULT_PATH = re.compile(r"(?:^|\s|>)default_path=(.+?)" + _OPCODE)


def sfz_samples(sfz: Path) -> list[str]:
    """The sample file names an SFZ file's regions play (`default_path` applied), as written."""
    try:
        text = Path(sfz).read_text(errors="replace")
    except OSError as exc:
        raise InputError(f"{sfz}: cannot read the SFZ file ({exc.strerror})") from exc
    lines = [line.split("//", 1)[0] for line in text.splitlines()]
    prefix = next((m.group(1).strip() for line in lines for m in _DEFAULT_PATH.finditer(line)), "")
    return [
        (prefix + m.group(1).strip()).replace("\\", "/")
        for line in lines
        for m in _SAMPLE.finditer(line)
    ]


def check_sfz(sfz: Path, root: Path) -> None:
    """Every sample an SFZ file plays is a recorded sample inside `root` (the library), readable,
    decodable and at most MAX_SAMPLE_S long; InputError naming the first that is not."""
    from musicid.audio import probe
    from musicid.errors import AudioError

    base, top = Path(sfz).parent, Path(root).resolve()
    for name in dict.fromkeys(sfz_samples(sfz)):
        where = f"{sfz}: region sample {name!r}"
        if name.startswith("*"):
            raise InputError(f"{where} is a generator, not a recorded sample")
        path = (base / name).resolve()
        if top not in path.parents:
            raise InputError(f"{where} is outside the instrument library {root}")
        try:
            info = probe(path)
        except AudioError as exc:
            raise InputError(f"{where}: {str(exc).split(': ', 1)[-1]}") from exc
        if info.frames is not None and info.frames > MAX_SAMPLE_S * info.sample_rate:
            raise InputError(
                f"{where} lasts {info.frames / info.sample_rate:.0f} s; a note sample is at most "
                f"{MAX_SAMPLE_S:.0f} s (a damaged file?)"
            )


@cache
def sfizz_synth(path: str):
    """An sfizz instance with the SFZ loaded (freewheeling: nothing is left to a background thread);
    InputError when it has no regions sfizz can play. The bindings' own wrapper is bypassed: it
    silences stderr through a file descriptor, which a redirected stderr does not have."""
    try:
        from pysfizz import _sfizz
    except ImportError as exc:
        raise InputError(
            f"SFZ instruments need sfizz's Python bindings ({exc}); pip install pysfizz"
        ) from exc
    synth = _sfizz.Synth(REFERENCE_RATE, BLOCK)
    synth.enable_freewheeling()
    if (
        not Path(path).is_file()
        or not synth.load_sfz_file(str(path))
        or synth.get_num_regions() == 0
    ):
        raise InputError(f"{path}: not an SFZ instrument that sfizz can load")
    return synth


def _sfizz(player: Player, events: list[tuple], total: int) -> Iterator[np.ndarray]:
    synth = sfizz_synth(player.path)
    synth.all_sound_off()
    k = 0
    for c0 in range(0, total, CHUNK):
        c1 = min(c0 + CHUNK, total)
        out = np.zeros((-(-(c1 - c0) // BLOCK) * BLOCK, 2), dtype=np.float32)
        for b0 in range(c0, c1, BLOCK):
            while k < len(events) and events[k][0] < b0 + BLOCK:
                t, on, pitch, vel = events[k]
                (synth.note_on if on else synth.note_off)(max(t - b0, 0), pitch, vel)
                k += 1
            left, right = synth.render_block()
            out[b0 - c0 : b0 - c0 + BLOCK, 0], out[b0 - c0 : b0 - c0 + BLOCK, 1] = left, right
        yield out[: c1 - c0].mean(axis=1)


def check_player(player: Player) -> Player:
    """The player, once its file loads; InputError naming the file otherwise."""
    if not Path(player.path).is_file():
        raise InputError(
            f"{player.path}: no such {'SoundFont' if player.kind == 'sf2' else 'SFZ file'}"
        )
    if player.kind == "sf2":
        fluid_synth(player.path)[0].delete()
    else:
        sfizz_synth(player.path)
    return player
