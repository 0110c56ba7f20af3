"""`make model` (`python -m musicid.recipes.model`): the recipe of the shipped model, on the
instrument library.

fetch instruments -> synth (generated scores, sampled instruments, outsiders, solos, set against
each other as real ensembles are) -> render (music21's corpus: quartets, chorales, keyboard music)
-> build-shards -> train -> evaluate -> export into musicid/model/ -> its calibration fitted again
on generated 20-s ensembles (synth-cal, shards-cal) -> real recordings read for the card.

Each step runs the real CLI and, when it finishes, leaves a stamp (`OUT/.done-<step>`, JSON)
recording the command it ran. A rerun skips a step whose stamp records the same command, so an
interrupted recipe goes on where it stopped (build-shards and training resume inside their step as
well); a step whose settings changed, whose stamp records none (a stamp made by hand), or that
follows a step that ran again, runs again over its earlier outputs, so that the model card always
describes what was trained. The same seed gives the same data and shards; `--clips DIR` (realdev's
shape) and `--mixtures DIR` (realmix-dev's) also score the model on real recordings, figures for the
card, never used to choose anything.
"""

from __future__ import annotations

import json
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import typer

from musicid.cli import command, new_app, run
from musicid.errors import MusicidError
from musicid.files import write_json_atomic
from musicid.pipeline.library import load_library
from musicid.pipeline.scores import CORPUS_COMPOSERS
from musicid.pipeline.workers import WORKERS
from musicid.run import CARD, SHIPPED, read_card
from musicid.train.trainer import TrainConfig

from . import CONDITIONS, LR
from . import exe as bin_of
from .calibrate import recalibrate
from .export import export_model

COMPOSERS = ",".join(CORPUS_COMPOSERS)
# The data and training of the shipped model: parts within 6 dB over the whole recording, an
# outsider part in 30 % of recordings. Set against each other as real ensembles are (--spread-db 15
# --entries 0.4 --others 0.5 --others-only 0.1), 5 epochs made a model that named more
# outsiders right but fewer real solo notes (docs/shipped-model.md): not the default.
SPREAD_DB, ENTRIES, OTHERS, OTHERS_DB, OTHERS_ONLY, SOLO = 6.0, 0.0, 0.3, 0.0, 0.0, 0.3
EPOCHS = 4
# The calibration's own data: 20-s generated ensembles (events in real music last longer than the
# training recordings' 5 s), arranged as real ensembles are, with their own seed; never trained on.
CAL_RECORDINGS, CAL_SECONDS, CAL_SEED = 300, 20.0, 12
CAL_ARRANGEMENT = ("--spread-db", "15", "--entries", "0.4", "--others", "0.5", "--others-db", "6")
CAL_ARRANGEMENT += ("--others-only", "0.1")
# what the card records of the run's training settings
TRAINING_RECORD = ("epochs", "lr", "conditions", "mixup", "seed", "batch_size", "loss")
TRAINING_RECORD += ("steps_per_epoch",)
app = new_app()


NOT_SETTINGS = ("--workers",)  # options that change how fast a step runs, not what it makes


def _settings(cmd: list[str]) -> list[str]:
    """What a step's stamp records: its command without the environment's paths and without
    NOT_SETTINGS."""
    out, skip = [Path(cmd[0]).name], False
    for arg in cmd[1:]:
        if skip or arg in NOT_SETTINGS:
            skip = not skip
            continue
        out.append(arg)
    return out


def _read_stamp(stamp: Path) -> dict | None:
    """A stamp's record, or None when there is none or it records no command (made by hand,
    damaged)."""
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("command"), list) else None


class Steps:
    """The recipe's steps, in order: each one skipped when its stamp records the command it would
    run now and no step before it ran in this invocation; otherwise run (again)."""

    def __init__(self, out: Path):
        self.out, self.ran, self.took = out, False, {}

    def run(
        self, name: str, cmd: list[str], again: tuple[str, ...] = (), resume: tuple[str, ...] = ()
    ) -> None:
        """`again`: arguments that make the command start over the outputs of an earlier run of this
        step; `resume`: arguments that continue an interrupted run of it (when it is not started
        over)."""
        stamp = self.out / f".done-{name}"
        recorded = _read_stamp(stamp)
        if not self.ran and recorded is not None and recorded["command"] == _settings(cmd):
            print(
                f"=== {name}: done before ({stamp}, {recorded.get('seconds', '?')} s)", flush=True
            )
            self.took[name] = recorded.get("seconds", 0)
            return
        over = self.ran or stamp.exists()
        if stamp.exists():
            why = (
                "a step before it ran again"
                if self.ran
                else "its stamp records no command (made by hand?)"
                if recorded is None
                else "its settings changed"
            )
            print(f"=== {name}: done before, but {why}: running it again", flush=True)
            stamp.unlink()
        full = [*cmd, *(again if over else resume)]
        print(f"\n=== {name}\n$ {' '.join(full)}", flush=True)
        t = time.perf_counter()
        if subprocess.run(full).returncode != 0:
            raise MusicidError(
                f"recipe step {name} failed; fix the cause and rerun: finished steps are kept, and "
                "a "
                "step whose settings you change runs again"
            )
        self.ran = True
        self.took[name] = round(time.perf_counter() - t)
        stamp.write_text(json.dumps({"command": _settings(cmd), "seconds": self.took[name]}) + "\n")

    def rerun(self, name: str, cmd: list[str]) -> None:
        """Run a step whatever its stamp says: one that reads what this invocation wrote anew (the
        exported model)."""
        (self.out / f".done-{name}").unlink(missing_ok=True)
        self.run(name, cmd)


