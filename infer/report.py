"""Rendering evaluation results: terminal tables, report.md, report.json and PNG plots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve

from musicid.files import output_folder, write_json_atomic, write_text_atomic

from .figures import pyplot, save_figure

plt = pyplot()

SUMMARY = (
    ("micro F1", lambda r: r["micro"]["f1"]),
    ("macro F1", lambda r: r["macro"]["f1"]),
    ("mAP", lambda r: r["mAP"]),
    ("recall (prior acc.)", lambda r: r["prior_accuracy"]),
    ("FP/sample", lambda r: r["fp_per_sample"]),
    ("exact match", lambda r: r["exact_match"]),
    ("pred/true per sample", lambda r: f"{r['mean_predicted']:.2f}/{r['mean_true']:.2f}"),
)
NOTE = (
    "Macro means leave out classes absent from the evaluated split (listed as 'absent'), "
    "not counted as 0."
)


def fmt(v) -> str:
    return "-" if v is None else v if isinstance(v, str) else f"{v:.3f}"


@dataclass
class Table:
    """Rows of cells: printed aligned on the terminal, and written as Markdown from the same
    cells."""

    header: list[str]
    rows: list[list[str]]

    def text(self) -> str:
        widths = [
            max(len(str(x)) for x in col) for col in zip(self.header, *self.rows, strict=True)
        ]

        def line(r: list[str]) -> str:
            return "  ".join(
                str(x).rjust(w) if i else str(x).ljust(w)
                for i, (x, w) in enumerate(zip(r, widths, strict=True))
            )

        return "\n".join(
            [line(self.header), line(["-" * w for w in widths])] + [line(r) for r in self.rows]
        )

    def markdown(self) -> str:
        def line(r: list[str]) -> str:
            return "| " + " | ".join(map(str, r)) + " |"

        return "\n".join(
            [line(self.header), "|" + "---|" * len(self.header), *map(line, self.rows)]
        )


def per_class_table(result: dict) -> Table:
    rows = []
    for name, c in result["per_class"].items():
        if not c["present"]:
            rows.append(
                [
                    name,
                    str(c["support"]),
                    "absent",
                    "absent",
                    "absent",
                    "absent",
                    str(c["predicted"]),
                ]
            )
        else:
            rows.append(
                [
                    name,
                    str(c["support"]),
                    *(fmt(c[k]) for k in ("precision", "recall", "f1", "ap")),
                    str(c["predicted"]),
                ]
            )
    return Table(["instrument", "support", "precision", "recall", "F1", "AP", "predicted"], rows)


def summary_table(results: dict[str, dict], what: str = "predictor") -> Table:
    """One row per predictor (or per run, `what`) with the summary statistics."""
    return Table(
        [what, *(n for n, _ in SUMMARY)],
        [[name, *(fmt(get(r)) for _, get in SUMMARY)] for name, r in results.items()],
    )


def markdown(title: str, tables: list[tuple[str, Table]], notes: list[str] = ()) -> str:
    parts = [f"# {title}", "", NOTE, "", *(f"{n}\n" for n in notes)]
    for heading, t in tables:
        parts += [f"## {heading}", "", t.markdown(), ""]
    return "\n".join(parts)


def plot_pr_curves(probs: np.ndarray, labels: np.ndarray, names: list[str], path: Path) -> None:
    fig, axes = plt.subplots(3, 4, figsize=(13, 9), sharex=True, sharey=True)
    for c, ax in enumerate(axes.flat):
        if c >= len(names):
            ax.axis("off")
            continue
        y = labels[:, c].astype(bool)
        ax.set_title(names[c], fontsize=10)
        if not y.any():
            ax.text(0.5, 0.5, "absent", ha="center", va="center", transform=ax.transAxes)
            continue
        precision, recall, _ = precision_recall_curve(y, probs[:, c])
        ax.step(recall, precision, where="post")
        ax.set_ylim(0, 1.02)
    for ax in axes[-1]:
        ax.set_xlabel("recall")
    for ax in axes[:, 0]:
        ax.set_ylabel("precision")
    fig.suptitle("Precision-recall per instrument")
    save_figure(fig, path)


def plot_bars(
    values: dict[str, dict[str, float | None]], path: Path, title: str, ylabel: str
) -> None:
    """Grouped bars: one group per key of `values`, one bar per inner key (None drawn as a gap)."""
    groups = list(values)
    series = list(next(iter(values.values())))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(groups) * max(1, len(series) / 2)), 4))
    width = 0.8 / len(series)
    for i, s in enumerate(series):
        ys = [values[g][s] if values[g][s] is not None else np.nan for g in groups]
        ax.bar(np.arange(len(groups)) + i * width - 0.4 + width / 2, ys, width, label=s)
    ax.set_xticks(np.arange(len(groups)), groups, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8)
    save_figure(fig, path)


def write_reports(
    out: Path, title: str, report: dict, tables: list[tuple[str, Table]], notes: list[str] = ()
) -> None:
    output_folder(out)
    write_json_atomic(out / "report.json", json.loads(json.dumps(report)))
    write_text_atomic(out / "report.md", markdown(title, tables, notes))


PUBLISHED = Path(__file__).with_name("published.json")


def published_table(result: dict) -> tuple[Table, str]:
    """Our per-class frame-level P/R/F1 beside the published figures, and the protocol differences
    in words."""
    pub = json.loads(PUBLISHED.read_text())
    rows = []
    for name in pub["instruments"]:
        c = result["per_class"].get(name)
        ours = [
            fmt(c[k]) if c and c["present"] else "absent" for k in ("precision", "recall", "f1")
        ]
        diff = f"{c['f1'] - pub['f1'][name]:+.3f}" if c and c["present"] else "-"
        rows.append([name, *ours, f"{pub['f1'][name]:.3f}", diff])
    m = pub["macro"]
    rows.append(
        [
            "macro",
            *(fmt(result["macro"][k]) for k in ("precision", "recall", "f1")),
            f"{m['f1']:.3f} (P {m['precision']:.3f}, R {m['recall']:.3f})",
            f"{result['macro']['f1'] - m['f1']:+.3f}" if result["macro"]["f1"] is not None else "-",
        ]
    )
    note = (
        f"Published: {pub['source']}; {pub['protocol']}. Ours: 1 s windows of log-mel averaged per "
        "frame, "
        "thresholds calibrated on the val split (never on test); classes we score are those given "
        "by "
        "--instruments (use the same seven to match)."
    )
    return Table(
        ["instrument", "our P", "our R", "our F1", "published F1", "F1 difference"], rows
    ), note


def interval_table(intervals: dict, label: str = "value") -> Table:
    """Each statistic with its 95 % bootstrap interval over recordings (and a difference, when
    present)."""
    rows = []
    for stat, v in intervals.items():
        row = [stat, fmt(v["value"]), f"[{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"]
        if "difference" in v:
            d = v["difference"]
            row += [
                f"{d['value']:+.3f}",
                f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]",
                "yes" if d["excludes_zero"] else "no",
            ]
        rows.append(row)
    header = ["statistic", label, "95% CI (recordings)"]
    if rows and len(rows[0]) > 3:
        header += ["vs first", "95% CI", "excludes 0"]
    return Table(header, rows)


def per_recording_table(records: list[dict], names: list[str]) -> Table:
    rows = [
        [
            r["recording"],
            r["ensemble"] or "-",
            f"{r['seconds']:.0f}",
            *(fmt(r["f1"].get(n)) for n in names),
        ]
        for r in records
    ]
    return Table(["recording", "ensemble", "s", *(n[:6] for n in names)], rows)


def plot_recording_heatmap(records: list[dict], names: list[str], path: Path) -> None:
    """Recordings x classes F1 (blank where a class does not play in a recording)."""
    f1 = np.array([[r["f1"].get(n, np.nan) for n in names] for r in records], dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(names), 1.2 + 0.35 * len(records)))
    im = ax.imshow(np.ma.masked_invalid(f1), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=40, ha="right")
    ax.set_yticks(
        range(len(records)), [f"{r['recording']} ({r['ensemble']})"[:40] for r in records]
    )
    ax.set_title("F1 per recording and instrument (blank: not playing)")
    fig.colorbar(im, ax=ax, fraction=0.03, label="F1")
    save_figure(fig, path)


def plot_timeline(rows, pred: np.ndarray, recording: str, names: list[str], path: Path) -> None:
    """One recording: truth above, predicted probability with the predicted activity outlined
    below."""
    m = rows.recordings == recording
    t = np.arange(int(m.sum())) / rows.rate
    fig, axes = plt.subplots(
        2,
        1,
        figsize=(min(24, 6 + t[-1] / 15 if len(t) else 6), 0.5 * len(names) + 2.5),
        sharex=True,
    )
    for ax, data, title in (
        (axes[0], rows.labels[m], "truth"),
        (axes[1], rows.probs[m], "predicted probability"),
    ):
        ax.pcolormesh(
            np.r_[t, t[-1] + 1 / rows.rate] if len(t) else [0, 1],
            np.arange(len(names) + 1) - 0.5,
            data.T,
            cmap="magma",
            vmin=0,
            vmax=1,
        )
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_title(f"{recording}: {title}")
    on = pred[m]
    for c in range(len(names)):
        edges = np.flatnonzero(np.diff(np.r_[0, on[:, c].astype(int), 0]))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            axes[1].add_patch(
                plt.Rectangle(
                    (a / rows.rate, c - 0.42),
                    (b - a) / rows.rate,
                    0.84,
                    fill=False,
                    edgecolor="white",
                    linewidth=1,
                )
            )
    axes[1].set_xlabel("time (s)")
    save_figure(fig, path)


def events_tables(result: dict) -> list[tuple[str, Table]]:
    """`musicid-eval events`: the summary, per class, and the instruments named that never play."""
    seg, ev, oth, never = (
        result["segment"],
        result["event"],
        result["others_only"],
        result["named_never_playing"],
    )
    summary = Table(
        ["figure", "value"],
        [
            ["segment-based F1 (1 s), micro", fmt(seg["micro_f1"])],
            ["segment-based F1, macro", fmt(seg["macro_f1"])],
            ["segment-based error rate", fmt(seg["error_rate"])],
            ["event-based F1, micro", fmt(ev["micro_f1"])],
            ["event-based F1, macro", fmt(ev["macro_f1"])],
            ["segment-based mAP", fmt(seg.get("mAP"))],
            [
                "events: estimated / reference",
                f"{result['estimated_events']} / {result['reference_events']}",
            ],
            ["instruments named that never play, per file", f"{never['per_file']:.2f}"],
            [
                "outsiders-only time named as one of the 11",
                f"{oth['named_seconds']:.1f} of {oth['seconds']:.1f} s ({fmt(oth['share_named'])})",
            ],
        ],
    )
    per_class = Table(
        ["instrument", "segment F1", "segment ER", "event F1", "segment AP", "events est/ref"],
        [
            [
                n,
                fmt(c["segment_f1"]),
                fmt(c["segment_error_rate"]),
                fmt(c["event_f1"]),
                fmt(c.get("segment_ap")),
                f"{c['estimated_events']}/{c['reference_events']}",
            ]
            for n, c in result["per_class"].items()
        ],
    )
    files = Table(
        ["file", "named, never playing"], [[f, ", ".join(v)] for f, v in never["files"].items()]
    )
    return [
        (f"{result['files']} files, {result['seconds']:.0f} s (sed_eval)", summary),
        ("Per instrument", per_class),
        ("Instruments named that never play", files),
    ]
