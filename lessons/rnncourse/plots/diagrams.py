"""Diagrams the lessons draw: the unrolled RNN, BPTT in chunks, the LSTM and GRU cells."""

import matplotlib.pyplot as plt
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


def _node(ax, xy, text):
    """A small circle holding an operator (x for elementwise product, + for sum)."""
    from matplotlib.patches import Circle

    ax.add_patch(Circle(xy, 0.2, facecolor="white", edgecolor="black", linewidth=1.2, zorder=3))
    ax.text(*xy, text, ha="center", va="center", fontsize=12, zorder=4)


def draw_lstm_cell(ax=None):
    """One LSTM step: the cell state c runs along the top, touched only by x f_t and + i_t g_t.

    Gates (sigmoid) and the candidate g_t (tanh) all read [x_t, h_{t-1}] from the bus at the
    bottom; the output h_t = o_t * tanh(c_t) leaves on the right.
    """
    ax = _axes(ax, (9.5, 4.4))
    blue, orange, green = "#dbe9f6", "#fde2c8", "#d9f0d3"
    top, gates, bus = 3.0, 1.3, 0.0
    # the cell state's highway
    _box(ax, (0, top), "$c_{t-1}$", orange)
    _box(ax, (8.6, top), "$c_t$", orange)
    _node(ax, (2.2, top), "×")
    _node(ax, (4.2, top), "+")
    _arrow(ax, (0.32, top), (2.0, top), color="#b35806")
    _arrow(ax, (2.4, top), (4.0, top), color="#b35806")
    _arrow(ax, (4.4, top), (8.28, top), color="#b35806")
    # gates and candidate, all reading the bus
    for x, name, label, color, dx in (
        (2.2, "$f_t$", r"$\sigma$", blue, 0.1),
        (3.5, "$i_t$", r"$\sigma$", blue, -0.42),
        (4.9, "$g_t$", "tanh", green, 0.1),
        (6.2, "$o_t$", r"$\sigma$", blue, 0.1),
    ):
        _box(ax, (x, gates), label, color)
        ax.text(x + dx, gates + 0.3, name, fontsize=10)
        _arrow(ax, (x, bus), (x, gates - 0.22))
    _arrow(ax, (2.2, gates + 0.22), (2.2, top - 0.2))
    _node(ax, (4.2, 2.15), "×")
    _arrow(ax, (3.5, gates + 0.22), (4.05, 2.02))
    _arrow(ax, (4.9, gates + 0.22), (4.35, 2.02))
    _arrow(ax, (4.2, 2.35), (4.2, top - 0.2))
    # output
    _box(ax, (7.3, 2.15), "tanh", green)
    _arrow(ax, (7.3, top), (7.3, 2.37))
    _node(ax, (7.3, gates), "×")
    _arrow(ax, (7.3, 1.93), (7.3, gates + 0.2))
    _arrow(ax, (6.52, gates), (7.1, gates))
    _box(ax, (8.6, gates), "$h_t$", orange)
    _arrow(ax, (7.5, gates), (8.28, gates))
    # the input bus
    _box(ax, (0, bus), "$h_{t-1}$", orange)
    _box(ax, (1.1, -0.9), "$x_t$", blue)
    ax.plot([0.32, 6.2], [bus, bus], color="black", linewidth=1.3)
    _arrow(ax, (1.1, -0.68), (1.1, bus))
    ax.text(0.9, top + 0.35, "cell state: scaled by $f_t$, added to, never squashed", fontsize=9)
    ax.text(1.5, -0.95, "every box reads $[x_t, h_{t-1}]$ through its own weights", fontsize=9)
    ax.set_title(
        r"An LSTM step: $c_t = f_t \odot c_{t-1} + i_t \odot g_t$, $h_t = o_t \odot \tanh(c_t)$"
    )
    ax.set_xlim(-0.6, 9.2)
    ax.set_ylim(-1.3, 3.8)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def draw_bptt(num_steps: int = 4, chunk_size: int | None = None, ax=None):
    """Backpropagation through time on the unrolled RNN: inputs x_t, states h_t, losses L_t.

    Black arrows are the forward pass, red arrows the gradients: from each loss into its state
    (``dH[:, t]``) and from each state back to the one before (``dh_prev``). With
    ``chunk_size`` (truncated BPTT) dashed lines mark the chunk boundaries: the state still
    flows forward across them, the gradient does not.
    """
    ax = _axes(ax, (1.9 * num_steps + 1.6, 4.2))
    red, gap = "#c0392b", 1.9
    y_x, y_h, y_loss = 0.0, 1.3, 2.6
    _box(ax, (0, y_h), "$h_0$", "#eeeeee")
    for t in range(1, num_steps + 1):
        x = gap * t
        _box(ax, (x, y_x), f"$x_{{{t}}}$", "#dbe9f6")
        _box(ax, (x, y_h), f"$h_{{{t}}}$", "#fde2c8")
        _box(ax, (x, y_loss), rf"$\mathcal{{L}}_{{{t}}}$", "#d9f0d3")
        last = t == num_steps
        _arrow(ax, (x - 0.12, y_x + 0.22), (x - 0.12, y_h - 0.22))  # x_t -> h_t
        _arrow(ax, (x - 0.12, y_h + 0.22), (x - 0.12, y_loss - 0.22))  # h_t -> L_t
        _arrow(ax, (x - gap + 0.32, y_h + 0.08), (x - 0.32, y_h + 0.08))  # h_{t-1} -> h_t
        _arrow(ax, (x + 0.12, y_loss - 0.22), (x + 0.12, y_h + 0.22), color=red)  # dH[:, t]
        _arrow(ax, (x + 0.12, y_h - 0.22), (x + 0.12, y_x + 0.22), color=red)  # dx_t
        if last:
            ax.text(x + 0.2, (y_h + y_loss) / 2, "dH[:, t]", color=red, fontsize=9)
            ax.text(x + 0.2, (y_x + y_h) / 2, "dx_t", color=red, fontsize=9)
        cut = chunk_size is not None and (t - 1) % chunk_size == 0 and t > 1
        if cut:
            boundary = x - gap / 2
            ax.plot([boundary, boundary], [-0.45, y_loss + 0.45], "--", color="gray", lw=1.2)
            ax.text(boundary, y_h - 0.32, "×", color=red, fontsize=15, ha="center", va="center")
            ax.text(boundary, y_h - 0.62, "detach", color=red, fontsize=9, ha="center")
        else:
            _arrow(ax, (x - 0.32, y_h - 0.1), (x - gap + 0.32, y_h - 0.1), color=red, rad=-0.3)
        if last:
            ax.text(x - gap / 2, y_h - 0.62, "dh_prev", color=red, fontsize=9, ha="center")
    summed = "over time" if chunk_size is None else "over a chunk; one update per chunk"
    ax.text(
        gap * (num_steps + 1) / 2,
        -0.75,
        f"dW_xh, dW_hh, db_h: one contribution per step, summed {summed}",
        color=red,
        fontsize=9,
        ha="center",
    )
    title = "Backpropagation through time (black: forward, red: gradients)"
    if chunk_size is not None:
        title = f"Truncated BPTT, chunks of {chunk_size}: the state crosses, the gradient stops"
    ax.set_title(title)
    ax.set_xlim(-0.6, gap * num_steps + 0.9)
    ax.set_ylim(-1.0, 3.0)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def draw_gru_cell(ax=None):
    """One GRU step: the state h runs along the top, mixed with the candidate n_t by z_t.

    The gates r_t, z_t (sigmoid) and the candidate n_t (tanh) read [x_t, h_{t-1}] from the bus
    at the bottom; r_t only acts inside the candidate. There is no separate cell state.
    """
    ax = _axes(ax, (9.0, 4.4))
    blue, orange, green = "#dbe9f6", "#fde2c8", "#d9f0d3"
    top, gates, bus, mix, n_x = 3.0, 1.3, 0.0, 2.15, 5.4
    # the state's path: scaled by z_t, plus (1 - z_t) n_t
    _box(ax, (0, top), "$h_{t-1}$", orange)
    _box(ax, (7.2, top), "$h_t$", orange)
    _node(ax, (1.5, top), "×")
    _node(ax, (n_x, top), "+")
    _arrow(ax, (0.32, top), (1.3, top), color="#b35806")
    _arrow(ax, (1.7, top), (n_x - 0.2, top), color="#b35806")
    _arrow(ax, (n_x + 0.2, top), (6.88, top), color="#b35806")
    # gates and candidate, all reading the bus
    for x, name, label, color in (
        (1.5, "$z_t$", r"$\sigma$", blue),
        (3.0, "$r_t$", r"$\sigma$", blue),
        (n_x, "$n_t$", "tanh", green),
    ):
        _box(ax, (x, gates), label, color)
        ax.text(x + 0.36, gates - 0.42, name, fontsize=10)
        _arrow(ax, (x, bus), (x, gates - 0.22))
    _arrow(ax, (1.5, gates + 0.22), (1.5, top - 0.2))  # z_t * h_{t-1}
    _node(ax, (3.0, mix), "1−")
    _arrow(ax, (1.75, gates + 0.2), (2.82, mix - 0.08))
    _node(ax, (n_x, mix), "×")
    _arrow(ax, (3.2, mix), (n_x - 0.2, mix))
    _arrow(ax, (n_x, gates + 0.22), (n_x, mix - 0.2))
    _arrow(ax, (n_x, mix + 0.2), (n_x, top - 0.2))
    _arrow(ax, (3.32, gates), (n_x - 0.32, gates))  # the reset gate acts inside the candidate
    ax.text(
        (3.32 + n_x - 0.32) / 2,
        gates + 0.1,
        r"$r_t \odot (h_{t-1} W_{hn}^\top + b_{hn})$",
        fontsize=8,
        ha="center",
    )
    # the input bus
    _box(ax, (0, bus), "$h_{t-1}$", orange)
    _box(ax, (0.9, -0.9), "$x_t$", blue)
    ax.plot([0.32, n_x], [bus, bus], color="black", linewidth=1.3)
    _arrow(ax, (0.9, -0.68), (0.9, bus))
    ax.text(
        0.6,
        top + 0.35,
        "state: kept where $z_t = 1$, replaced by $n_t$ where $z_t = 0$",
        fontsize=9,
    )
    ax.text(1.3, -0.95, "every box reads $[x_t, h_{t-1}]$ through its own weights", fontsize=9)
    ax.set_title(r"A GRU step: $h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$")
    ax.set_xlim(-0.6, 7.8)
    ax.set_ylim(-1.3, 3.8)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax
