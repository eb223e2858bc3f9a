"""Pictures people would rather look at than read: bar charts and metric curves as uint8 images.

Each function returns an RGB uint8 array [H, W, 3] (what `images.save_png`, the evaluators and
TensorBoard take), drawn with matplotlib's Agg backend (no display needed).

    bar_chart([0.1, 0.3], ["0", "1"], title="class histogram")
    curves_from_jsonl("workdir/metrics.jsonl", ["d_loss", "g_loss"])
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np


def new_figure(width: float = 6.0, height: float = 3.5):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def figure_to_array(fig) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def bar_chart(values: Sequence[float], labels: Sequence[str], title: str = "", ylabel: str = "",
              errors: Sequence[float] | None = None, reference: float | None = None) -> np.ndarray:
    """One bar per label (optional error bars and a dashed horizontal reference line)."""
    fig = new_figure()
    ax = fig.add_subplot()
    x = np.arange(len(values))
    ax.bar(x, values, yerr=errors, capsize=3 if errors is not None else 0, color="#4C72B0")
    if reference is not None:
        ax.axhline(reference, color="gray", linestyle="--", linewidth=1)
    ax.set_xticks(x, [str(l) for l in labels], rotation=45 if max(map(len, map(str, labels))) > 3 else 0)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return figure_to_array(fig)


def curves(series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str = "",
           xlabel: str = "step", marks: dict[str, float] | None = None) -> np.ndarray:
    """One panel per series name -> (x, y); `marks` draws labelled vertical lines (e.g. where a
    collapse was detected) on every panel."""
    n = max(len(series), 1)
    fig = new_figure(6.0, 1.9 * n + 0.6)
    for i, (name, (x, y)) in enumerate(series.items()):
        ax = fig.add_subplot(n, 1, i + 1)
        ax.plot(x, y, linewidth=1)
        ax.set_ylabel(name, fontsize=8)
        for label, at in (marks or {}).items():
            ax.axvline(at, color="red", linestyle="--", linewidth=1)
            if i == 0:
                ax.annotate(label, (at, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                            color="red", va="top")
        if i == 0 and title:
            ax.set_title(title)
    fig.axes[-1].set_xlabel(xlabel)
    return figure_to_array(fig)


def read_metrics(path: str, keys: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(steps, values) of each key in a `metrics.jsonl` (rows without the key are skipped)."""
    rows = [json.loads(line) for line in open(path) if line.strip()]
    out = {}
    for key in keys:
        pairs = [(r["step"], r[key]) for r in rows if key in r]
        out[key] = (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs], np.float64))
    return out


def curves_from_jsonl(path: str, keys: Sequence[str], title: str = "",
                      marks: dict[str, float] | None = None) -> np.ndarray:
    """`curves` of the given keys of a workdir's metrics.jsonl."""
    return curves({k: v for k, v in read_metrics(path, keys).items() if len(v[0])}, title, marks=marks)
