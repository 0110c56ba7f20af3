"""The built-in synthetic dataset: MusicNet layout, determinism, coverage, realistic ranges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicid.errors import InputError
from musicid.pipeline.generator import ENSEMBLES, TIMBRES, choose_ensembles, ensemble_weights
from musicid.pipeline.labels import LABEL_COLUMNS
from musicid.pipeline.synth import render_note, synthesize
from musicid.vocab import INSTRUMENTS, NAMES
from tests.conftest import tree_digest


def test_layout_and_determinism(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    ids = synthesize(a, recordings=6, seconds=2.0, seed=1)
    synthesize(b, recordings=6, seconds=2.0, seed=1, workers=2)  # each recording has its own seed
    synthesize(c, recordings=6, seconds=2.0, seed=2)
    assert tree_digest(a) == tree_digest(b) != tree_digest(c)
    with pytest.raises(InputError, match="already holds a dataset"):
        synthesize(c, recordings=6, seconds=2.0, seed=1)
    with pytest.raises(InputError, match="unknown ensemble"):
        synthesize(c, recordings=6, seconds=2.0, seed=1, ensembles=("Kazoo Trio",), overwrite=True)
    # refused before anything was removed
    assert tree_digest(c) != tree_digest(a) and (c / "musicnet").exists()
    synthesize(c, recordings=6, seconds=2.0, seed=1, overwrite=True)
    assert tree_digest(c) == tree_digest(a)
    base = a / "musicnet" / "musicnet"
    for folder in ("train", "test"):
        for rid in ids[folder]:
            info = sf.info(base / f"{folder}_data" / f"{rid}.wav")
            assert info.samplerate == 44100 and info.channels == 1
            labels = pd.read_csv(base / f"{folder}_labels" / f"{rid}.csv")
            assert tuple(labels.columns) == LABEL_COLUMNS
            assert (
                labels.end_time > labels.start_time
            ).all() and labels.end_time.max() <= info.frames
    meta = pd.read_csv(a / "musicnet_metadata.csv")
    assert list(meta.columns) == [
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
    assert len(meta) == 6 and meta.movement.str.contains(",").all()  # quoted field with a comma


def test_every_instrument_in_train_and_test_within_real_ranges(tmp_path):
    synthesize(tmp_path, recordings=30, seconds=1.5, seed=0)
    base = tmp_path / "musicnet" / "musicnet"
    for folder in ("train", "test"):
        labels = pd.concat(pd.read_csv(p) for p in (base / f"{folder}_labels").glob("*.csv"))
        assert set(labels.instrument) == {i.musicnet_id for i in INSTRUMENTS}, folder
        for i in INSTRUMENTS:
            name = i.name
            pitches = labels.note[labels.instrument == i.musicnet_id]
            assert pitches.between(TIMBRES[name].low, TIMBRES[name].high).all(), name


def test_timbres_differ_beyond_pitch():
    """Same pitch, different instruments: the spectra must differ clearly (pitch alone cannot tell
    them)."""
    rng = np.random.default_rng(0)
    spectra = {}
    for name in ("Violin", "Viola", "Flute", "Clarinet", "Oboe"):
        tone = render_note(name, 72, 22050, rng)
        mag = np.abs(np.fft.rfft(tone[4410:15435]))
        spectra[name] = mag / np.linalg.norm(mag)
    names = list(spectra)
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            assert float(spectra[x] @ spectra[y]) < 0.95, (x, y)


def test_overwrite_never_deletes_a_dataset_synth_did_not_write(tmp_path):
    """A real MusicNet (its metadata names other sources) in OUT survives `synth --overwrite`."""
    synthesize(tmp_path, recordings=4, seconds=1.0, seed=0)
    meta = tmp_path / "musicnet_metadata.csv"
    meta.write_text(meta.read_text().replace("musicid synth", "European Archive", 1))
    before = tree_digest(tmp_path)
    with pytest.raises(InputError, match="did not write"):
        synthesize(tmp_path, recordings=4, seconds=1.0, seed=1, overwrite=True)
    assert tree_digest(tmp_path) == before


def test_balanced_draws_give_every_instrument_its_share():
    """--balance: each instrument holds at least 1/11 of the draw weight (MusicNet's proportions
    give contrabass and harpsichord under 3 %), and a balanced dataset has rare-instrument
    recordings a MusicNet-like one lacks."""
    for balanced, rare_share in ((True, 1 / 11), (False, 0.0)):
        w = ensemble_weights(balanced)
        share = {
            name: sum(
                wi
                for wi, (_, members) in zip(w, ENSEMBLES.values(), strict=True)
                if name in members
            )
            / w.sum()
            for name in NAMES
        }
        assert min(share.values()) >= rare_share - 1e-9
    assert min(share.values()) < 0.03  # the MusicNet-like weights, last in the loop
    counts = {}
    for balanced in (False, True):
        rng = np.random.default_rng(0)
        drawn = choose_ensembles(200, rng, balanced=balanced)[4:]  # after the coverage set
        counts[balanced] = sum("Harpsichord" in ENSEMBLES[e][1] for e in drawn)
    assert counts[True] > 2 * max(counts[False], 1)


def test_an_interrupted_synth_is_refused_by_builds_and_replaced_by_overwrite(tmp_path, monkeypatch):
    from musicid.pipeline import synth as synth_mod
    from musicid.pipeline.cli import app
    from tests.conftest import invoke

    written = []
    real = synth_mod.write_musicnet_recording

    def interrupted(*args):
        if len(written) == 2:
            raise KeyboardInterrupt  # Ctrl-C after two recordings
        written.append(args[2])
        real(*args)

    monkeypatch.setattr(synth_mod, "write_musicnet_recording", interrupted)
    out = tmp_path / "ds"
    r = invoke(app, ["synth", out, "--recordings", "6", "--seconds", "1", "--workers", "1"])
    assert r.exit_code == 130 and "interrupted" in r.output
    monkeypatch.undo()
    r = invoke(app, ["build-shards", out, tmp_path / "shards"])
    assert r.exit_code == 1 and "unfinished dataset (musicid synth was interrupted)" in r.output
    r = invoke(app, ["synth", out, "--recordings", "6", "--seconds", "1", "--workers", "1"])
    assert r.exit_code == 1 and "--overwrite" in r.output
    r = invoke(
        app, ["synth", out, "--recordings", "6", "--seconds", "1", "--workers", "1", "--overwrite"]
    )
    assert r.exit_code == 0, r.output
    assert invoke(app, ["build-shards", out, tmp_path / "shards", "--workers", "1"]).exit_code == 0


def test_no_recording_is_silence_when_a_sparse_line_misses_its_span():
    # a slow woodwind line entering late in 2 s often starts no note inside its span (54 of 200
    # draws here)
    from musicid.pipeline.generator import Arrangement, _draw, score

    late = Arrangement(entries=1.0)
    empty = [i for i in range(200) if not _draw("Solo Oboe", 2.0, np.random.default_rng(i), late)]
    assert empty
    for i in empty:
        notes = score("Solo Oboe", 2.0, np.random.default_rng(i), late)
        assert notes and {n.name for n in notes} == {"Oboe"}
