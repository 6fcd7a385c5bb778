"""Figures the lessons share: unrolled graphs, heatmaps and training curves.

Every function draws on a Matplotlib ``Axes`` (a new figure if none is given) and returns it,
so that notebooks can combine them with ``plt.subplots``.
"""

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch


def _axes(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _box(ax, xy, text, color):
    x, y = xy
    ax.add_patch(
        FancyBboxPatch(
            (x - 0.32, y - 0.22),
            0.64,
            0.44,
            boxstyle="round,pad=0.02",
            facecolor=color,
            edgecolor="black",
            linewidth=1,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=11)


def _arrow(ax, start, end, label="", color="black", style="-|>", rad=0.0):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=12,
            color=color,
            linewidth=1.3,
            connectionstyle=f"arc3,rad={rad}",
        )
    )
    if label:
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        ax.text(mx + 0.05, my + 0.05, label, fontsize=9, color=color)


def draw_unrolled_rnn(num_steps: int = 4, ax=None, backward: bool = False):
    """The RNN unrolled over ``num_steps``: inputs x_t, hidden states h_t, outputs y_t.

    Weights are shared across steps, which the labels show. With ``backward=True`` red
    arrows draw the gradient flowing back through time (lesson 02).
    """
    ax = _axes(ax, (2.0 * num_steps + 1.5, 3.6))
    for t in range(1, num_steps + 1):
        x = 1.6 * t
        _box(ax, (x, 0), f"$x_{t}$", "#dbe9f6")
        _box(ax, (x, 1.2), f"$h_{t}$", "#fde2c8")
        _box(ax, (x, 2.4), f"$y_{t}$", "#d9f0d3")
        _arrow(ax, (x, 0.22), (x, 0.98), "$W_{xh}$")
        _arrow(ax, (x, 1.42), (x, 2.18), "$W_{hy}$")
        _arrow(ax, (x - 1.28, 1.2), (x - 0.32, 1.2), "$W_{hh}$")
        if backward:
            _arrow(ax, (x - 0.32, 1.08), (x - 1.28, 1.08), color="#c0392b", rad=-0.35)
    _box(ax, (0, 1.2), "$h_0$", "#eeeeee")
    ax.text(1.6 * num_steps + 0.6, 1.2, "...", fontsize=14, va="center")
    title = "Unrolled RNN: the same weights at every step"
    ax.set_title(title + (" (red: gradient flow back through time)" if backward else ""))
    ax.set_xlim(-0.6, 1.6 * num_steps + 1.0)
    ax.set_ylim(-0.5, 2.9)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def plot_heatmap(
    matrix,
    ax=None,
    *,
    title="",
    xlabel="",
    ylabel="",
    cmap="RdBu_r",
    symmetric=True,
    colorbar_label="",
):
    """A 2-D tensor or array as a heatmap; ``symmetric`` centres the colour scale on zero."""
    data = torch.as_tensor(matrix).detach().cpu().double()
    ax = _axes(ax, (8, 3.2))
    limit = data.abs().max().item() or 1.0
    kwargs = {"vmin": -limit, "vmax": limit} if symmetric else {}
    image = ax.imshow(data.numpy(), aspect="auto", cmap=cmap, interpolation="nearest", **kwargs)
    ax.figure.colorbar(image, ax=ax, label=colorbar_label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    ax=None,
    *,
    title="",
    xlabel="step",
    ylabel="loss",
    logy=False,
    reference: Mapping[str, float] | None = None,
):
    """Training curves side by side, with optional horizontal reference lines (e.g. chance)."""
    ax = _axes(ax, (6.5, 3.6))
    for name, values in curves.items():
        ax.plot(list(values), label=name, linewidth=1.6)
    for name, value in (reference or {}).items():
        ax.axhline(value, linestyle="--", color="gray", linewidth=1)
        ax.text(0, value, f" {name}", va="bottom", color="gray", fontsize=9)
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    return ax
