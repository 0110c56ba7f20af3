"""musicid: which musical instruments play, and when, in a recording.

The public Python API, imported lazily so that `import musicid` stays light:

    import musicid pred = musicid.predict_file("song.mp3")                  # the shipped model; or
    a run folder, a checkpoint musicid.predict_and_save("song.mp3", "out/song", ["csv", "png"])  #
    out/song.csv, out/song.png run = musicid.load_run("runs/bce") result =
    musicid.build_shards("data/musicnet", "shards", musicid.BuildConfig())  # result.manifest
"""

from importlib import import_module

_API = {
    "predict_file": "musicid.infer.predict",
    "predict_and_save": "musicid.infer.outputs",
    "Prediction": "musicid.infer.predict",
    "load_run": "musicid.infer.loaded",
    "evaluate": "musicid.infer.evaluate",
    "build_shards": "musicid.pipeline.build",
    "BuildConfig": "musicid.pipeline.build",
    "LogMel": "musicid.features",
    "WindowConfig": "musicid.windows",
    "synthesize": "musicid.pipeline.synth",
    "Trainer": "musicid.train.trainer",
    "TrainConfig": "musicid.train.trainer",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'musicid' has no attribute {name!r}")
