"""`make model` (`python -m musicid.recipes.model`): the recipe of the shipped model, on the instrument library.

fetch instruments -> synth (generated scores, sampled instruments, others, solos) -> render (music21's corpus:
quartets, chorales, keyboard music) -> build-shards -> train -> evaluate -> export into musicid/model/.
Each step runs the real CLI; a step whose stamp (`OUT/.done-<step>`) exists is skipped, so an interrupted
recipe rerun goes on where it stopped (build-shards and training resume inside their step as well). The
same seed gives the same data and shards; `--clips DIR` also scores the model on labelled real clips
(realdev's shape), a figure for the card, never used to choose anything.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import typer

from musicid.cli import command, run
from musicid.errors import MusicidError
from musicid.infer.export import export_model
from musicid.pipeline.library import load_library
from musicid.pipeline.scores import CORPUS_COMPOSERS
from musicid.pipeline.workers import WORKERS
from musicid.run import SHIPPED

from . import CONDITIONS, LR
from . import exe as bin_of

COMPOSERS = ",".join(CORPUS_COMPOSERS)
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def step(out: Path, name: str, cmd: list[str]) -> float:
    """Run one CLI step unless its stamp says it finished; the seconds it took (recorded in the stamp)."""
    stamp = out / f".done-{name}"
    if stamp.exists():
        print(f"=== {name}: done before ({stamp})", flush=True)
        return float(stamp.read_text())  # the seconds it took then
    print(f"\n=== {name}\n$ {' '.join(cmd)}", flush=True)
    t = time.perf_counter()
    if subprocess.run(cmd).returncode != 0:
        raise MusicidError(f"recipe step {name} failed; fix the cause and rerun: finished steps are kept")
    seconds = time.perf_counter() - t
    stamp.write_text(f"{seconds:.0f}\n")
    return seconds


@app.command()
@command
def recipe(
    out: Path = typer.Option(Path("build/model"), help="Folder for the library, data, shards and run."),
    export: Path = typer.Option(None, help="Where the model goes (default: the package's musicid/model/)."),
    recordings: int = typer.Option(4000, min=12, help="Generated recordings (synth)."),
    seconds: float = typer.Option(5.0, min=1.0, help="Seconds per generated recording."),
    excerpts: int = typer.Option(3, min=1, help="Recordings per corpus score (each orchestrated anew)."),
    excerpt_seconds: float = typer.Option(10.0, min=1.0, help="Seconds per score excerpt."),
    composers: str = typer.Option(COMPOSERS, help="music21 corpus composers to render."),
    epochs: int = typer.Option(4, min=1),
    lr: float = typer.Option(LR, min=0.0, help="Peak learning rate."),
    conditions: float = typer.Option(CONDITIONS, min=0.0, max=1.0, help="Recording-condition augmentation in training."),
    seed: int = typer.Option(0),
    workers: int = typer.Option(WORKERS, min=1, help="Worker processes (data) and DataLoader workers."),
    clips: Path = typer.Option(None, help="Labelled real clips to report on (labels.csv + audio/)."),
):
    """Make the shipped model from the instrument library, on this machine's CPUs (or its GPU)."""
    out.mkdir(parents=True, exist_ok=True)
    export = export or SHIPPED
    lib, synth, scores, shards, runs = (out / n for n in ("instruments", "synth", "scores", "shards", "run"))
    exe = {name: bin_of(name) for name in ("pipeline", "train", "eval")}
    w, s = ["--workers", str(workers)], ["--seed", str(seed)]
    took = {
        "fetch": step(out, "fetch", [exe["pipeline"], "instruments", "fetch", str(lib)]),
        "synth": step(out, "synth", [exe["pipeline"], "synth", str(synth), "--recordings", str(recordings),
                                     "--seconds", str(seconds), "--engine", "sampled", "--library", str(lib),
                                     "--balance", "--others", "0.3", "--solo", "0.3", "--overwrite", *w, *s]),
        "render": step(out, "render", [exe["pipeline"], "render", str(scores), "--corpus", composers, "--library",
                                       str(lib), "--seconds", str(excerpt_seconds), "--excerpts", str(excerpts),
                                       "--overwrite", *s]),
        "shards": step(out, "shards", [exe["pipeline"], "build-shards", str(synth), str(scores), str(shards),
                                       "--extra-val", "--val-fraction", "0.1", "--shards-per-split", "8", *w, *s]),
    }
    resume = ["--resume"] if (runs / "last.pt").exists() else ["--overwrite"]
    took["train"] = step(out, "train", [exe["train"], "--shards", str(shards), "--out", str(runs), "--epochs",
                                        str(epochs), "--lr", str(lr), "--conditions", str(conditions), *w, *s,
                                        *resume])
    step(out, "eval", [exe["eval"], str(runs), "--shards", str(shards), "--predictor", "calibrated", "--out",
                       str(out / "eval"), "--overwrite"])
    report = json.loads((out / "eval" / "report.json").read_text())["results"]["calibrated"]
    figures = {"test_split": {"what": "the generated test split (sampled instruments)", "mAP": report["mAP"],
                              "macro_f1": report["macro"]["f1"]}}
    if clips is not None:
        step(out, "clips", [exe["eval"], "clips", str(clips), "--model", str(runs), "--out", str(out / "clips"),
                            "--overwrite"])
        c = json.loads((out / "clips" / "clips.json").read_text())
        figures["real_clips"] = {"folder": clips.name, **{k: c[k] for k in ("clips", "top1", "top3", "clip_mAP")},
                                 "per_class_top1": {n: v["top1"] for n, v in c["per_class"].items()},
                                 "others": c["others"]}

    card = {"name": "musicid default", "seed": seed, "recipe": "make model (python -m musicid.recipes.model)",
            "settings": {"recordings": recordings, "seconds": seconds, "excerpts": excerpts,
                         "excerpt_seconds": excerpt_seconds, "composers": composers, "epochs": epochs, "lr": lr,
                         "conditions": conditions},
            "step_seconds": {k: round(v) for k, v in took.items()},
            "data_sources": load_library(lib).licences()
            + [{"name": "music21 corpus", "instrument": "", "source": f"PyPI music21 ({composers})",
                "licence": "BSD-3-Clause (music21); public-domain scores",
                "attribution": "music21 corpus (Cuthbert et al.)"}],
            "figures": figures}
    dest = export_model(runs, export, card)
    print(f"\n=== model exported to {dest} ({dest.stat().st_size / 1e6:.1f} MB); card: {dest.parent / 'card.json'}")
    print(json.dumps(figures, indent=1))


def main(args: list[str] | None = None) -> None:
    run(app, "python -m musicid.recipes.model", args)


if __name__ == "__main__":
    main()