@app.command()
@command
def recipe(
    out: Path = typer.Option(
        Path("build/model"), help="Folder for the library, data, shards and run."
    ),
    export: Path = typer.Option(
        None, help="Where the model goes (default: the package's musicid/model/)."
    ),
    recordings: int = typer.Option(4000, min=12, help="Generated recordings (synth)."),
    seconds: float = typer.Option(5.0, min=1.0, help="Seconds per generated recording."),
    excerpts: int = typer.Option(
        3, min=1, help="Recordings per corpus score (each orchestrated anew)."
    ),
    excerpt_seconds: float = typer.Option(10.0, min=1.0, help="Seconds per score excerpt."),
    composers: str = typer.Option(COMPOSERS, help="music21 corpus composers to render."),
    spread_db: float = typer.Option(
        SPREAD_DB, min=0.0, help="Parts' levels within this many dB (synth, render)."
    ),
    entries: float = typer.Option(
        ENTRIES, min=0.0, max=1.0, help="Share of parts entering late or leaving early."
    ),
    others: float = typer.Option(
        OTHERS, min=0.0, max=1.0, help="Share of generated recordings with an outsider."
    ),
    others_only: float = typer.Option(
        OTHERS_ONLY, min=0.0, max=1.0, help="Share of generated recordings of an outsider alone."
    ),
    hold_out: str = typer.Option(
        "",
        help="The library's instruments (comma-separated names) held out of the training data; "
        "the calibration data is then played by them alone, players the model never heard.",
    ),
    epochs: int = typer.Option(EPOCHS, min=1, help="Training epochs."),
    lr: float = typer.Option(LR, min=0.0, help="Peak learning rate."),
    conditions: float = typer.Option(
        CONDITIONS, min=0.0, max=1.0, help="Recording-condition augmentation in training."
    ),
    mixup: float = typer.Option(
        TrainConfig.mixup,
        min=0.0,
        help="Mix training windows as sounds, lam ~ Beta(a, a) (musicid-train's).",
    ),
    seed: int = typer.Option(0, help="Seed of the data, the shards and the training."),
    workers: int = typer.Option(
        WORKERS, min=1, help="Worker processes (data) and DataLoader workers."
    ),
    clips: Path = typer.Option(
        None, help="Labelled real clips to report on (labels.csv + audio/)."
    ),
    mixtures: Path = typer.Option(
        None, help="Real mixtures to report on (audio/ + reference.tsv)."
    ),
):
    """Make the shipped model from the instrument library, on this machine's CPUs (or its GPU)."""
    out.mkdir(parents=True, exist_ok=True)
    export = export or SHIPPED
    lib, synth, scores, shards, runs = (
        out / n for n in ("instruments", "synth", "scores", "shards", "run")
    )
    cal_synth, cal_shards = out / "synth-cal", out / "shards-cal"
    exe = {name: bin_of(name) for name in ("pipeline", "train", "eval")}
    w, s = ["--workers", str(workers)], ["--seed", str(seed)]
    arrangement = ["--spread-db", str(spread_db), "--entries", str(entries)]
    held = ["--hold-out", hold_out] if hold_out else []
    steps = Steps(out)
    steps.run("fetch", [exe["pipeline"], "instruments", "fetch", str(lib)])

    def synth_cmd(
        folder: Path, count: int, secs: float, seed_of: int, arranged: tuple[str, ...]
    ) -> list[str]:
        """Generated scores played by the library, their parts set against each other by
        `arranged` (synth's options)."""
        return [
            *(exe["pipeline"], "synth", str(folder), "--recordings", str(count)),
            *("--seconds", str(secs), "--engine", "sampled", "--library", str(lib), "--balance"),
            *("--solo", str(SOLO), *arranged, "--overwrite", *w, "--seed", str(seed_of)),
        ]

    steps.run(
        "synth",
        synth_cmd(
            synth,
            recordings,
            seconds,
            seed,
            (
                *("--others", str(others), "--others-db", str(OTHERS_DB)),
                *("--others-only", str(others_only), *arrangement, *held),
            ),
        ),
    )
    steps.run(
        "render",
        [
            exe["pipeline"],
            "render",
            str(scores),
            "--corpus",
            composers,
            "--library",
            str(lib),
            "--seconds",
            str(excerpt_seconds),
            "--excerpts",
            str(excerpts),
            *arrangement,
            *held,
            "--overwrite",
            *s,
        ],
    )
    steps.run(
        "shards",
        [
            exe["pipeline"],
            "build-shards",
            str(synth),
            str(scores),
            str(shards),
            "--extra-val",
            "--val-fraction",
            "0.1",
            "--shards-per-split",
            "8",
            *w,
            *s,
        ],
        again=("--overwrite",),
    )
    cal_seed = seed + CAL_SEED
    steps.run(
        "synth-cal",
        synth_cmd(
            cal_synth,
            CAL_RECORDINGS,
            CAL_SECONDS,
            cal_seed,
            (*CAL_ARRANGEMENT, *(["--players", hold_out] if hold_out else [])),
        ),
    )
    steps.run(
        "shards-cal",
        [
            exe["pipeline"],
            "build-shards",
            str(cal_synth),
            str(cal_shards),
            "--val-fraction",
            "0.9",
            "--shards-per-split",
            "4",
            *w,
            *("--seed", str(cal_seed)),
        ],
        again=("--overwrite",),
    )
    steps.run(
        "train",
        [
            exe["train"],
            "--shards",
            str(shards),
            "--out",
            str(runs),
            "--epochs",
            str(epochs),
            "--lr",
            str(lr),
            "--conditions",
            str(conditions),
            *(["--mixup", str(mixup)] if mixup else []),
            *w,
            *s,
        ],
        again=("--overwrite",),
        resume=("--resume",) if (runs / "last.pt").exists() else (),
    )
    steps.run(
        "eval",
        [
            exe["eval"],
            str(runs),
            "--shards",
            str(shards),
            "--predictor",
            "calibrated",
            "--out",
            str(out / "eval"),
            "--overwrite",
        ],
    )
    report = json.loads((out / "eval" / "report.json").read_text())["results"]["calibrated"]
    figures = {
        "test_split": {
            "what": "the generated test split (sampled instruments)",
            "mAP": report["mAP"],
            "macro_f1": report["macro"]["f1"],
        }
    }
    trained = json.loads((runs / "config.json").read_text())
    card = {
        "name": "musicid default",
        "version": version("musicid"),
        "seed": seed,
        "recipe": "make model (python -m musicid.recipes.model)",
        "settings": {
            "recordings": recordings,
            "seconds": seconds,
            "excerpts": excerpts,
            "excerpt_seconds": excerpt_seconds,
            "composers": composers,
            "spread_db": spread_db,
            "entries": entries,
            "others": others,
            "others_only": others_only,
            "hold_out": hold_out,
        },
        "training": {k: trained[k] for k in TRAINING_RECORD},
        "step_seconds": steps.took,
        "data_sources": load_library(lib).licences()
        + [
            {
                "name": "music21 corpus",
                "instrument": "",
                "source": f"PyPI music21 ({composers})",
                "licence": "BSD-3-Clause (music21); public-domain scores",
                "attribution": "music21 corpus (Cuthbert et al.)",
            }
        ],
        "figures": figures,
    }
    dest = export_model(runs, export, card)
    # event rules fitted on longer recordings than the training data's: real events last longer
    recalibrate(export, cal_shards)
    if clips is not None:
        steps.rerun(
            "clips",
            [
                exe["eval"],
                "clips",
                str(clips),
                "--model",
                str(export),
                "--out",
                str(out / "clips"),
                "--overwrite",
            ],
        )
        c = json.loads((out / "clips" / "clips.json").read_text())
        figures["real_clips"] = {
            "folder": clips.name,
            **{k: c[k] for k in ("clips", "top1", "top3", "clip_mAP")},
            "per_class_top1": {n: v["top1"] for n, v in c["per_class"].items()},
            "others": c["others"],
        }
    if mixtures is not None:
        steps.rerun(
            "mixtures",
            [
                exe["eval"],
                "events",
                str(mixtures),
                "--model",
                str(export),
                "--out",
                str(out / "mixtures"),
                "--overwrite",
            ],
        )
        e = json.loads((out / "mixtures" / "report.json").read_text())
        figures["real_mixtures"] = {
            "folder": mixtures.name,
            "files": e["files"],
            "segment": e["segment"],
            "event": e["event"],
            "named_never_playing_per_file": e["named_never_playing"]["per_file"],
            "outsiders_only": e["others_only"],
        }
    write_json_atomic(export / CARD, {**read_card(export), "figures": figures})
    print(
        f"\n=== model exported to {dest} ({dest.stat().st_size / 1e6:.1f} MB); card: "
        f"{dest.parent / 'card.json'}"
    )
    print(json.dumps(figures, indent=1))


def main(args: list[str] | None = None) -> None:
    run(app, "python -m musicid.recipes.model", args)


if __name__ == "__main__":
    main()
