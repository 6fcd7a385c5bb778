"""Figures of text models: how a stream is cut into windows, a model's surprise per character."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from rnncourse.plots.diagrams import _axes


def plot_stream_layout(num_chars: int = 60, batch_size: int = 4, num_steps: int = 4, ax=None):
    """The rows of ``batchify`` and the windows of ``stream_windows``, drawn.

    Top strip: the stream of ``num_chars`` characters, coloured by the row it goes to. Below:
    the (B, L) rows, each cell labelled with its position in the stream and coloured by the
    window that reads it as an input (white: the last column, only ever a target).
    """
    B = batch_size
    L = num_chars // B
    ax = _axes(ax, (min(14, 0.42 * L + 2), 0.55 * (B + 2) + 0.6))
    row_colours = plt.get_cmap("Pastel1")
    for i in range(num_chars):  # the stream
        row = i // L if i < B * L else None
        face = row_colours(row) if row is not None else "#dddddd"
        ax.add_patch(
            plt.Rectangle((i * L / num_chars, B + 0.6), L / num_chars, 0.7, fc=face, ec="white")
        )
    for b in range(B):  # which part of the stream becomes which row
        ax.text((b + 0.5) * L * L / num_chars, B + 0.95, f"→ row {b}", ha="center", fontsize=7)
    ax.text(-0.3, B + 0.95, "stream", ha="right", va="center", fontsize=9)
    window_colours = ListedColormap(plt.get_cmap("tab20").colors)
    for b in range(B):
        for j in range(L):
            window = j // num_steps if j < L - 1 else None
            face = window_colours(2 * (window % 10) + 1) if window is not None else "white"
            ax.add_patch(plt.Rectangle((j, B - 1 - b), 1, 1, fc=face, ec="gray", lw=0.5))
            ax.text(j + 0.5, B - 0.5 - b, str(b * L + j), ha="center", va="center", fontsize=7)
        ax.text(-0.3, B - 0.5 - b, f"row {b}", ha="right", va="center", fontsize=9)
    for start in range(0, L - 1, num_steps):
        ax.text(start + 0.1, -0.35, f"X of window {start // num_steps}", fontsize=7, va="top")
    ax.set(xlim=(-2.2, L + 0.2), ylim=(-0.9, B + 1.5))
    ax.set_title(
        f"{num_chars} characters, batch_size B = {B}, rows of L = {L}, num_steps T = {num_steps}: "
        "Y is X shifted one column right",
        fontsize=9,
    )
    ax.axis("off")
    return ax


def plot_char_probabilities(text: str, probs, width: int = 80, ax=None):
    """``text`` on a grid, each character shaded by the probability the model gave it (dark:
    expected, light: a surprise); line breaks are drawn as ↵."""
    probs = np.asarray(probs, dtype=float)
    rows = (len(text) + width - 1) // width
    ax = _axes(ax, (0.16 * width + 1.2, 0.36 * rows + 0.8))
    cmap = plt.get_cmap("Blues")
    for i, (char, p) in enumerate(zip(text, probs, strict=True)):
        x, y = i % width, rows - 1 - i // width
        ax.add_patch(plt.Rectangle((x, y), 1, 1, fc=cmap(0.1 + 0.9 * p), ec="none"))
        shown = "↵" if char == "\n" else char
        ax.text(
            x + 0.5,
            y + 0.5,
            shown,
            ha="center",
            va="center",
            fontsize=8,
            family="monospace",
            color="white" if p > 0.6 else "black",
        )
    ax.set(xlim=(0, width), ylim=(0, rows))
    ax.set_title("p(next character | text so far): dark = expected, light = surprising", fontsize=9)
    ax.axis("off")
    mappable = plt.cm.ScalarMappable(cmap=cmap)
    mappable.set_clim(0, 1)
    ax.figure.colorbar(mappable, ax=ax, fraction=0.02, pad=0.01, label="probability")
    return ax
