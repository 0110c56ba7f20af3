"""Instrument players and the instrument library, on sample sets and SFZ files the tests write
themselves (WAV notes from the standard library's `wave` writer), and real scores written by hand as
MusicXML. Needs the render extra (FluidSynth, sfizz, music21), which CI installs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave

import numpy as np
import pandas as pd
import pytest

from musicid.errors import InputError
from musicid.pipeline.cli import app
from tests.conftest import invoke, tree_digest

try:
    import fluidsynth  # noqa: F401
    import music21  # noqa: F401
    import pysfizz  # noqa: F401
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip(
        "no FluidSynth/sfizz/music21 here (make setup installs them; CI always runs these tests)",
        allow_module_level=True,
    )

from musicid.pipeline.fetch import fetch, note_number, write_sfz
from musicid.pipeline.library import LIBRARY_FILE, load_library  # noqa: E402
from musicid.pipeline.players import (  # noqa: E402
    Note,
    Player,
    default_soundfont,  # noqa: E402
    play,
)
from musicid.pipeline.render import render  # noqa: E402
from musicid.pipeline.scores import excerpt, read_parts  # noqa: E402

RATE = 44100


def write_wav_note(path, midi, seconds=2.0):
    """A decaying harmonic tone at `midi`'s pitch, 16-bit PCM through the standard library's
    writer."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3)) * np.exp(-t) * 0.3
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((tone * 32767).astype("<i2").tobytes())


@pytest.fixture()
def library(tmp_path):
    """A library of one sampled violin (notes G3, D4, A4 as WAVs, an SFZ over them) and TimGM6mb."""
    root = tmp_path / "lib"
    folder = root / "my-violin"
    folder.mkdir(parents=True)
    for name, midi in (("G3", 55), ("D4", 62), ("A4", 69)):
        write_wav_note(folder / f"{name}.wav", midi)
    (folder / "notes.txt").write_text("not a sample")
    sfz = write_sfz(folder, "my-violin")
    font = str(default_soundfont())
    entries = [
        {
            "name": "my-violin",
            "kind": "sfz",
            "path": sfz.relative_to(root).as_posix(),
            "instrument": "Violin",
            "source": "test",
            "licence": "CC0",
            "attribution": "tests",
        },
        {
            "name": "TimGM6mb",
            "kind": "sf2",
            "path": font,
            "instrument": "",
            "source": "pretty_midi",
            "licence": "GPL-2.0",
            "attribution": "Tim Brechbill",
        },
    ]
    (root / LIBRARY_FILE).write_text(json.dumps({"format": 1, "instruments": entries}))
    return root


def dominant_hz(audio):
    spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return np.argmax(spec) * RATE / len(audio)


def test_note_names_and_sfz_regions(library, tmp_path):
    assert [note_number(s) for s in ("A4", "As2", "C#3", "Db3", "A0v10", "C8", "x", "F2 v2")] == [
        69,
        46,
        49,
        49,
        21,
        108,
        None,
        None,
    ]
    text = (library / "my-violin" / "my-violin.sfz").read_text()
    assert "sample=G3.wav pitch_keycenter=55 lokey=0 hikey=58" in text
    assert "sample=D4.wav pitch_keycenter=62 lokey=59 hikey=65" in text
    assert "sample=A4.wav pitch_keycenter=69 lokey=66 hikey=127" in text
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no note samples"):
        write_sfz(tmp_path / "empty", "empty")


def test_sfz_player_plays_each_note_at_its_pitch_and_time(library):
    player = Player("v", "sfz", str(library / "my-violin" / "my-violin.sfz"))
    audio = play(player, [Note(0.5, 1.5, 64, 100)], seconds=2.5)
    assert len(audio) == int(2.5 * RATE)
    assert np.abs(audio[: int(0.49 * RATE)]).max() < 1e-6  # nothing before the note
    hz = dominant_hz(audio[int(0.6 * RATE) : int(1.4 * RATE)])
    assert abs(hz - 329.6) < 5  # E4 from the D4 sample, transposed by sfizz
    again = play(player, [Note(0.5, 1.5, 64, 100)], seconds=2.5)
    assert np.array_equal(audio, again)


