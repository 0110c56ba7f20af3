"""Real scores (MusicXML, Humdrum kern: string quartets, chorales, keyboard music), read with
music21 and orchestrated onto MusicNet's ensembles: a recording is a seeded excerpt of a score whose
parts are given to the instruments of an ensemble with as many voices, highest part to the highest
instrument, each part moved by octaves into its instrument's range; keyboard music (one part on two
staves) goes to piano or harpsichord. The notes come out as the generator's ScoreNotes, so the
sampled engine plays them with the same variety."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicid.errors import InputError

from .generator import ENSEMBLES, NOTE_VALUES, TIMBRES, Arrangement, ScoreNote, within

SCORE_SUFFIXES = (".mxl", ".musicxml", ".xml", ".krn")
CORPUS_COMPOSERS = ("haydn", "mozart", "beethoven", "bach", "schumann_robert", "joplin", "handel")
# Four-voice groups beyond MusicNet's own four-member ensembles: a chorale or a quartet is as much
# music for winds or mixed groups, and rare classes (oboe, flute, contrabass) gain real
# part-writing.
EXTRA_GROUPS = (
    ("Flute", "Oboe", "Clarinet", "Bassoon"),
    ("Violin", "Viola", "Cello", "Contrabass"),
    ("Oboe", "Violin", "Viola", "Cello"),
    ("Flute", "Violin", "Viola", "Cello"),
    ("Flute", "Clarinet", "Horn", "Bassoon"),
    ("Oboe", "Clarinet", "Bassoon", "Contrabass"),
    ("Violin", "Clarinet", "Horn", "Cello"),
    ("Flute", "Oboe"),
    ("Violin", "Cello"),
    ("Clarinet", "Bassoon"),
    ("Flute", "Viola", "Contrabass"),
    ("Oboe", "Horn", "Bassoon"),
)
KEYBOARDS = (("Piano", 0.75), ("Harpsichord", 0.25))
EXCERPT_DRAWS = 5  # excerpts drawn before one that lands in a long rest is given up


class Skipped(InputError):
    """An input (a score, a MIDI file, an excerpt) that cannot be rendered; `reason` is the count's
    name in the summary."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


# quarter notes per minute, drawn per excerpt: marks are rare in the corpus
TEMPO_BPM = (56.0, 120.0)


def _music21():
    try:
        import music21
    except ImportError as exc:
        raise InputError(f"scores need music21 ({exc}); pip install 'musicid[render]'") from exc
    return music21


def corpus_composers() -> dict[str, list[Path]]:
    """music21's corpus by composer (or collection): the folders at the top of its corpus, with
    their scores (MusicXML and kern). Only these names are composers; no other part of a path is."""
    music21 = _music21()
    top = Path(music21.__file__).parent / "corpus"
    out: dict[str, list[Path]] = {}
    for p in map(Path, music21.corpus.getCorePaths()):
        if p.suffix.lower() in SCORE_SUFFIXES and top in p.parents:
            out.setdefault(p.relative_to(top).parts[0], []).append(p)
    return out


def corpus_files(composers: list[str]) -> list[Path]:
    """music21's corpus scores of these composers (MusicXML and kern; a work in both is taken once);
    an unknown name is refused with the valid ones."""
    known = corpus_composers()
    unknown = [name for name in composers if name not in known]
    if unknown:
        raise InputError(
            f"--corpus: {unknown[0]!r} is not a composer of music21's corpus; choose from "
            f"{', '.join(sorted(known))}"
        )
    files = []
    for name in composers:
        by_work = {}
        for p in sorted(known[name]):
            by_work.setdefault(p.with_suffix(""), p)
        files += by_work.values()
    return files


def read_parts(path: Path) -> tuple[list[list[tuple[float, float, int]]], bool]:
    """Each part's notes as (start, end, pitch) in quarter notes, ties merged, chords split; and
    whether the score is keyboard music (one instrument on two staves)."""
    music21 = _music21()
    converter, stream = music21.converter, music21.stream
    try:
        # parsed anew: music21's cache is pickle
        score = converter.parse(str(path), forceSource=True)
    except Exception as exc:  # noqa: BLE001 - music21's parsers raise many types for broken files
        raise Skipped(
            f"{path}: not a score music21 can read ({type(exc).__name__})", "scores_unreadable"
        ) from exc
    parts = list(score.parts) if hasattr(score, "parts") else []
    out = []
    for part in parts:
        notes = []
        for n in part.stripTies().flatten().notes:
            start, length = float(n.offset), float(n.duration.quarterLength)
            if length <= 0:
                continue
            notes += [(start, start + length, int(p.midi)) for p in n.pitches]
        if notes:
            out.append(sorted(notes))
    keyboard = len(parts) == 2 and all(isinstance(p, stream.PartStaff) for p in parts)
    return out, keyboard


