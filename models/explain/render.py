"""Pictures of explanations, drawn with matplotlib's Agg canvas (no Qt, no display).

One row per sample (at most :data:`MAX_ROWS`), and per input what suits it:
the image beside the image under its heat map, a bar chart of a table's
columns (largest first), a steps x features map of a series, the tokens
coloured by their weight, or, for attention, a queries x keys map per layer
and head. Tables get a last row with the mean absolute attribution over all
explained samples (the global importance).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.explain.result import Explanation

MAX_ROWS = 6        # samples drawn
MAX_BARS = 15       # table columns drawn per sample
MAX_HEADS = 8       # attention heads drawn per layer
CELL = 2.6          # inches per cell


def _figure(heights: list[float], cols: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, CELL * cols), max(2.0, CELL * sum(heights) * 0.9 + 0.5)), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _limits(values: np.ndarray, signed: bool) -> tuple[float, float]:
    if signed:
        m = float(np.max(np.abs(values))) or 1.0
        return -m, m
    return 0.0, float(np.max(values)) or 1.0


def _image(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim == 3 and x.shape[-1] > 3:
        x = x[..., :3]
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def heat_of(attr: np.ndarray, signed: bool) -> np.ndarray:
    """An image attribution as one value per pixel (channels summed, or their largest for unsigned)."""
    a = np.asarray(attr, dtype=np.float64)
    if a.ndim == 3:
        a = a.sum(-1) if signed else a.max(-1)
    return a


def _cells(e: Explanation, k: int) -> list:
    """What to draw for sample ``k``: a list of (kind, payload)."""
    s = e.samples[k]
    cells = []
    if s.attention is not None:
        for att in s.attention:
            for h in range(min(att["scores"].shape[0], MAX_HEADS)):
                cells.append(("attention", (att, h)))
        return cells
    for i, (info, a) in enumerate(zip(e.inputs, s.attributions)):
        if a is None:
            continue
        x = s.values[i] if s.values else None
        if info.modality == "image" and np.asarray(a).ndim in (2, 3):
            cells.append(("picture", (info, x)))
            cells.append(("overlay", (info, x, a)))
        elif info.modality == "text":
            cells.append(("tokens", (info, x, a)))
        elif info.modality == "series" and np.asarray(a).ndim == 2:
            cells.append(("series", (info, x, a)))
        else:
            cells.append(("bars", (info, a)))
    return cells


def draw(e: Explanation, fig=None, *, opacity: float = 0.6, samples: list[int] | None = None):
    """Draw ``e`` into a matplotlib figure (a new one unless given); returns the figure."""
    shown = list(range(len(e.samples)))[:MAX_ROWS] if samples is None else samples[:MAX_ROWS]
    grid = [_cells(e, k) for k in shown]
    importance = e.feature_importance() if len(e.samples) > 1 else None
    cols = max([len(c) for c in grid] + [1])
    # A row of tokens needs little height; the rest are square-ish cells.
    heights = [0.45 if cells and all(kind == "tokens" for kind, _ in cells) else 1.0 for cells in grid]
    if importance:
        heights.append(0.4 + 0.06 * min(len(importance), MAX_BARS))
    if fig is None:
        fig = _figure(heights, cols)
    spec = fig.add_gridspec(len(heights), cols, height_ratios=heights)
    from matplotlib import colormaps

    signed = e.method not in ("saliency", "gradcam")
    cmap = colormaps["RdBu_r" if signed else "inferno"]
    for r, (k, cells) in enumerate(zip(shown, grid)):
        s = e.samples[k]
        name = e.target_names[s.target] if s.target < len(e.target_names) else str(s.target)
        score = s.prediction[s.target] if s.target < len(s.prediction) else float("nan")
        row_title = f"sample {s.index}" + ("" if e.method == "attention" else f": {name} ({score:.2f})")
        for c, (kind, payload) in enumerate(cells):
            ax = fig.add_subplot(spec[r, c] if len(cells) > 1 or cols == 1 or kind != "tokens"
                                 else spec[r, :])
            _draw_cell(ax, kind, payload, cmap, signed, opacity)
            if kind == "tokens":  # a short row: the label goes into the title
                ax.set_title(f"{row_title} — {ax.get_title()}", fontsize=8)
            elif c == 0:
                ax.set_ylabel(row_title, fontsize=8)
    if importance:
        ax = fig.add_subplot(spec[len(heights) - 1, :])
        names = [n for n, _ in importance[:MAX_BARS]][::-1]
        values = [v for _, v in importance[:MAX_BARS]][::-1]
        ax.barh(names, values, color="#1f77b4")
        ax.set_title(f"mean |attribution| over {len(e.samples)} samples", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(e.title + (f" — step {e.position}" if e.position is not None else ""), fontsize=10)
    fig.tight_layout()
    return fig


def _draw_cell(ax, kind: str, payload, cmap, signed: bool, opacity: float) -> None:
    ax.tick_params(labelsize=7)
    if kind == "picture":
        info, x = payload
        ax.imshow(_image(x), cmap="gray", interpolation="nearest")
        ax.set_title(info.name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    elif kind == "overlay":
        info, x, a = payload
        heat = heat_of(a, signed)
        lo, hi = _limits(heat, signed)
        ax.imshow(_image(x), cmap="gray", interpolation="nearest")
        im = ax.imshow(heat, cmap=cmap, vmin=lo, vmax=hi, alpha=opacity, interpolation="nearest")
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
        ax.set_title("attribution", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    elif kind == "bars":
        info, a = payload
        flat = np.asarray(a, dtype=np.float64).reshape(-1)
        names = info.feature_names if info.feature_names and len(info.feature_names) == flat.size \
            else [str(j) for j in range(flat.size)]
        order = np.argsort(-np.abs(flat))[:MAX_BARS][::-1]
        colors = ["#d62728" if flat[j] > 0 else "#1f77b4" for j in order]
        ax.barh([names[j] for j in order], flat[order], color=colors)
        ax.axvline(0, color="#888", lw=0.8)
        ax.set_title(info.name, fontsize=8)
    elif kind == "series":
        info, x, a = payload
        a = np.asarray(a, dtype=np.float64)
        lo, hi = _limits(a, signed)
        ax.imshow(a.T, cmap=cmap, vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
        ax.set_xlabel("step", fontsize=7)
        ax.set_ylabel("feature", fontsize=7)
        if info.feature_names and len(info.feature_names) == a.shape[1] and a.shape[1] <= 16:
            ax.set_yticks(range(a.shape[1]), info.feature_names)
        ax.set_title(info.name, fontsize=8)
    elif kind == "tokens":
        info, x, a = payload
        values = np.asarray(a, dtype=np.float64).reshape(-1)
        tokens = [str(int(t)) for t in np.asarray(x).reshape(-1)]
        lo, hi = _limits(values, signed)
        ax.set_xlim(0, len(tokens))
        ax.set_ylim(0, 1)
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        for j, (tok, v) in enumerate(zip(tokens, values)):
            color = cmap((v - lo) / (hi - lo) if hi > lo else 0.5)
            light = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2] > 0.5
            ax.text(j + 0.5, 0.5, tok, ha="center", va="center", fontsize=8,
                    color="#111" if light else "#fff",
                    bbox={"boxstyle": "round,pad=0.25", "facecolor": color, "edgecolor": "#999"})
        ax.set_title(f"{info.name} (red raises the output, blue lowers it)"
                     if signed else f"{info.name} (brighter: more weight)", fontsize=8)
    elif kind == "attention":
        att, h = payload
        m = np.asarray(att["scores"][h], dtype=np.float64)
        ax.imshow(m, cmap="viridis", vmin=0.0, vmax=max(float(m.max()), 1e-6), interpolation="nearest")
        q = [f"{i}:{t}" for i, t in enumerate(att["query_labels"])]  # position:token
        k = [f"{i}:{t}" for i, t in enumerate(att["key_labels"])]
        if len(k) <= 24:
            ax.set_xticks(range(len(k)), k, fontsize=6)
        if len(q) <= 24:
            ax.set_yticks(range(len(q)), q, fontsize=6)
        ax.set_xlabel("key", fontsize=7)
        ax.set_title(f"{att['layer']} head {h}", fontsize=8)


def save_png(e: Explanation, path: str | Path, *, opacity: float = 0.6,
             samples: list[int] | None = None) -> Path:
    """Draw ``e`` and write it as a PNG (atomically: a complete file or none)."""
    import tempfile

    from models.project import _atomic_copy

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = draw(e, opacity=opacity, samples=samples)
    with tempfile.TemporaryDirectory() as tmp:
        drawn = Path(tmp) / "explanation.png"
        fig.savefig(drawn, format="png")
        _atomic_copy(drawn, path)
    return path


__all__ = ["draw", "save_png", "heat_of"]