def test_library_validates_and_draws_players(library, tmp_path):
    lib = load_library(library)
    sampled, fonts = lib.players("Violin")
    assert [p.name for p in sampled] == ["my-violin"] and fonts[0].program == 40
    assert lib.players("Oboe")[0] == [] and lib.players("Oboe")[1][0].program == 68
    drawn = {lib.draw("Violin", np.random.default_rng(i)).kind for i in range(20)}
    assert drawn == {"sfz", "sf2"}
    assert all(p.kind == "sf2" for p in lib.players("")[1])
    data = json.loads((library / LIBRARY_FILE).read_text())
    data["instruments"][0]["instrument"] = "Kazoo"
    (library / LIBRARY_FILE).write_text(json.dumps(data))
    with pytest.raises(InputError, match="Kazoo"):
        load_library(library)
    with pytest.raises(InputError, match="instrument library"):
        load_library(tmp_path / "nowhere")


def test_players_held_out_of_a_library_never_play(library, tmp_path):
    """--hold-out keeps the named instruments silent (validation data can then be played by them
    alone, --players); names must exist, the two options exclude each other, and every class must
    keep a player: each refusal is one line, and nothing is written."""
    base = ["--recordings", "4", "--seconds", "2", "--engine", "sampled", "--library", library]
    base += ["--ensembles", "Solo Violin", "--workers", "1"]
    r = invoke(app, ["synth", tmp_path / "held", *base, "--hold-out", "my-violin"])
    assert r.exit_code == 0, r.output
    played = ";".join(pd.read_csv(tmp_path / "held" / "musicnet_metadata.csv").players)
    assert "my-violin" not in played and "Violin=TimGM6mb:40" in played
    lib = load_library(library, hold_out=("my-violin",))
    assert lib.players("Violin")[0] == [] and lib.players("Violin")[1][0].name == "TimGM6mb:40"
    assert [e.name for e in load_library(library, only=("TimGM6mb",)).entries] == ["TimGM6mb"]
    for options, message in (
        (["--players", "my-violin"], "with only my-violin, nothing plays Piano, Harpsichord"),
        (["--hold-out", "Kazoo"], "no instrument named 'Kazoo'; its instruments: my-violin, TimGM"),
        (["--players", "TimGM6mb", "--hold-out", "my-violin"], "exclude each other"),
    ):
        r = invoke(app, ["synth", tmp_path / "refused", *base, *options])
        assert r.exit_code == 1 and message in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "refused").exists()
    r = invoke(app, ["synth", tmp_path / "refused", "--hold-out", "my-violin"])
    assert r.exit_code == 1 and "sampled engine only" in r.output
    r = invoke(app, ["render", tmp_path / "x.mid", tmp_path / "refused", "--players", "TimGM6mb"])
    assert r.exit_code == 1 and "instruments of a --library" in r.output
    assert not (tmp_path / "refused").exists()


def test_fetch_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(InputError, match="not an instrument library"):
        fetch(tmp_path, apt=False)
    assert (tmp_path / "mine.txt").read_text() == "keep me" and not (
        tmp_path / LIBRARY_FILE
    ).exists()


