"""Rendering evaluation results: terminal tables, report.md, report.json and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

from musicid.files import atomic_path, output_folder, write_json_atomic, write_text_atomic  # noqa: E402

SUMMARY = (("micro F1", lambda r: r["micro"]["f1"]), ("macro F1", lambda r: r["macro"]["f1"]),
           ("mAP", lambda r: r["mAP"]), ("recall (prior acc.)", lambda r: r["prior_accuracy"]),
           ("FP/sample", lambda r: r["fp_per_sample"]), ("exact match", lambda r: r["exact_match"]),
           ("pred/true per sample", lambda r: f"{r['mean_predicted']:.2f}/{r['mean_true']:.2f}"))
NOTE = "Macro means leave out classes absent from the evaluated split (listed as 'absent'), not counted as 0."


def _fmt(v) -> str:
    return "-" if v is None else v if isinstance(v, str) else f"{v:.3f}"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]

    def line(r: list[str]) -> str:
        return "  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(r, widths,
                                                                                                  strict=True)))

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def per_class_table(result: dict) -> str:
    rows = []
    for name, c in result["per_class"].items():
        if not c["present"]:
            rows.append([name, str(c["support"]), "absent", "absent", "absent", "absent", str(c["predicted"])])
        else:
            rows.append([name, str(c["support"]), *(_fmt(c[k]) for k in ("precision", "recall", "f1", "ap")),
                         str(c["predicted"])])
    return table(rows, ["instrument", "support", "precision", "recall", "F1", "AP", "predicted"])


def summary_table(results: dict[str, dict]) -> str:
    rows = [[name, *(_fmt(get(r)) for _, get in SUMMARY)] for name, r in results.items()]
    return table(rows, ["predictor", *(n for n, _ in SUMMARY)])


def markdown(title: str, tables: list[tuple[str, str]]) -> str:
    parts = [f"# {title}", "", NOTE, ""]
    for heading, text in tables:
        lines = text.splitlines()
        cells = [[c for c in line.split("  ") if c.strip()] for line in lines if not set(line) <= {"-", " "}]
        parts += [f"## {heading}", "", "| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
        parts += ["| " + " | ".join(c.strip() for c in row) + " |" for row in cells[1:]] + [""]
    return "\n".join(parts)


def save_figure(fig, path: Path) -> None:
    """Save a figure under a temporary name, then rename it into place."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)


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


def plot_bars(values: dict[str, dict[str, float | None]], path: Path, title: str, ylabel: str) -> None:
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


def write_reports(out: Path, title: str, report: dict, tables: list[tuple[str, str]]) -> None:
    output_folder(out)
    write_json_atomic(out / "report.json", json.loads(json.dumps(report)))
    write_text_atomic(out / "report.md", markdown(title, tables))
