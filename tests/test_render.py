"""`render` on tiny MIDI files the tests write: MusicNet layout and labels, variety, others, bad
input, and the rendered root as a further root of build-shards. Needs FluidSynth (`make setup`
installs it as root)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicid.errors import InputError
from musicid.pipeline.build import BuildConfig, build_shards
from musicid.pipeline.cli import app
from musicid.pipeline.labels import LABEL_COLUMNS, read_labels
from tests.conftest import invoke, tree_digest

try:
    import fluidsynth  # noqa: F401
    import pretty_midi
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip(
        "no FluidSynth here (make setup installs libfluidsynth3 as root; CI always runs these "
        "tests)",
        allow_module_level=True,
    )

from musicid.pipeline.players import default_soundfont  # noqa: E402
from musicid.pipeline.render import render  # noqa: E402


def write_midi(path, parts, seconds=3.0):
    """parts: [(GM program, is_drum, [(start, end, pitch), ...])]; default: a 3 s phrase."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    for program, drum, notes in parts:
        inst = pretty_midi.Instrument(program=program, is_drum=drum)
        inst.notes = [pretty_midi.Note(velocity=90, pitch=p, start=s, end=e) for s, e, p in notes]
        pm.instruments.append(inst)
    pm.write(str(path))
    return path


def phrase(start, end, low=60):
    return [
        (start + 0.25 * k, start + 0.25 * k + 0.22, low + k % 7)
        for k in range(int((end - start) / 0.25))
    ]


@pytest.fixture()
def midis(tmp_path):
    src = tmp_path / "midi"
    (src / "nested").mkdir(parents=True)
    write_midi(src / "quartet.mid", [(40, False, phrase(0, 3, 67)), (42, False, phrase(0, 3, 48))])
    write_midi(
        src / "nested" / "wind.mid", [(73, False, phrase(0, 2, 72)), (70, False, phrase(1, 3, 40))]
    )
    write_midi(src / "piano.midi", [(0, False, phrase(0, 3, 60)), (0, True, phrase(0, 3, 36))])
    return src


def test_render_writes_musicnet_layout_deterministically(midis, tmp_path):
    out = tmp_path / "rendered"
    result = render([midis], out, test_fraction=0.34, seed=1)
    assert len(result.ids["train"]) == 2 and len(result.ids["test"]) == 1 and not result.skipped
    base = out / "musicnet" / "musicnet"
    meta = pd.read_csv(out / "musicnet_metadata.csv")
    assert list(meta.columns[:9]) == [
        "id",
        "composer",
        "composition",
        "movement",
        "ensemble",
        "source",
        "transcriber",
        "catalog_name",
        "seconds",
    ]
    assert {"soundfont", "tempo_scale", "transpose", "reverb_room", "gain_db", "noise_dbfs"} <= set(
        meta.columns
    )
    assert set(meta.ensemble) == {"Violin+Cello", "Bassoon+Flute", "Piano"}
    for folder in ("train", "test"):
        for rid in result.ids[folder]:
            info = sf.info(base / f"{folder}_data" / f"{rid}.wav")
            assert info.samplerate == 44100 and info.channels == 1
            labels = pd.read_csv(base / f"{folder}_labels" / f"{rid}.csv")
            assert tuple(labels.columns) == LABEL_COLUMNS
            assert (
                set(labels.instrument) <= {1, 41, 43, 71, 74}
                and labels.end_time.max() <= info.frames
            )
            notes, dropped = read_labels(base / f"{folder}_labels" / f"{rid}.csv", info.frames)
            assert len(notes) == len(labels) and not dropped
    again = tmp_path / "again"
    render([midis], again, test_fraction=0.34, seed=1)
    assert tree_digest(again / "musicnet") == tree_digest(out / "musicnet")
    with pytest.raises(InputError, match="already holds a dataset"):
        render([midis], out)
    render([midis], out, seed=2, overwrite=True)  # its own dataset: replaced
    assert tree_digest(again / "musicnet") != tree_digest(out / "musicnet")