def test_synth_with_a_library_plays_parts_with_samples_and_others(library, tmp_path):
    out = tmp_path / "data"
    r = invoke(
        app,
        [
            "synth",
            out,
            "--recordings",
            "6",
            "--seconds",
            "2",
            "--engine",
            "sampled",
            "--library",
            library,
            "--others",
            "1.0",
            "--solo",
            "0.5",
            "--ensembles",
            "Solo Violin,Piano Trio",
            "--workers",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    meta = pd.read_csv(out / "musicnet_metadata.csv")
    players = ";".join(meta.players)
    assert "Violin=my-violin" in players and "other=TimGM6mb:" in players
    assert all("other=" in p for p in meta.players)  # --others 1.0: every recording has one
    labels = pd.concat(pd.read_csv(p) for p in out.rglob("*_labels/*.csv"))
    # others never labelled
    assert set(labels.instrument) <= {1, 7, 41, 42, 43, 44, 61, 69, 71, 72, 74}
    r = invoke(app, ["synth", tmp_path / "x", "--recordings", "4", "--others", "0.5"])
    assert r.exit_code == 1 and "sampled engine only" in r.output


def test_sampled_renders_are_identical_across_processes(library, tmp_path):
    """synth and render in separate processes, one importing pedalboard before FluidSynth's first
    synth (which changed FluidSynth's 16-bit dither): the same files, byte for byte, for one and for
    two workers."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    for program, low in ((40, 67), (42, 48), (0, 60)):
        inst = pretty_midi.Instrument(program=program)
        inst.notes = [pretty_midi.Note(80, low + k % 5, 0.3 * k, 0.3 * k + 0.5) for k in range(8)]
        pm.instruments.append(inst)
    pm.write(str(tmp_path / "trio.mid"))
    outs = []
    for k, workers in enumerate(("1", "1", "2")):
        pre = "import pedalboard; " if k == 1 else ""
        for command in (
            f"'synth', '{tmp_path}/d{k}', '--recordings', '3', '--seconds', '2', '--engine', "
            f"'sampled', '--library', '{library}', '--workers', '{workers}'",
            f"'render', '{tmp_path}/trio.mid', '{tmp_path}/r{k}'",
        ):
            code = (
                f"{pre}from musicid.pipeline.cli import main; import sys; "
                f"sys.argv = ['x', {command}]; main()"
            )
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        outs.append((tree_digest(tmp_path / f"d{k}"), tree_digest(tmp_path / f"r{k}")))
    assert outs[0] == outs[1] == outs[2]


QUARTET = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1"><part-list>{parts}</part-list>{music}</score-partwise>"""


def write_musicxml(path, pitches):
    """A hand-written MusicXML score: one part per (step, octave) list, quarter notes, 4/4."""
    parts = "".join(
        f'<score-part id="P{i}"><part-name>V{i}</part-name></score-part>'
        for i in range(len(pitches))
    )
    music = ""
    for i, notes in enumerate(pitches):
        measures = ""
        for m in range(0, len(notes), 4):
            attrs = (
                (
                    "<attributes><divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type></time>"
                    "</attributes>"
                )
                if m == 0
                else ""
            )
            body = "".join(
                f"<note><pitch><step>{s}</step><octave>{o}</octave></pitch><duration>1</duration>"
                "<type>quarter</type></note>"
                for s, o in notes[m : m + 4]
            )
            measures += f'<measure number="{m // 4 + 1}">{attrs}{body}</measure>'
        music += f'<part id="P{i}">{measures}</part>'
    path.write_text(QUARTET.format(parts=parts, music=music))
    return path


def test_scores_are_read_and_orchestrated_onto_ensembles(tmp_path):
    voices = [
        [("E", 5), ("D", 5)] * 8,
        [("C", 5), ("B", 4)] * 8,
        [("G", 4), ("G", 4)] * 8,
        [("C", 3), ("G", 2)] * 8,
    ]
    path = write_musicxml(tmp_path / "chorale.musicxml", voices)
    parts, keyboard = read_parts(path)
    assert len(parts) == 4 and not keyboard and parts[0][:2] == [(0.0, 1.0, 76), (1.0, 2.0, 74)]
    for seed in range(6):
        ensemble, notes = excerpt(path, (parts, keyboard), 4.0, np.random.default_rng(seed))
        names = {n.name for n in notes}
        assert len(names) >= 3 and ensemble
        high = max(names, key=lambda n: np.mean([x.pitch for x in notes if x.name == n]))
        # the top part goes to a high voice
        assert np.mean([x.pitch for x in notes if x.name == high]) > 60
        assert all(0 <= n.start < n.end <= 4.0 for n in notes)
    (tmp_path / "broken.mxl").write_bytes(b"PK not really")
    out = tmp_path / "out"
    result = render(
        [path, tmp_path / "broken.mxl"], out, seconds=4.0, excerpts=2, test_fraction=0.0
    )
    assert len(result.ids["train"]) == 2 and result.skipped["scores_unreadable"] == 1
    meta = pd.read_csv(out / "musicnet_metadata.csv")
    assert meta.id.tolist() == ["00001-1", "00001-2"] and meta.ensemble.notna().all()


def test_a_failed_render_leaves_nothing_behind(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd not midi")
    out = tmp_path / "out"
    r = invoke(app, ["render", bad, out])
    assert r.exit_code == 1 and "could be rendered" in r.output
    assert list(out.iterdir()) == []
    voices = [[("C", 5), ("D", 5)] * 4, [("C", 3), ("G", 2)] * 4]
    good = write_musicxml(tmp_path / "good.musicxml", voices)
    r = invoke(app, ["render", good, out, "--seconds", "2"])
    assert r.exit_code == 0, r.output


def test_bad_lengths_are_refused_before_anything_is_touched(tmp_path):
    out = tmp_path / "data"
    assert invoke(app, ["synth", out, "--recordings", "2", "--seconds", "1"]).exit_code == 0
    before = tree_digest(out)
    r = invoke(app, ["synth", out, "--recordings", "2", "--seconds", "inf", "--overwrite"])
    assert r.exit_code == 1 and "--seconds" in r.output and tree_digest(out) == before
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=40)
    inst.notes.append(pretty_midi.Note(90, 60, 0.0, 7200.0))  # one note of two hours
    pm.instruments.append(inst)
    pm.write(str(tmp_path / "long.mid"))
    r = invoke(app, ["render", tmp_path / "long.mid", tmp_path / "r"])
    assert r.exit_code == 1 and "over the 3600 s" in r.output


def test_a_long_recording_is_played_in_blocks(library):
    """Longer than two blocks: every part is heard where its notes are, silence elsewhere, peak
    under 0.98."""
    from musicid.pipeline.generator import ScoreNote
    from musicid.pipeline.library import load_library
    from musicid.pipeline.performance import render_score
    from musicid.pipeline.players import CHUNK

    notes = [
        ScoreNote("Violin", 1.0, 2.0, 64, 0, 1, "Quarter", 0.5),
        ScoreNote("Cello", 13.0, 14.0, 48, 12, 13, "Quarter", 0.5),
    ]
    take, rows, var = render_score(
        notes,
        np.random.default_rng(1),
        [default_soundfont()],
        varied=False,
        library=load_library(library),
    )
    audio = np.asarray(take)
    assert len(take) == len(audio) > 2 * CHUNK and np.abs(audio).max() <= 0.98
    rms = {
        name: np.sqrt(np.mean(audio[int(a * RATE) : int(b * RATE)] ** 2))
        for name, a, b in (("violin", 1.1, 1.9), ("gap", 6.0, 10.0), ("cello", 13.1, 13.9))
    }
    assert rms["violin"] > 100 * rms["gap"] and rms["cello"] > 100 * rms["gap"], rms
    assert "Violin=" in var.players and "Cello=" in var.players


def test_interrupted_workers_and_a_broken_soundfont_say_one_line(tmp_path):
    """In real processes: Ctrl-C during `synth --workers 2` is one `interrupted` line with no worker
    traceback, and a corrupt SoundFont one error line, without FluidSynth's or libinstpatch's own
    logging."""
    import signal
    import time

    cmd = [
        sys.executable,
        "-m",
        "musicid.pipeline",
        "synth",
        str(tmp_path / "ds"),
        "--recordings",
        "400",  # more than a loaded machine renders before the interrupt lands
        "--seconds",
        "3",
        "--engine",
        "sampled",
        "--workers",
        "2",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # as from a terminal: a test run started in the background of a script inherits SIGINT
        # ignored, and Python then never turns Ctrl-C into KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    while not list((tmp_path / "ds").rglob("*.wav")) and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    _, err = proc.communicate(timeout=60)
    assert (
        proc.returncode == 130
        and "Traceback" not in err
        and err.strip().endswith("error: interrupted")
    ), err
    (tmp_path / "junk.sf2").write_bytes(b"RIFF" + bytes(range(256)) * 2)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "musicid.pipeline",
            "synth",
            str(tmp_path / "x"),
            "--recordings",
            "2",
            "--engine",
            "sampled",
            "--soundfont",
            str(tmp_path / "junk.sf2"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'junk.sf2'}: not a SoundFont that FluidSynth can load (SF2/SF3)"
    ], done.stderr
