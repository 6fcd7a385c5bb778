"""rnncourse.stream_training.fit_stream_lm, the truncated-BPTT loop lessons 06 and 07 share:
every window in reading order with the state carried, a fresh state at each new pass, the
update budget kept, and the validation curve measured where it says."""

import torch

from rnncourse.lm import RecurrentLM, stream_windows
from rnncourse.stream_training import fit_stream_lm

ROWS = torch.arange(2 * 11).view(2, 11)  # windows of 4: columns 0-3, 4-7, 8-9 (3 per pass)


class Recorder:
    """A train_window and an evaluate_lm that record what the loop gives them."""

    def __init__(self):
        self.calls, self.evaluations = [], 0

    def train_window(self, model, X, Y, state, optimizer, max_norm):
        self.calls.append((X[0, 0].item(), state))
        return 0.0, len(self.calls)  # the "state" this window ends with: its number

    def evaluate_lm(self, model, windows):
        self.evaluations += 1
        return float(len(self.calls)), 1.0


def _fit(recorder, **budget):
    model = RecurrentLM(30, 4, 4)
    budget = dict(lr=1e-3, num_steps=4, max_norm=1.0, seconds=None, max_updates=7) | budget
    return fit_stream_lm(
        model, ROWS, [], stream_windows=stream_windows, train_window=recorder.train_window,
        evaluate_lm=recorder.evaluate_lm, **budget,
    )  # fmt: skip


def test_windows_in_order_state_carried_and_reset_at_each_pass():
    recorder = Recorder()
    _fit(recorder)
    starts = [start for start, _ in recorder.calls]
    states = [state for _, state in recorder.calls]
    assert starts == [0, 4, 8, 0, 4, 8, 0]  # 7 updates: two passes and one window of a third
    assert states == [None, 1, 2, None, 4, 5, None]  # the state of the window before, or none


def test_update_budget_and_evaluation_points():
    recorder = Recorder()
    curve = _fit(recorder, max_updates=10, evaluations=5)
    assert len(recorder.calls) == 10
    assert [updates for _, updates, _ in curve] == [0, 2, 4, 6, 8, 10]
    assert [loss for _, _, loss in curve] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


def test_time_budget_stops_training():
    recorder = Recorder()
    curve = _fit(recorder, seconds=1e-9, max_updates=None)
    assert len(recorder.calls) == 1  # the first update already spends the budget
    assert curve[-1][1] == 1 and curve[-1][0] > 0
