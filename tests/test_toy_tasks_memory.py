"""Helpers added to rnncourse for the memory lessons: the adding problem, and lesson 04's plots."""

import matplotlib.pyplot as plt
import pytest
import torch

from rnncourse.plots import draw_gru_cell, moving_average, plot_predictions
from rnncourse.toy_tasks import adding_problem_batch


# ----------------------------------------------------------------------------- adding problem
@pytest.mark.parametrize("num_steps", [2, 3, 10, 51])
def test_adding_problem_marks_one_step_in_each_half_and_adds_them(num_steps):
    g = torch.Generator().manual_seed(0)
    X, y = adding_problem_batch(256, num_steps, generator=g)
    assert X.shape == (256, num_steps, 2) and y.shape == (256,)
    assert X.dtype == y.dtype == torch.float32
    values, markers = X[..., 0], X[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) <= {0.0, 1.0}
    half = num_steps // 2
    assert (markers[:, :half].sum(1) == 1).all()  # one marker in the first half
    assert (markers[:, half:].sum(1) == 1).all()  # and one in the second
    first = markers[:, :half].argmax(1)
    second = half + markers[:, half:].argmax(1)
    rows = torch.arange(256)
    assert torch.allclose(y, values[rows, first] + values[rows, second])


def test_adding_problem_is_repeatable_and_varied():
    a = adding_problem_batch(64, 20, generator=torch.Generator().manual_seed(1))
    b = adding_problem_batch(64, 20, generator=torch.Generator().manual_seed(1))
    c = adding_problem_batch(64, 20, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    first_marks = a[0][:, :10, 1].argmax(1)
    assert len(set(first_marks.tolist())) > 3  # the marker moves from sequence to sequence


def test_adding_problem_targets_have_the_mean_of_two_uniform_values():
    _, y = adding_problem_batch(20_000, 8, generator=torch.Generator().manual_seed(3))
    assert abs(y.mean().item() - 1.0) < 0.02  # E[u1 + u2] = 1/2 + 1/2
    assert 0 <= y.min() and y.max() < 2


def test_adding_problem_needs_two_steps():
    with pytest.raises(ValueError, match="num_steps >= 2"):
        adding_problem_batch(4, 1)


# ----------------------------------------------------------------------------- plots
def test_moving_average_means_the_last_window_values():
    assert moving_average([1.0, 2.0, 3.0, 4.0], 1) == [1.0, 2.0, 3.0, 4.0]
    assert moving_average([1.0, 2.0, 3.0, 4.0], 2) == [1.0, 1.5, 2.5, 3.5]
    assert moving_average([3.0, 1.0, 2.0], 10) == [3.0, 2.0, 2.0]  # fewer at the start
    assert moving_average([], 5) == []


def test_gru_cell_diagram_and_prediction_plot_draw_on_axes():
    fig, axes = plt.subplots(1, 2)
    assert draw_gru_cell(ax=axes[0]) is axes[0]
    assert len(axes[0].patches) > 10  # boxes, operator nodes and arrows
    y = torch.rand(50) * 2
    assert plot_predictions(y, {"good": y, "constant": torch.ones(50)}, ax=axes[1]) is axes[1]
    assert len(axes[1].collections) == 2  # one scatter per model
    assert axes[1].get_legend() is not None
    plt.close(fig)
