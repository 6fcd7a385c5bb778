"""Charts of what the lessons measure: curves, heatmaps, gates, runs, predictions, batches."""

import dataclasses
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch

from rnncourse.plots.diagrams import _axes


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


@dataclasses.dataclass(frozen=True)
class LengthBins:
    """Accuracy of each model within groups of reviews of similar length, equal in size."""

    ranges: list[tuple[int, int]]  # shortest and longest length in each group
    counts: list[int]  # reviews per group
    accuracy: dict[str, list[float]]  # model name -> accuracy per group


def accuracy_by_length(lengths, correct: Mapping[str, Sequence[bool]], num_bins=5) -> LengthBins:
    """Sort the reviews by ``lengths`` (N,), cut them into ``num_bins`` groups of equal size
    (sizes differ by at most one) and average each model's ``correct`` (N,) in every group."""
    lengths = torch.as_tensor(lengths)
    groups = torch.argsort(lengths, stable=True).tensor_split(num_bins)  # shortest first
    hits = {name: torch.as_tensor(c, dtype=torch.float64) for name, c in correct.items()}
    return LengthBins(
        ranges=[(int(lengths[g].min()), int(lengths[g].max())) for g in groups],
        counts=[len(g) for g in groups],
        accuracy={name: [h[g].mean().item() for g in groups] for name, h in hits.items()},
    )


def plot_accuracy_by_length(
    bins: LengthBins, ax=None, *, title="", xlabel="review length in tokens"
):
    """One line per model: accuracy in each length bin, the bin's range and size on the x axis."""
    ax = _axes(ax, (7.0, 3.6))
    positions = range(len(bins.counts))
    for name, values in bins.accuracy.items():
        ax.plot(positions, values, marker="o", label=name)
    labels = [f"{lo}-{hi}\n({n:,})" for (lo, hi), n in zip(bins.ranges, bins.counts, strict=True)]
    ax.set_xticks(list(positions), labels)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda y, _: f"{y:.1%}"))
    ax.set(title=title, xlabel=f"{xlabel} (reviews per bin)", ylabel="accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
