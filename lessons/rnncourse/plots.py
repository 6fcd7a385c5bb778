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


def plot_gate_activations(gates, ax=None, *, xticklabels=None, title="", ranges=None):
    """One heatmap per gate, (units x time), on a fixed colour scale.

    ``gates`` maps a name to a (T, H) tensor or array; ``ranges`` maps a name to its
    (vmin, vmax) (default (0, 1), the range of a sigmoid gate). ``ax`` is a sequence of axes,
    one per gate; returns it.
    """
    names = list(gates)
    if ax is None:
        _, ax = plt.subplots(
            len(names), 1, figsize=(8, 2.1 * len(names)), sharex=True, squeeze=False
        )
        ax = ax[:, 0]
    for axis, name in zip(ax, names, strict=True):
        data = torch.as_tensor(gates[name]).detach().cpu().double().T  # (H, T)
        vmin, vmax = (ranges or {}).get(name, (0.0, 1.0))
        cmap = "RdBu_r" if vmin < 0 else "viridis"
        image = axis.imshow(
            data.numpy(), aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest"
        )
        axis.figure.colorbar(image, ax=axis, pad=0.01)
        axis.set_ylabel(f"{name}\nunit")
    if xticklabels is not None:
        ax[-1].set_xticks(range(len(xticklabels)), list(xticklabels))
    ax[-1].set_xlabel("time step t")
    if title:
        ax[0].set_title(title)
    return ax


def plot_runs(
    groups: Mapping[str, Sequence[Sequence[float]]],
    ax=None,
    *,
    title="",
    xlabel="step",
    ylabel="loss",
    logy=False,
    reference: Mapping[str, float] | None = None,
):
    """Several runs per setting (e.g. seeds): thin lines per run, a thick median per setting."""
    ax = _axes(ax, (6.5, 3.6))
    for k, (name, runs) in enumerate(groups.items()):
        color = f"C{k}"
        data = torch.as_tensor([list(r) for r in runs], dtype=torch.float64)  # (runs, steps)
        for run in data:
            ax.plot(run.numpy(), color=color, linewidth=0.7, alpha=0.35)
        ax.plot(data.median(dim=0).values.numpy(), color=color, linewidth=2, label=name)
    for name, value in (reference or {}).items():
        ax.axhline(value, linestyle="--", color="gray", linewidth=1)
        ax.text(0, value, f" {name}", va="bottom", color="gray", fontsize=9)
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
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


def _as_float64(values) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double()
    return torch.as_tensor(list(values), dtype=torch.float64)


def plot_log_curves(
    curves: Mapping[str, Sequence[float]],
    ax=None,
    *,
    x: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    bounds: Mapping[str, Sequence[float]] | None = None,
    bound_label: str = "bound",
    title="",
    xlabel="",
    ylabel="",
    reference: Mapping[str, float] | None = None,
):
    """Curves on a log scale, each with an optional dashed companion in its own colour.

    ``x`` gives the abscissae, shared or per curve (a mapping by name; default 0, 1, ...).
    ``bounds`` maps a curve's name to values drawn dashed (a theoretical bound, a predicted
    rate); the legend names them once, as ``bound_label``. ``reference`` adds grey dotted
    horizontal lines (e.g. chance), named in the legend. Non-finite values leave gaps.
    """
    ax = _axes(ax, (6.5, 3.8))
    bound_named = False
    for name, values in curves.items():
        values = _as_float64(values)
        xs = x.get(name) if isinstance(x, Mapping) else x
        xs = list(xs) if xs is not None else list(range(len(values)))
        (line,) = ax.plot(xs, values.numpy(), label=name, linewidth=1.6)
        if bounds is not None and name in bounds:
            bound = _as_float64(bounds[name])
            label = None if bound_named else bound_label
            ax.plot(xs, bound.numpy(), "--", color=line.get_color(), linewidth=1, label=label)
            bound_named = True
    for name, value in (reference or {}).items():
        ax.axhline(value, linestyle=":", color="gray", linewidth=1.2, label=name)
    ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
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


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """The mean of the last ``window`` values at each step (fewer at the start): smooths noisy
    per-batch losses without shifting them in time."""
    data = torch.as_tensor(list(values), dtype=torch.float64)
    sums = torch.cat([torch.zeros(1, dtype=torch.float64), data.cumsum(0)])
    ends = torch.arange(1, len(data) + 1)
    starts = (ends - window).clamp(min=0)
    return ((sums[ends] - sums[starts]) / (ends - starts)).tolist()


