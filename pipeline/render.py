"""`render`: MIDI files and scores -> a MusicNet-layout dataset played by sampled instruments, with
seeded variety (see performance.py for how a recording is played).

MIDI is parsed with pretty_midi (it also ships the default General MIDI SoundFont, TimGM6mb.sf2);
scores (MusicXML, kern) with music21 (scores.py). The synthesizers are FluidSynth (pyfluidsynth over
the system library: Debian's `libfluidsynth3`, macOS `brew install fluid-synth`), chosen over
tinysoundfont because that wheel declares PyAudio, which builds only with PortAudio's headers, for
sound output we never use, and sfizz for SFZ instruments. Output is exactly MusicNet's layout and
label format (`instrument` = GM program + 1, times in samples at 44.1 kHz), so build-shards reads it
as a further root. Programs outside the 11 (and drums) are dropped, or with `others="unlabelled"`
kept audible without labels, so a model learns that a trumpet is none of the 11.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from musicid.errors import InputError
from musicid.features import REFERENCE_RATE
from musicid.vocab import NAME_OF_ID

from .generator import Arrangement
from .layout import INCOMPLETE, dataset_writer, finish_dataset, write_musicnet_recording
from .library import Library, open_library
from .performance import (
    MAX_SECONDS,
    Take,
    Variety,
    check_soundfont,
    play_parts,
    render_score,
    require_render_extra,
    vary,
)
from .players import default_soundfont
from .scores import SCORE_SUFFIXES, Skipped, draw_excerpt, read_parts

log = logging.getLogger("musicid")
# the metadata's `source`: how render --overwrite knows a dataset is its own
SOURCE = "musicid render"
MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")
INPUT_SUFFIXES = MIDI_SUFFIXES + SCORE_SUFFIXES
EXCERPT_S = 30.0  # seconds of a score per recording
OTHERS = ("drop", "unlabelled")  # what becomes of programs outside the 11 and of drums
TEST_FRACTION = 0.2  # share of the files in the test folder
META_COLUMNS = (
    "id",
    "composer",
    "composition",
    "movement",
    "ensemble",
    "source",
    "transcriber",
    "catalog_name",
    "seconds",
)


def render_file(
    path: Path, var: Variety, others: str, rng: np.random.Generator, library: Library | None = None
) -> tuple[Take, list, Variety]:
    """One MIDI file -> (its take: mono float32 audio at 44.1 kHz, label rows, the variety with its
    players); Skipped for what cannot be used, a file over MAX_SECONDS included."""
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # noqa: BLE001
        # mido and pretty_midi raise many types for broken files
        raise Skipped(
            f"{path}: not a MIDI file that parses ({type(exc).__name__})", "midi_unparsable"
        ) from exc
    if not any(inst.notes for inst in pm.instruments):
        raise Skipped(f"{path}: holds no notes", "midi_without_notes")
    if pm.get_end_time() > MAX_SECONDS:
        raise Skipped(
            f"{path}: lasts {pm.get_end_time():.0f} s, over the {MAX_SECONDS:.0f} s a recording "
            "may "
            "last",
            "midi_too_long",
        )
    programs = sorted({i.program for i in pm.instruments if not i.is_drum})
    rows = vary(pm, var, others, rng)
    if not rows:
        raise Skipped(
            f"{path}: none of its instruments is one of the 11 (GM programs {programs})",
            "midi_without_musicnet_instruments",
        )
    audio, var = play_parts(pm, var, rng, None, library)
    return audio, rows, var


def input_files(inputs: list[Path]) -> list[Path]:
    """MIDI and score files given, and those in given folders (recursively), each once."""
    out = []
    for p in inputs:
        if p.is_dir():
            out += sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in INPUT_SUFFIXES
            )
        else:
            out.append(p)
    return list(dict.fromkeys(out))


@dataclass
class RenderResult:
    ids: dict[str, list[str]]
    seconds: float
    skipped: Counter
    details: list[str]


def render(
    inputs: list[Path],
    out: Path,
    soundfonts: list[Path] | None = None,
    test_fraction: float = TEST_FRACTION,
    others: str = OTHERS[0],
    seed: int = 0,
    overwrite: bool = False,
    varied: bool = True,
    library: Path | None = None,
    corpus: tuple[str, ...] = (),
    seconds: float = EXCERPT_S,
    excerpts: int = 1,
    arrangement: Arrangement = Arrangement(),
    only: tuple[str, ...] = (),
    hold_out: tuple[str, ...] = (),
) -> RenderResult:
    """Render MIDI files and scores (files or folders, recursively; `corpus`: music21's corpus by
    composer) into a MusicNet-layout dataset under `out`. A MIDI file is one recording; a score
    gives `excerpts` recordings of `seconds`, each orchestrated anew (see scores.py). `library`: an
    instrument library folder whose players are drawn per part (else `soundfonts`, one per
    recording); `only` / `hold_out`: its instruments to play, or those never to play
    (library.select). `varied=False` plays each file as written with a dry, unprocessed sound (see
    Variety.draw). `arrangement` sets a score's parts against each other (their balance and entries;
    see generator.Arrangement). Every argument and input is checked before OUT is touched; a render
    that renders nothing leaves no dataset behind."""
    require_render_extra()
    if others not in OTHERS:
        raise InputError(f"--others must be one of {', '.join(OTHERS)}, not {others!r}")
    if not (np.isfinite(seconds) and 1.0 <= seconds <= MAX_SECONDS):
        raise InputError(f"--seconds must be between 1 and {MAX_SECONDS:.0f}, not {seconds}")
    lib = open_library(library, only, hold_out)
    fonts = [check_soundfont(p) for p in (soundfonts or [default_soundfont()])]
    missing = [p for p in inputs if not Path(p).exists()]
    if missing:
        raise InputError(f"{missing[0]}: no such file or folder")
    files = input_files([Path(p) for p in inputs])
    if corpus:
        from .scores import corpus_files

        files += corpus_files(list(corpus))
    if not files:
        raise InputError(
            f"no MIDI files ({', '.join(MIDI_SUFFIXES)}) or scores ({', '.join(SCORE_SUFFIXES)}) "
            "in the given inputs"
        )
    with dataset_writer(out, overwrite, SOURCE, ("soundfont", "tempo_scale")) as out:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(files))
        n_test = int(round(test_fraction * len(files))) if len(files) > 1 else 0
        folder_of = {files[i]: "test" if k < n_test else "train" for k, i in enumerate(order)}
        base = out / "musicnet" / "musicnet"
        for folder in ("train", "test"):
            for kind in ("data", "labels"):
                (base / f"{folder}_{kind}").mkdir(parents=True, exist_ok=True)
        seeds = np.random.SeedSequence(seed).spawn(len(files))
        meta, ids, skipped, details, total = [], {"train": [], "test": []}, Counter(), [], 0.0
        for i, path in enumerate(files):
            file_rng = np.random.default_rng(seeds[i])
            is_score, parsed = path.suffix.lower() in SCORE_SUFFIXES, None
            for k in range(excerpts if is_score else 1):
                try:
                    if is_score:
                        parsed = parsed or read_parts(path)  # parsed once for all its excerpts
                        ensemble, notes = draw_excerpt(path, parsed, seconds, file_rng, arrangement)
                        audio, rows, var = render_score(
                            notes, file_rng, fonts, varied, lib, arrangement
                        )
                    else:
                        var = Variety.draw(file_rng, fonts, varied)
                        audio, rows, var = render_file(path, var, others, file_rng, lib)
                except Skipped as exc:
                    skipped[exc.reason] += 1
                    details.append(str(exc))
                    log.warning("skipped %s", exc)
                    if exc.reason == "score_excerpts_empty":
                        continue  # the score read: its other excerpts may land on notes
                    break
                rid, folder = (
                    f"{i + 1:05d}" + (f"-{k + 1}" if is_score and excerpts > 1 else ""),
                    folder_of[path],
                )
                write_musicnet_recording(base, folder, rid, audio, REFERENCE_RATE, rows)
                present = sorted({r[2] for r in rows}, key=list(NAME_OF_ID).index)
                meta.append(
                    {
                        "id": rid,
                        "composer": "",
                        "composition": path.stem,
                        "movement": "",
                        "ensemble": ensemble
                        if is_score
                        else "+".join(NAME_OF_ID[p] for p in present),
                        "source": SOURCE,
                        "transcriber": "",
                        "catalog_name": str(path),
                        "seconds": round(len(audio) / REFERENCE_RATE, 2),
                        "others": others,
                        **asdict(var),
                    }
                )
                ids[folder].append(rid)
                total += len(audio) / REFERENCE_RATE
        if not meta:
            # made above, empty: nothing for a corrected command to trip on
            shutil.rmtree(out / "musicnet")
            (out / INCOMPLETE).unlink()
            raise InputError(
                f"none of the {len(files)} inputs could be rendered: " + "; ".join(details[:3])
            )
        finish_dataset(out, meta, [*META_COLUMNS, "others", *(f.name for f in fields(Variety))])
        return RenderResult(ids, total, skipped, details)