def _groups(n: int) -> list[tuple[str, ...]]:
    own = [
        m
        for _, m in ENSEMBLES.values()
        if len(m) == n and "Piano" not in m and "Harpsichord" not in m
    ]
    return own + [g for g in EXTRA_GROUPS if len(g) == n]


def _centre(name: str) -> float:
    t = TIMBRES[name]
    return (t.low + t.high) / 2


def _fit(notes: list[tuple[float, float, int]], name: str) -> list[tuple[float, float, int]]:
    """Octave moves that put the part's median in its instrument's range, then each stray note
    inside."""
    t = TIMBRES[name]
    median = float(np.median([p for *_, p in notes]))
    shift = 12 * int(np.round((np.clip(median, t.low + 6, t.high - 6) - median) / 12))
    fitted = []
    for s, e, p in notes:
        p += shift
        while p < t.low:
            p += 12
        while p > t.high:
            p -= 12
        fitted.append((s, e, p))
    return fitted


def orchestrate(
    parts: list, keyboard: bool, rng: np.random.Generator
) -> tuple[str, list[tuple[str, list]]]:
    """(ensemble name, [(instrument, notes)]) for a score's parts."""
    if keyboard or len(parts) == 1:
        names, weights = zip(*KEYBOARDS, strict=True)
        name = str(rng.choice(names, p=weights)) if keyboard else str(rng.choice(list(TIMBRES)))
        merged = sorted(n for part in parts for n in part)
        return f"Solo {name}", [(name, _fit(merged, name))]
    n = len(parts)
    while not _groups(n):  # more parts than any group: the outer voices and the inner ones that fit
        parts = [*parts[: n - 2], parts[-1]]
        n -= 1
    groups = _groups(n)
    members = groups[rng.integers(len(groups))]
    by_pitch = sorted(range(n), key=lambda i: -np.median([p for *_, p in parts[i]]))
    voices = sorted(members, key=_centre, reverse=True)
    assigned = [(voices[k], _fit(parts[i], voices[k])) for k, i in enumerate(by_pitch)]
    named = [e for e, (_, m) in ENSEMBLES.items() if sorted(m) == sorted(members)]
    return (named[0] if named else "+".join(members)), assigned


def excerpt(
    path: Path,
    score: tuple[list, bool],
    seconds: float,
    rng: np.random.Generator,
    arrangement: Arrangement = Arrangement(),
) -> tuple[str, list]:
    """A seeded excerpt of `seconds` from a score (`read_parts` of `path`) at a drawn tempo,
    orchestrated, with per-part balance, phrase dynamics and entries as `arrangement` sets the
    generator's own scores: (ensemble, ScoreNotes)."""
    parts, keyboard = score
    if not parts:
        raise Skipped(f"{path}: the score holds no notes", "scores_without_notes")
    ensemble, voices = orchestrate(parts, keyboard, rng)
    beat = 60.0 / rng.uniform(*TEMPO_BPM)
    end_ql = max(e for _, notes in voices for _, e, _ in notes)
    span_ql = seconds / beat
    offset = rng.uniform(0, max(end_ql - span_ql, 0.0))
    dyn_rate, dyn_phase = rng.uniform(0.03, 0.15), rng.uniform(0, 6.3)
    out = []
    for name, notes in voices:
        gain = arrangement.part_gain(rng, len(voices))
        timed = [
            ((s - offset) * beat, min((e - offset) * beat, seconds), s, e, p) for s, e, p in notes
        ]
        for start, end, s, e, p in within(timed, arrangement.part_span(rng, seconds)):
            if start < 0 or start >= seconds or end - start < 0.05:
                continue
            value = min(NOTE_VALUES, key=lambda v: abs(v[0] - (e - s)))[1]
            loud = (
                gain
                * rng.uniform(0.6, 1.0)
                * (0.6 + 0.4 * np.sin(2 * np.pi * dyn_rate * start + dyn_phase))
            )
            out.append(
                ScoreNote(
                    name,
                    start,
                    end,
                    p,
                    round(s - offset, 4),
                    round(e - offset, 4),
                    value,
                    float(loud),
                )
            )
    return ensemble, sorted(out, key=lambda n: (n.start, n.pitch))


def draw_excerpt(
    path: Path,
    score: tuple[list, bool],
    seconds: float,
    rng: np.random.Generator,
    arrangement: Arrangement = Arrangement(),
) -> tuple[str, list]:
    """An excerpt with notes: one that lands in a long rest is drawn again, up to EXCERPT_DRAWS
    times, then given up as `score_excerpts_empty` (the score itself stays counted as read)."""
    for _ in range(EXCERPT_DRAWS):
        ensemble, notes = excerpt(path, score, seconds, rng, arrangement)
        if notes:
            return ensemble, notes
    raise Skipped(
        f"{path}: {EXCERPT_DRAWS} excerpts of {seconds:g} s drawn, each in a rest",
        "score_excerpts_empty",
    )
