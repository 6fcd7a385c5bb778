"""rnncourse.lm's tied adaptive softmax (lesson 07's `cpu` language model): an exact
distribution over the whole vocabulary, the same loss as the full computation, gradients that
reach every embedding row it scores, and a RecurrentLM that trains and evaluates through it."""

import pytest
import torch
import torch.nn.functional as F

from rnncourse.data import CheckpointError, read_checkpoint
from rnncourse.lm import RecurrentLM, TiedAdaptiveSoftmax, evaluate_lm, stream_windows, train_window

V, H, CUTOFFS = 23, 6, [5, 12]  # head: ids 0-4 and two clusters; clusters 5-11 and 12-22


def _inputs(n=40, seed=0):
    """(hidden states (n, H), weight (V, H), targets (n,) covering the head and both clusters)."""
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, H, generator=g, dtype=torch.float64)
    weight = torch.randn(V, H, generator=g, dtype=torch.float64, requires_grad=True)
    edges = torch.tensor([0, 4, 5, 11, 12, 22])  # both ends of the head and of each cluster
    targets = torch.cat([edges, torch.randint(0, V, (n - len(edges),), generator=g)])
    return hidden, weight, targets


def _softmax():
    torch.manual_seed(0)
    out = TiedAdaptiveSoftmax(H, V, CUTOFFS).double()
    with torch.no_grad():  # not the zeros of a fresh layer: a bias sliced wrongly must show
        out.bias.normal_()
    return out


def test_log_prob_is_a_distribution_over_the_whole_vocabulary():
    hidden, weight, _ = _inputs()
    log_p = _softmax().log_prob(hidden, weight)
    assert log_p.shape == (len(hidden), V)
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(len(hidden), dtype=torch.float64))


def test_log_prob_factorises_into_head_and_cluster():
    """p(w) = p_head(cluster of w) * p_cluster(w), computed here from the definition."""
    out = _softmax()
    hidden, weight, _ = _inputs()
    logits = hidden @ weight.T + out.bias  # (n, V): each word's score, as the full softmax has it
    head = F.log_softmax(torch.cat([logits[:, :5], out.cluster(hidden)], -1), -1)
    expected = torch.cat(
        [head[:, :5], head[:, 5:6] + F.log_softmax(logits[:, 5:12], -1),
         head[:, 6:7] + F.log_softmax(logits[:, 12:], -1)], -1,
    )  # fmt: skip
    torch.testing.assert_close(out.log_prob(hidden, weight), expected)


def test_nll_is_exactly_the_log_prob_of_the_targets_and_has_its_gradient():
    out = _softmax()
    hidden, weight, targets = _inputs()
    fast = out.nll(hidden, targets, weight)
    (fast_grad,) = torch.autograd.grad(fast, weight)
    full = F.nll_loss(out.log_prob(hidden, weight), targets)
    (full_grad,) = torch.autograd.grad(full, weight)
    torch.testing.assert_close(fast, full)
    torch.testing.assert_close(fast_grad, full_grad)
    assert fast_grad[12:].abs().sum() > 0  # the rarest cluster's rows are trained (tied)


@pytest.mark.parametrize("cutoffs", [[], [0, 5], [5, 5], [12, 5], [5, V]])
def test_bad_cutoffs_are_refused(cutoffs):
    with pytest.raises(ValueError, match="cutoffs"):
        TiedAdaptiveSoftmax(H, V, cutoffs)


def test_adaptive_lm_needs_tied_weights():
    with pytest.raises(ValueError, match="tie_weights"):
        RecurrentLM(V, H, H, cutoffs=CUTOFFS)


def _lm():
    """A small float64 RecurrentLM with the tied adaptive softmax."""
    torch.manual_seed(0)
    return RecurrentLM(V, H, H, tie_weights=True, cutoffs=CUTOFFS).double()


def test_adaptive_lm_names_and_nll_agree_with_its_forward():
    lm = _lm()
    assert {name.split(".")[0] for name in lm.state_dict()} == {"embedding", "rnn", "fc"}
    g = torch.Generator().manual_seed(1)
    X, Y = torch.randint(0, V, (3, 7), generator=g), torch.randint(0, V, (3, 7), generator=g)
    log_p, _ = lm(X)
    nll, state = lm.nll(X, Y)
    assert log_p.shape == (3, 7, V) and state[0].shape == (1, 3, H)
    torch.testing.assert_close(nll, F.cross_entropy(log_p.reshape(-1, V), Y.reshape(-1)))


def test_train_window_and_evaluate_lm_run_through_the_adaptive_softmax():
    lm = _lm()
    g = torch.Generator().manual_seed(2)
    rows = torch.randint(0, 8, (4, 41), generator=g) % V  # a few frequent words, learnable
    windows = stream_windows(rows, 10)
    before, _ = evaluate_lm(lm, windows)
    expected = (
        sum(
            F.cross_entropy(lm(X)[0].reshape(-1, V), Y.reshape(-1), reduction="sum").item()
            for X, Y in windows[:1]
        )
        / windows[0][1].numel()
    )
    torch.testing.assert_close(evaluate_lm(lm, windows[:1])[0], expected)
    optimizer = torch.optim.Adam(lm.parameters(), lr=0.05)
    for _ in range(20):
        state = None
        for X, Y in windows:
            _, state = train_window(lm, X, Y, state, optimizer)
    assert evaluate_lm(lm, windows)[0] < before - 0.5


@pytest.mark.parametrize("cutoffs", [CUTOFFS, None])
def test_a_language_model_checkpoint_round_trips_through_the_safe_reader(tmp_path, cutoffs):
    """Lesson 07 saves LM_CONFIG (cutoffs a list, or None) and rebuilds the model from it."""
    config = dict(vocab_size=V, embed_size=H, num_hiddens=H, tie_weights=True, cutoffs=cutoffs)
    lm = RecurrentLM(**config)
    vocab = ["<pad>", "<unk>"] + [f"w{i}" for i in range(V - 2)]
    torch.save({"state_dict": lm.state_dict(), "vocab": vocab, "model_config": config},
               tmp_path / "lm.pt")  # fmt: skip
    checkpoint = read_checkpoint(tmp_path / "lm.pt", max_len=False)
    again = RecurrentLM(**checkpoint["model_config"])
    again.load_state_dict(checkpoint["state_dict"])  # strict
    X = torch.randint(0, V, (2, 5))
    torch.testing.assert_close(again.eval()(X)[0], lm.eval()(X)[0])


@pytest.mark.parametrize("value", [[5.0, 12.0], [True], {"a": 1}, (5, 12), torch.tensor([5])])
def test_a_checkpoint_config_with_other_values_is_refused(tmp_path, value):
    vocab = ["<pad>", "<unk>", "a"]
    torch.save({"state_dict": {"w": torch.zeros(1)}, "vocab": vocab,
                "model_config": {"cutoffs": value}}, tmp_path / "lm.pt")  # fmt: skip
    with pytest.raises(CheckpointError, match="lists of integers"):
        read_checkpoint(tmp_path / "lm.pt", max_len=False)
