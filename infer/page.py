"""A listening page: one self-contained HTML file that plays the recording and shows which
instruments play at the playhead, from the same data as the CSV and JSON outputs.

Inline CSS and JavaScript (from `web/`), no CDN, no server: it works from `file://`. The heat map is
drawn on a canvas as one pixel column per screen column, so an hour at 0.5 s hop (7,200 windows)
draws as fast as a minute. The audio is referenced by a relative path from the page; `embed_audio`
inlines it as Ogg/Opus (mono, 48 kbps, encoded by FFmpeg through PyAV) for mailing the page, up to
EMBED_MAX_S of audio.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from urllib.parse import quote

import numpy as np

from musicid.audio import probe, stream_audio
from musicid.errors import InputError
from musicid.files import write_text_atomic

from .predict import Prediction
from .timeline import KNOWN, clock, resolution

WEB = Path(__file__).with_name("web")
# 20 minutes of mono Opus at 48 kbps: about 7 MB, 9.5 MB as base64 in the page
EMBED_MAX_S = 20 * 60
OPUS_RATE, OPUS_BITRATE = 48000, 48000

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">\
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body>
<header><h1>{title}</h1><div id="meta">{meta}</div></header>
<main>
<section id="player"><button id="play" type="button" title="space">Play</button>\
<span id="clock">0:00</span>
<span class="dim">click or drag on the timeline to seek; space plays and pauses, \
arrows seek 5 s (shift: 30 s)</span>
<audio id="audio" preload="auto" src="{src}"></audio></section>
<div id="view"><div id="labels"></div><div id="plot">\
<canvas id="heat"></canvas><canvas id="overlay"></canvas>
<div id="axis"></div></div><ul id="now"></ul></div>
<div id="legend"><span>probability</span><span class="bar"></span>\
<span>0</span><span>0.5</span><span>1</span>
<span class="named">white outline: the instrument is named there</span></div>
<table id="summary"><thead><tr><th>instrument named</th><th>share of time</th>
<th>mean probability while named</th><th>peak probability while named</th><th>stretches</th>
</tr></thead><tbody>{rows}</tbody></table>
{runner_ups}
<p id="known">{known}</p>
<p class="dim" id="model">model {model}; predictor <code>{predictor}</code> ({rule})</p>
</main>
<script type="application/json" id="data">{data}</script>
<script>{js}</script>
</body></html>
"""

INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>musicid: {n} recordings</title>\
<style>{css}</style></head>
<body><header><h1>musicid: {n} recordings</h1></header><main><table><thead><tr><th>recording</th>
<th>duration</th><th>instruments named (share of time)</th></tr></thead>\
<tbody>{rows}</tbody></table>
<p id="known">{known}</p></main></body></html>
"""


def _rule_text(pred: Prediction) -> str:
    if "top" in pred.rule:
        return f"the {pred.rule['top']} most probable instruments in each window"
    if "events" in pred.rule:
        return "per-instrument thresholds fitted on validation, smoothed over time"
    key, what = (
        ("thresholds", "thresholds") if "thresholds" in pred.rule else ("bias", "biases subtracted")
    )
    values = ", ".join(f"{n} {v:.2f}" for n, v in zip(pred.names, pred.rule[key], strict=True))
    return f"{what}: {values}"


def embedded_audio(path: Path) -> str:
    """The recording as a data: URL of mono Ogg/Opus; refused above EMBED_MAX_S."""
    import av

    info = probe(path)
    chunks = stream_audio(info)
    buf = io.BytesIO()
    with av.open(buf, "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=OPUS_RATE)
        stream.bit_rate, stream.layout = OPUS_BITRATE, "mono"
        resampler = av.AudioResampler(format="flt", layout="mono", rate=OPUS_RATE)
        done = 0
        for chunk in chunks:
            done += len(chunk)
            if done > EMBED_MAX_S * info.sample_rate:
                raise InputError(
                    f"{path}: --embed-audio takes at most {EMBED_MAX_S // 60} min ({EMBED_MAX_S} "
                    "s) "
                    "of audio; leave the audio beside the page instead"
                )
            frame = av.AudioFrame.from_ndarray(chunk[None], format="flt", layout="mono")
            frame.rate = info.sample_rate
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for f in resampler.resample(None):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return "data:audio/ogg;base64," + base64.b64encode(buf.getvalue()).decode()


def page_data(pred: Prediction) -> dict:
    """What the page's script reads: the same windows, probabilities and segments as the CSV/JSON
    outputs."""
    return {
        "file": pred.path.name,
        "duration": round(pred.duration_s, 3),
        "names": pred.names,
        "starts": np.round(pred.starts, 3).tolist(),
        "edges": np.round(pred.regions(), 3).tolist(),
        "probs": np.round(pred.probs, 3).tolist(),
        "active": pred.active.astype(int).tolist(),
        "segments": {
            k: [[round(s, 3), round(e, 3)] for s, e in v] for k, v in pred.segments().items()
        },
        "summary": pred.summary(),
        "runner_ups": pred.runner_ups(),
        "predictor": pred.predictor,
        "rule": pred.rule,
    }


def write_html(pred: Prediction, path: Path, embed_audio: bool = False) -> None:
    src = (
        embedded_audio(pred.path)
        if embed_audio
        else quote(os.path.relpath(pred.path.resolve(), path.parent.resolve()))
    )
    rows = (
        "".join(
            f"<tr><td>{html.escape(r['name'])}</td><td "
            f"class=num>{100 * r['share_of_time']:.1f}%</td>"
            f"<td class=num>{r['mean_probability_named']:.2f}</td>"
            f"<td class=num>{r['peak_probability_named']:.2f}</td><td "
            f"class=num>{len(r['segments'])}</td></tr>"
            for r in pred.summary()
        )
        or "<tr><td colspan=5>no instrument named</td></tr>"
    )
    below = pred.runner_ups()
    runner_ups = (
        (
            "<p id='runner-ups'>Most probable of the others, below what names an instrument: "
            + ", ".join(
                f"{html.escape(r['name'])} (peak {r['peak_probability']:.2f})" for r in below
            )
            + "</p>"
        )
        if below
        else ""
    )
    # every character that could end the script element or start markup, escaped as JSON allows
    data = json.dumps(page_data(pred), separators=(",", ":"))
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    write_text_atomic(
        path,
        PAGE.format(
            title=html.escape(f"musicid: {pred.path.name}"),
            css=(WEB / "page.css").read_text(),
            js=(WEB / "page.js").read_text(),
            src=html.escape(src),
            meta=html.escape(f"{clock(pred.duration_s)} · {resolution(pred)}"),
            rows=rows,
            runner_ups=runner_ups,
            known=html.escape(KNOWN),
            model=html.escape(pred.model),
            predictor=html.escape(pred.predictor),
            rule=html.escape(_rule_text(pred)),
            data=data,
        ),
    )


def index_page(pages: list[tuple[Path, Prediction]], path: Path) -> str:
    """A page (to be written at `path`) linking several recordings' pages: name, duration, top
    instruments."""
    rows = []
    for page, pred in pages:
        top = (
            ", ".join(f"{r['name']} ({100 * r['share_of_time']:.0f}%)" for r in pred.summary()[:3])
            or "none named"
        )
        href = quote(os.path.relpath(page.resolve(), path.parent.resolve()))
        rows.append(
            f"<tr><td><a href='{html.escape(href)}'>{html.escape(pred.path.name)}</a></td>"
            f"<td class=num>{clock(pred.duration_s)}</td><td>{html.escape(top)}</td></tr>"
        )
    return INDEX.format(
        n=len(pages),
        css=(WEB / "page.css").read_text(),
        rows="".join(rows),
        known=html.escape(KNOWN),
    )