def test_others_are_dropped_or_kept_unlabelled(tmp_path):
    midi = write_midi(
        tmp_path / "brass.mid", [(40, False, phrase(0, 1, 67)), (56, False, phrase(2.5, 4.5, 60))]
    )
    energy = {}
    for mode in ("drop", "unlabelled"):
        out = tmp_path / mode
        render([midi], out, test_fraction=0.0, others=mode)
        wav = out / "musicnet" / "musicnet" / "train_data" / "00001.wav"
        labels = pd.read_csv(wav.parent.parent / "train_labels" / "00001.csv")
        assert set(labels.instrument) == {41}  # the trumpet (GM 56) is never labelled
        audio, sr = sf.read(wav)
        # the trumpet sounds here at any tempo scale, the violin not
        late = audio[int(3.0 * sr) : int(3.8 * sr)]
        energy[mode] = float(np.sqrt(np.mean(late**2))) if len(late) else 0.0
    assert energy["unlabelled"] > 0.01 and energy["unlabelled"] > 10 * energy["drop"]


def test_bad_midi_and_soundfonts(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "broken.mid").write_bytes(b"MThd not really a midi file")
    write_midi(src / "empty.mid", [(40, False, [])])
    write_midi(src / "trumpet.mid", [(56, False, phrase(0, 1))])
    write_midi(src / "good.mid", [(71, False, phrase(0, 1))])
    result = render([src], tmp_path / "out", test_fraction=0.0)
    assert result.skipped == {
        "midi_unparsable": 1,
        "midi_without_notes": 1,
        "midi_without_musicnet_instruments": 1,
    }
    assert len(result.ids["train"]) == 1
    with pytest.raises(InputError, match="no such SoundFont"):
        render([src], tmp_path / "o2", soundfonts=[tmp_path / "nope.sf2"])
    (tmp_path / "bad.sf2").write_bytes(b"RIFF" + os.urandom(200))
    r = invoke(app, ["render", src, tmp_path / "o3", "--soundfont", tmp_path / "bad.sf2"])
    assert r.exit_code == 1 and "not a SoundFont that FluidSynth can load" in r.output
    r = invoke(app, ["render", src / "broken.mid", tmp_path / "o4"])
    assert r.exit_code == 1 and "none of the 1 inputs could be rendered" in r.output


def test_a_rendered_root_adds_to_training(synth_root, midis, tmp_path):
    r = invoke(
        app,
        [
            "render",
            midis,
            tmp_path / "rendered",
            "--test-fraction",
            "0.34",
            "--others",
            "unlabelled",
        ],
    )
    assert (
        r.exit_code == 0
        and "rendered 2 train + 1 test recordings" in r.output
        and "x real time" in r.output
    )
    m = build_shards(
        [synth_root, tmp_path / "rendered"],
        tmp_path / "shards",
        BuildConfig(shards_per_split=2, val_fraction=0.2),
    ).manifest
    rendered = set(m.sources[1]["recordings"])
    assert len(rendered) == 3 and rendered <= set(m.splits["train"].recordings)
    assert m.sources[1]["instrument_positives"]["Flute"] > 0


def test_synth_sampled_engine_plays_the_scores_through_the_soundfont(tmp_path):
    r = invoke(
        app, ["synth", tmp_path / "s", "--recordings", "4", "--seconds", "3", "--engine", "sampled"]
    )
    assert r.exit_code == 0, r.output
    meta = pd.read_csv(tmp_path / "s" / "musicnet_metadata.csv")
    assert set(meta.engine) == {"sampled"} and meta.soundfont.str.endswith("TimGM6mb.sf2").all()
    base = tmp_path / "s" / "musicnet" / "musicnet"
    wav = sorted((base / "train_data").glob("*.wav"))[0]
    audio, sr = sf.read(wav)
    labels = pd.read_csv(base / "train_labels" / f"{wav.stem}.csv")
    assert (
        sr == 44100
        and np.abs(audio).max() > 0.01
        and len(labels) > 0
        and labels.end_time.max() <= len(audio)
    )
    m = build_shards(
        tmp_path / "s", tmp_path / "shards", BuildConfig(shards_per_split=1, val_fraction=0.0)
    ).manifest
    assert m.skipped == {} and m.splits["train"].samples > 0