def plot_predictions(
    targets, predictions: Mapping[str, object], ax=None, *, title="", label="target"
):
    """Predicted against true values for several models, with the diagonal a perfect model hits."""
    ax = _axes(ax, (4.2, 4.0))
    y = torch.as_tensor(targets).detach().cpu().double()
    low, high = y.min().item(), y.max().item()
    ax.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1)
    for name, values in predictions.items():
        pred = torch.as_tensor(values).detach().cpu().double()
        ax.scatter(y.numpy(), pred.numpy(), s=6, alpha=0.5, label=name)
    ax.set(title=title, xlabel=f"true {label}", ylabel=f"predicted {label}")
    ax.grid(alpha=0.3)
    if len(predictions) > 1:
        ax.legend(markerscale=2)
    return ax


# ----------------------------------------------------------------------------- lesson 05
def plot_confusion_matrix(
    matrix, class_names: Sequence[str], ax=None, *, title="", xlabel="predicted", ylabel="true"
):
    """A confusion matrix (rows: true class, columns: predicted) with counts and row shares."""
    data = torch.as_tensor(matrix).detach().cpu().double()
    shares = data / data.sum(dim=1, keepdim=True).clamp_min(1)
    ax = _axes(ax, (3.8, 3.4))
    ax.imshow(shares.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            ax.text(
                j,
                i,
                f"{int(data[i, j]):,}\n{shares[i, j]:.1%}",
                ha="center",
                va="center",
                color="white" if shares[i, j] > 0.5 else "black",
                fontsize=10,
            )
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names)
    ax.set_yticks(ticks, class_names)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def plot_batch_padding(batch_lengths: Sequence[Sequence[int]], ax=None, *, title=""):
    """Batches of sequences as stacked bars: real tokens dark, padding light.

    ``batch_lengths`` holds one list of sequence lengths per batch; every sequence of a batch
    is padded to the batch's longest, which is the light part. The title gets the share of
    the drawn tokens that are padding.
    """
    ax = _axes(ax, (7.0, 3.0))
    row, real_total, padded_total = 0, 0, 0
    for lengths in batch_lengths:
        longest = max(lengths)
        for length in lengths:
            ax.barh(row, length, color="#2b6a99", height=1.0)
            ax.barh(row, longest - length, left=length, color="#f3c7a6", height=1.0)
            row += 1
            real_total, padded_total = real_total + length, padded_total + longest
        ax.axhline(row - 0.5, color="white", linewidth=2)
    waste = 1 - real_total / max(padded_total, 1)
    ax.set_title(f"{title} ({waste:.0%} padding)" if title else f"{waste:.0%} padding")
    ax.set(xlabel="time step (token)", ylabel="sequence, batch by batch")
    ax.invert_yaxis()
    return ax


def plot_bars(values: Mapping[str, float], ax=None, *, title="", ylabel="", fmt="{:,.0f}"):
    """One labelled bar per entry, its value printed on top (e.g. tokens per second)."""
    ax = _axes(ax, (5.0, 3.2))
    names, heights = list(values), [float(v) for v in values.values()]
    bars = ax.bar(names, heights, color=plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for bar, height in zip(bars, heights, strict=True):
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            height,
            fmt.format(height),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.set(title=title, ylabel=ylabel)
    ax.margins(y=0.15)
    return ax


class LiveCurves:
    """Training curves that redraw in place in a notebook, one panel per quantity.

    ``panels`` maps a panel's title to the names of its curves, e.g.
    ``{"loss": ["train"], "accuracy": ["train", "validation"]}``. Call ``update`` with
    ``{"loss/train": 0.41, ...}`` (panel/curve) after each epoch; outside a notebook it
    only records the values. ``history`` holds everything recorded.
    """

    def __init__(self, panels: Mapping[str, Sequence[str]], *, xlabel="epoch", display=True):
        self.panels = {title: list(curves) for title, curves in panels.items()}
        self.history = {f"{t}/{c}": [] for t, curves in self.panels.items() for c in curves}
        self.xlabel = xlabel
        self.figure, axes = plt.subplots(1, len(self.panels), figsize=(4.2 * len(self.panels), 3.2))
        self.axes = list(axes) if len(self.panels) > 1 else [axes]
        plt.close(self.figure)  # shown through the display handle only, never twice
        self._handle = None
        if display:
            try:
                from IPython import get_ipython
                from IPython.display import display as show

                if get_ipython() is not None:
                    self._handle = show(self.figure, display_id=True)
            except ImportError:  # plain Python without IPython: record only
                self._handle = None

    def update(self, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            if key not in self.history:
                raise KeyError(f"unknown curve {key!r}; expected one of {sorted(self.history)}")
            self.history[key].append(float(value))
        for ax, (title, curves) in zip(self.axes, self.panels.items(), strict=True):
            ax.clear()
            for curve in curves:
                ys = self.history[f"{title}/{curve}"]
                ax.plot(range(1, len(ys) + 1), ys, marker="o", linewidth=1.6, label=curve)
            ax.set(title=title, xlabel=self.xlabel)
            ax.grid(alpha=0.3)
            if len(curves) > 1:
                ax.legend()
        self.figure.tight_layout()
        if self._handle is not None:
            self._handle.update(self.figure)
