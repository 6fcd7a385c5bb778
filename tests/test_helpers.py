"""The student-facing helpers: seeds, devices, numerics, toy tasks, plots."""

import matplotlib.pyplot as plt
import pytest
import torch

from rnncourse import get_device, rel_error, set_seed
from rnncourse.device import under_nbgrader
from rnncourse.plots import (
    accuracy_by_length,
    draw_unrolled_rnn,
    plot_accuracy_by_length,
    plot_curves,
    plot_heatmap,
)
from rnncourse.toy_tasks import encode_pattern, periodic_batch


def test_set_seed_makes_runs_repeatable():
    set_seed(3)
    a = torch.randn(5)
    set_seed(3)
    assert torch.equal(a, torch.randn(5))
    set_seed(4)
    assert not torch.equal(a, torch.randn(5))


def test_get_device_says_what_it_chose(capsys, monkeypatch):
    monkeypatch.delenv("RNNCOURSE_DEVICE", raising=False)
    device = get_device()
    assert device.type in {"cpu", "cuda", "mps"}
    assert f"Using device: {device}" in capsys.readouterr().out
    monkeypatch.setenv("RNNCOURSE_DEVICE", "cpu")
    assert get_device(verbose=False) == torch.device("cpu")


def test_under_nbgrader_follows_the_environment(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not under_nbgrader()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert under_nbgrader()


def test_rel_error_is_zero_for_equal_and_large_for_different():
    x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    assert rel_error(x, x) == 0
    assert rel_error(x, x + 1e-3) == pytest.approx(1e-3 / (2 * 1.0 + 1e-3))  # worst at x = 1
    assert rel_error(x, -x) == pytest.approx(1.0)


def test_the_helpers_hold_no_numerical_gradient():
    """Lesson 02 asks students to write numerical_gradient: the released package must not
    hand it to them (under that name or the one it had before)."""
    import rnncourse
    import rnncourse.numerics

    for module in (rnncourse, rnncourse.numerics):
        assert not hasattr(module, "numerical_gradient")
        assert not hasattr(module, "numerical_gradient_array")


def test_periodic_batch_windows_and_targets():
    pattern, alphabet = encode_pattern("abcab")
    assert alphabet == ["a", "b", "c"] and pattern.tolist() == [0, 1, 2, 0, 1]
    X, Y = periodic_batch(pattern, 16, 12, generator=torch.Generator().manual_seed(0))
    assert X.shape == Y.shape == (16, 12)
    assert torch.equal(X[:, 1:], Y[:, :-1])  # Y is X shifted by one step
    period = len(pattern)
    assert torch.equal(X[:, period:], X[:, :-period])  # windows repeat with the period
    assert len({tuple(r) for r in X[:, :period].tolist()}) > 1  # phases differ


def test_plots_draw_on_axes():
    fig, axes = plt.subplots(1, 3)
    assert draw_unrolled_rnn(3, ax=axes[0], backward=True) is axes[0]
    assert len(axes[0].patches) > 9
    plot_heatmap(torch.randn(4, 6), ax=axes[1], title="states")
    assert axes[1].images and axes[1].get_title() == "states"
    plot_curves({"a": [3, 2, 1], "b": [3, 1, 0.5]}, ax=axes[2], logy=True, reference={"c": 1.0})
    assert len(axes[2].lines) == 3 and axes[2].get_yscale() == "log"
    plt.close(fig)


def test_accuracy_by_length_bins_every_review_once_in_order_of_length():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10]  # 1..10, shuffled
    long_only = [n > 5 for n in lengths]  # right on the longer half only
    bins = accuracy_by_length(lengths, {"a": long_only, "all": [True] * 10}, num_bins=2)
    assert bins.ranges == [(1, 5), (6, 10)]
    assert bins.counts == [5, 5]
    assert bins.accuracy == {"a": [0.0, 1.0], "all": [1.0, 1.0]}
    # five bins of two: each bin's accuracy is the mean of its own reviews only
    five = accuracy_by_length(lengths, {"a": [n % 2 == 0 for n in lengths]}, num_bins=5)
    assert sum(five.counts) == 10 and five.accuracy["a"] == pytest.approx([0.5] * 5)


def test_plot_accuracy_by_length_draws_one_line_per_model_with_bin_sizes():
    bins = accuracy_by_length(torch.arange(1, 101), {"x": [True] * 50 + [False] * 50}, num_bins=4)
    fig, ax = plt.subplots()
    assert plot_accuracy_by_length(bins, ax=ax, title="t") is ax
    assert len(ax.lines) == 1 and list(ax.lines[0].get_ydata()) == [1.0, 1.0, 0.0, 0.0]
    assert "(25)" in ax.get_xticklabels()[0].get_text()
    plt.close(fig)