def test_synth_sampled_takes_soundfonts_and_plays_scores_dry_without_variety(tmp_path):
    font = tmp_path / "fonts" / "copy.sf2"
    font.parent.mkdir()
    shutil.copy(default_soundfont(), font)
    args = ["synth", "--recordings", "3", "--seconds", "2", "--engine", "sampled", "--seed", "3"]
    r = invoke(app, [*args[:1], tmp_path / "dry", *args[1:], "--soundfont", font, "--no-variety"])
    assert r.exit_code == 0, r.output
    dry = pd.read_csv(tmp_path / "dry" / "musicnet_metadata.csv")
    assert (
        (dry.soundfont == str(font)).all()
        and (dry.tempo_scale == 1).all()
        and (dry["transpose"] == 0).all()
    )
    assert (
        (dry.reverb_wet == 0).all()
        and (dry.velocity_jitter == 0).all()
        and np.isneginf(dry.noise_dbfs).all()
    )
    r = invoke(app, [*args[:1], tmp_path / "varied", *args[1:], "--soundfont", font])
    assert r.exit_code == 0, r.output
    varied = pd.read_csv(tmp_path / "varied" / "musicnet_metadata.csv")
    assert (varied.tempo_scale != 1).all() and (varied.reverb_wet > 0).all()
    # the same seed gives the same scores: the dry labels are the written notes, the varied ones are
    # moved
    dry_varied = ("dry", "varied")
    first = sorted((tmp_path / "dry" / "musicnet" / "musicnet" / "train_labels").glob("*.csv"))[
        0
    ].name
    notes = {
        k: pd.read_csv(tmp_path / k / "musicnet" / "musicnet" / "train_labels" / first)
        for k in dry_varied
    }
    assert len(notes["dry"]) == len(notes["varied"]) and not notes["dry"].start_time.equals(
        notes["varied"].start_time
    )
    r = invoke(app, [*args[:1], tmp_path / "x", *args[1:], "--soundfont", tmp_path / "nope.sf2"])
    assert r.exit_code == 1 and "nope.sf2: no such SoundFont" in r.output
    r = invoke(app, ["synth", tmp_path / "y", "--recordings", "2", "--soundfont", font])
    assert r.exit_code == 1 and "sampled engine only" in r.output and not (tmp_path / "y").exists()


def test_sampled_engine_mixes_each_part_at_its_score_level():
    """A SoundFont's presets differ in volume and decay (TimGM6mb's held piano ends ~8 dB under its
    cello): the sampled engine scales each part to its score loudness over the time it is held, so
    parts the labels call present are heard at the level the score gives them."""
    from musicid.pipeline.generator import ScoreNote
    from musicid.pipeline.performance import render_score

    def levels_db(piano_loudness):
        notes = [
            ScoreNote("Piano", 0.0, 1.0, 60, 0.0, 1.0, "Quarter", piano_loudness),
            ScoreNote("Cello", 1.5, 2.5, 48, 1.5, 2.5, "Quarter", 0.5),
        ]
        take, rows, _ = render_score(
            notes, np.random.default_rng(0), [default_soundfont()], varied=False
        )
        audio = np.asarray(take)
        rms = [np.sqrt(np.mean(audio[r[0] : r[1]] ** 2)) for r in rows]
        return 20 * np.log10(rms[0] / rms[1])

    assert abs(levels_db(0.5)) < 1.0  # equal score loudness: equal level
    assert abs(levels_db(0.25) + 6.0) < 1.0  # half the loudness: 6 dB under
