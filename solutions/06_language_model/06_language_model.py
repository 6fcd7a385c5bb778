# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 06 — A character-level language model of movie reviews
#
# Recurrent networks are best known not for classifying sequences but for *modelling* them:
# reading text one character at a time and saying, at every step, how likely each next
# character is. A model that does this well has learned spelling, words, punctuation and a
# little grammar — and it can write. This lesson trains one on 50,000 IMDB reviews, measures
# it honestly against a counting baseline, and then lets it write reviews of its own.
#
# **Learning goals.** After this lesson you can
# - cut a long text into the batches of **truncated backpropagation through time**: B
#   parallel streams read in windows of T steps, the state carried from window to window and
#   detached in between;
# - train and evaluate a character-level LSTM language model and report it in **bits per
#   character** and **perplexity**, computed over every character (not averaged per batch);
# - generate text from it with **temperature** and **top-k** sampling from a seeded
#   generator, and beat an n-gram model you built yourself.
#
# **Prerequisites.** Lesson 02 (truncated BPTT, clipping), lessons 03–04 (`nn.LSTM`,
# `nn.GRU` and their states), lesson 05 (`nn.Embedding`, the IMDB reviews). On two CPU cores
# the `cpu` configuration trains for four minutes (section 8) plus three 30-second
# comparison runs; a GPU gets much further in the same time.
#
# Work top to bottom. Each exercise has an answer cell (replace `raise NotImplementedError()`),
# a cell to try it, and a locked test cell; the tests you see are a subset of those used for
# grading. Before you submit: *Kernel → Restart Kernel and Run All Cells*.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import copy
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnncourse import get_device, set_seed
from rnncourse.checks import (
    check_batchify,
    check_char_lm,
    check_detach_state,
    check_evaluate_lm,
    check_lm_beats_unigram,
    check_ngram_log_probs,
    check_sample_seeded_and_primed,
    check_sample_temperature_and_top_k,
    check_stream_windows,
    check_train_window,
)
from rnncourse.data import load_char_corpus
from rnncourse.device import under_nbgrader
from rnncourse.plots import plot_char_probabilities, plot_stream_layout
from rnncourse.stream_training import fit_stream_lm

DEVICE = get_device()  # prints its choice; graded code never needs a GPU
set_seed(0)

# %% [markdown]
# ### How much to train
#
# `gpu` is the reference configuration for one recent GPU (a 2-layer LSTM of 1024 units, five
# minutes); `cpu` trains a 1-layer LSTM of 512 units for four minutes on two CPU cores;
# `nbgrader` is what runs while your notebook is graded (60 updates of a small model on a
# slice of the text). Change `CONFIG_NAME` to choose another one. Times are of training
# alone; `fit_lm` measures validation bits/char ten times along the way, on `valid_chars`
# characters of the validation slice.

# %%
CONFIGS = {
    "gpu": dict(
        cell="lstm", embed_size=128, num_hiddens=1024, num_layers=2, dropout=0.2,
        batch_size=128, num_steps=200, lr=2e-3, max_norm=1.0, train_chars=None,
        seconds=300, max_updates=None, valid_chars=None, compare_seconds=60,
        ngram_chars=5_000_000,
    ),
    "cpu": dict(
        cell="lstm", embed_size=64, num_hiddens=512, num_layers=1, dropout=0.0,
        batch_size=64, num_steps=128, lr=3e-3, max_norm=1.0, train_chars=None,
        seconds=240, max_updates=None, valid_chars=100_000, compare_seconds=30,
        ngram_chars=5_000_000,
    ),
    "nbgrader": dict(
        cell="lstm", embed_size=32, num_hiddens=128, num_layers=1, dropout=0.0,
        batch_size=32, num_steps=64, lr=1e-2, max_norm=1.0, train_chars=400_000,
        seconds=None, max_updates=60, valid_chars=20_000, compare_seconds=None,
        ngram_chars=400_000,
    ),
}  # fmt: skip

# %%
if under_nbgrader():
    CONFIG_NAME = "nbgrader"
else:
    CONFIG_NAME = "gpu" if DEVICE.type == "cuda" else "cpu"
CONFIG = CONFIGS[CONFIG_NAME]
print(f"configuration {CONFIG_NAME!r}: {CONFIG}")

# %% [markdown]
# ## 1. The text: 65 million characters of movie reviews
#
# Lesson 05 used the 50,000 *labelled* reviews. A language model needs no labels, so here we
# use the other 50,000, the unlabelled ones, and never the test reviews. `load_char_corpus()`
# cleans each review (every `<br />` becomes a space, as in lesson 05), ends it with a line
# break `"\n"` — the **end-of-review** character — shuffles the reviews once, keeps 500 of
# them aside as a **validation** slice, and glues the rest into one long training stream.
#
# The vocabulary is every character seen at least 100 times *in the training stream*; the
# rest (about a hundred rare accents and symbols, 0.002% of the text) become one `<unk>` id,
# shown as `�`. Encoding 65 million characters is one table lookup in numpy, done once and
# cached (`datasets/cache/imdb/chars_v1.npz`).

# %%
corpus = load_char_corpus()
vocab = corpus.vocab
V = len(vocab)
print(f"{V} characters in the vocabulary: {''.join(vocab.itos)!r}")
print(f"<unk> is {(corpus.train == 0).float().mean().item():.4%} of the training stream")
print(vocab.decode(corpus.valid[:400]))

# %%
counts = torch.bincount(corpus.train, minlength=V).double()
order = counts.argsort(descending=True)
fig, ax = plt.subplots(figsize=(10, 3))
ax.bar(range(V), (counts[order] / counts.sum()).numpy(), color="#2b6a99")
ax.set_xticks(range(V), [repr(vocab.itos[i])[1:-1] for i in order.tolist()], fontsize=6)
ax.set(yscale="log", ylabel="share of characters", title="Character frequencies (training stream)")
plt.show()

# %% [markdown]
# ## 2. What a language model is, and how to score one
#
# A language model gives a probability to every text $x_1, \dots, x_N$ by the chain rule:
#
# $$p(x_1, \dots, x_N) = \prod_{t=1}^{N} p(x_t \mid x_1, \dots, x_{t-1}).$$
#
# A recurrent network computes each factor from its state: $h_t$ summarises
# $x_1, \dots, x_t$ and a linear layer turns it into logits over the $V$ characters, so
# $p(x_{t+1} \mid x_{\le t}) = \mathrm{softmax}(h_t W_{hq} + b_q)$. We train it to minimise
# the average **negative log-likelihood** (the cross-entropy) of the next character,
#
# $$\mathrm{NLL} = -\frac{1}{N} \sum_{t=1}^{N} \ln p(x_t \mid x_{<t}) \quad \text{nats per character.}$$
#
# Two readings of the same number are used everywhere:
#
# - **bits per character** $= \mathrm{NLL} / \ln 2$: how many bits an ideal compressor
#   driven by the model would need per character. A uniform guess over our $V$ characters
#   costs $\log_2 V \approx 6.8$ bits; this notebook's baselines and models land between.
# - **perplexity** $= e^{\mathrm{NLL}} = 2^{\text{bits}}$: the model is as unsure as if it
#   chose uniformly among that many characters at every step.
#
# The average is over **characters**, all $N$ of them. When the text comes in batches of
# different sizes, sum the NLL and count the targets, then divide once at the end:
# the mean of per-batch means gives a short last batch the weight of a full one.

# %% [markdown]
# ## 3. The baseline: an n-gram model you count yourself
#
# Before any network, the model to beat. An **n-gram** model predicts a character from the
# $n-1$ characters before it (its *context* $h$) by counting, in the training text, what
# followed that context. With **add-k smoothing** every character gets $k$ extra counts, so
# nothing unseen has probability zero:
#
# $$p(c \mid h) = \frac{N(h, c) + k}{N(h) + kV}, \qquad N(h) = \sum_{c'} N(h, c'),$$
#
# where $N(h, c)$ counts the times the $n$ characters $h c$ occur in the training stream.
# A context never seen gives the uniform $1/V$. Order $n = 1$ has an empty context: the
# **unigram** model, character frequencies alone.
#
# ### Exercise 1 — `ngram_log_probs`
#
# Score every position of the evaluation stream that has a full context: the targets are
# `eval_ids[order - 1:]`.


# %% nbgrader={"grade": false, "grade_id": "ngram_log_probs", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ngram_log_probs(train_ids, eval_ids, order, k, vocab_size):
    """Add-k smoothed n-gram log-probabilities of a stream.

    Args:
        train_ids: (N_train,) int64 ids to count n-grams in.  eval_ids: (N_eval,) int64.
        order: n >= 1 (the context is the n - 1 previous ids).  k: the smoothing count > 0.
        vocab_size: V.
    Returns:
        (N_eval - order + 1,) float64: ln p(eval_ids[t] | eval_ids[t - order + 1 : t]) for
        t = order - 1, ..., N_eval - 1 (empty if N_eval < order).
    Hint: make each n-gram one integer (a number in base V) and count them with
    `np.unique(..., return_counts=True)` or a `Counter`; then look the counts up.
    """

    ### BEGIN SOLUTION
    def codes(ids):  # (N - order + 1,) int64: the n-grams of ids as numbers in base V
        ids = np.asarray(ids, dtype=np.int64)
        n = len(ids) - order + 1
        if n <= 0:
            return np.zeros(0, dtype=np.int64)
        out = np.zeros(n, dtype=np.int64)
        for j in range(order):
            out = out * vocab_size + ids[j : j + n]
        return out

    def lookup(table, counts, keys):  # counts of keys in a sorted table, 0 where absent
        at = np.searchsorted(table, keys).clip(max=max(len(table) - 1, 0))
        found = (table[at] == keys) if len(table) else np.zeros(len(keys), dtype=bool)
        return np.where(found, counts[at] if len(table) else 0, 0)

    grams, gram_counts = np.unique(codes(train_ids), return_counts=True)  # N(h, c) > 0
    contexts, where = np.unique(grams // vocab_size, return_inverse=True)  # h = code // V
    context_counts = np.bincount(where, weights=gram_counts, minlength=len(contexts))  # N(h)
    targets = codes(eval_ids)
    n_hc = lookup(grams, gram_counts, targets)  # (N_eval - order + 1,)
    n_h = lookup(contexts, context_counts, targets // vocab_size)
    return torch.from_numpy(np.log((n_hc + k) / (n_h + k * vocab_size)))  # (N_eval - order + 1,)
    ### END SOLUTION


# %%
tiny = torch.tensor([0, 1, 0, 1, 0, 2])
print(ngram_log_probs(tiny, tiny, order=2, k=1.0, vocab_size=3).exp())  # p(1|0) = (2+1)/(3+3)

# %% nbgrader={"grade": true, "grade_id": "test_ngram_log_probs_counts_and_smooths", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""ngram_log_probs counts n-grams of the training stream and smooths with add-k.
When graded, more cases are checked outside the notebook."""
check_ngram_log_probs(ngram_log_probs)

# %% [markdown]
# Which order? Longer contexts predict better until they are seen too rarely to count on:
# choose the order (and $k$) on the **validation** slice. Counting is cheap, so we use a few
# million training characters.


# %%
def bits(log_probs):
    """Bits per character of a tensor of natural-log probabilities."""
    return -log_probs.mean().item() / math.log(2)


ngram_train = corpus.train[: CONFIG["ngram_chars"]]
ngram_valid = {}  # (order, k) -> validation bits per character
start = time.perf_counter()
for order in range(1, 8):
    for k in (0.01, 0.1, 1.0):
        ngram_valid[order, k] = bits(ngram_log_probs(ngram_train, corpus.valid, order, k, V))
print(f"{len(ngram_valid)} n-gram models in {time.perf_counter() - start:.1f} s")
(best_order, best_k), NGRAM_BITS = min(ngram_valid.items(), key=lambda item: item[1])
UNIGRAM_BITS = min(b for (order, _), b in ngram_valid.items() if order == 1)
print(f"best: order {best_order}, k = {best_k}: {NGRAM_BITS:.3f} bits/char on validation")

fig, ax = plt.subplots(figsize=(6.5, 3.2))
for k in (0.01, 0.1, 1.0):
    ax.plot(range(1, 8), [ngram_valid[o, k] for o in range(1, 8)], marker="o", label=f"k = {k}")
ax.axhline(math.log2(V), color="gray", linestyle=":", label="uniform")
ax.set(xlabel="order n", ylabel="validation bits / char", title="n-gram baselines")
ax.legend()
plt.show()

# %% [markdown]
# **Remember.** Counting is a strong baseline: a 5-gram already knows most short words. Its
# weakness is the fixed window — it cannot know it is inside a quotation, or that the review
# began with "This movie" 300 characters ago. That is what the recurrent state is for.
#
# ## 4. Batches from one long stream
#
# A sentiment model reads whole reviews; a language model reads one endless text. We cannot
# backpropagate through 65 million steps, so we use **truncated BPTT** (lesson 02): cut the
# stream into windows of `num_steps` = T characters, backpropagate inside each window only,
# but **carry the state** from one window to the next, so the model still reads the text as
# one continuous sequence.
#
# To use a batch, cut the stream into B equal **rows** first, one after the other (row b is
# characters $bL, \dots, (b+1)L - 1$ with $L = \lfloor N/B \rfloor$), and read all rows in
# parallel, window by window. Row b of window i+1 then continues exactly where row b of
# window i stopped, which is what makes carrying the state correct.
#
# ### Exercise 2 — `batchify`


# %% nbgrader={"grade": false, "grade_id": "batchify", "locked": false, "schema_version": 3, "solution": true, "task": false}
def batchify(ids, batch_size):
    """Cut a stream into batch_size equal rows, read side by side.

    Args:
        ids: (N,) int64.  batch_size: B.
    Returns:
        (B, L) int64 with L = N // B: row b is ids[b * L : (b + 1) * L] (the last N - B * L
        ids are dropped).
    Hint: drop the tail, then one `view`.
    """
    ### BEGIN SOLUTION
    L = len(ids) // batch_size
    return ids[: batch_size * L].view(batch_size, L)  # (B, L)
    ### END SOLUTION


# %%
print(batchify(torch.arange(14), 3))

# %% nbgrader={"grade": true, "grade_id": "test_batchify_rows_follow_the_stream", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""batchify cuts the stream into B consecutive rows of equal length.
When graded, more cases are checked outside the notebook."""
check_batchify(batchify)

# %% [markdown]
# ### Exercise 3 — `stream_windows`
#
# The windows: inputs `X` are T consecutive columns of the rows, targets `Y` the same columns
# shifted by one (the next character). Every column but the first is a target exactly once,
# so the last window is shorter when $L - 1$ is not a multiple of T.


# %% nbgrader={"grade": false, "grade_id": "stream_windows", "locked": false, "schema_version": 3, "solution": true, "task": false}
def stream_windows(rows, num_steps):
    """The windows of truncated BPTT over batchified rows, in reading order.

    Args:
        rows: (B, L) int64 from batchify.  num_steps: T.
    Returns:
        a list (or generator) of (X, Y), each (B, t) with t = T except perhaps the last:
        X = rows[:, i : i + t], Y = rows[:, i + 1 : i + 1 + t] for i = 0, T, 2T, ...;
        together the Y cover columns 1 .. L - 1 once each.
    Hint: `range(0, L - 1, num_steps)`, and t = min(num_steps, L - 1 - i).
    """
    ### BEGIN SOLUTION
    L = rows.shape[1]
    windows = []
    for i in range(0, L - 1, num_steps):
        t = min(num_steps, L - 1 - i)
        windows.append((rows[:, i : i + t], rows[:, i + 1 : i + 1 + t]))  # (B, t) each
    return windows
    ### END SOLUTION


# %%
for X, Y in stream_windows(batchify(torch.arange(14), 2), num_steps=3):
    print(X.tolist(), "->", Y.tolist())

# %% nbgrader={"grade": true, "grade_id": "test_stream_windows_shift_and_cover", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""stream_windows yields targets shifted by one, covering every column once, in order.
When graded, more cases are checked outside the notebook."""
check_stream_windows(stream_windows)

# %% [markdown]
# The layout, drawn: each colour is one window, each row one of the B streams. Row b's
# windows follow each other in time, so the state row b ends a window with is the right
# state to start its next window with.

# %%
plot_stream_layout(num_chars=60, batch_size=4, num_steps=4)
plt.show()

# %% [markdown]
# **The alternative: random windows.** d2l also teaches *random sampling*: every batch is B
# windows taken from random places, and the state starts from zero each time. It needs no
# state handling and shuffles the data better, but the model never learns to use more
# than T characters of context at training time. Stream order (what we do) lets
# information flow across windows — the model can learn dependencies longer than T — at the
# price of correlated batches. Use random windows when documents are shorter than T or
# independent; use the stream for long texts, as here.

# %% [markdown]
# ## 5. Carrying the state — and cutting its graph
#
# The state at the end of a window was computed by the window's graph. If we feed it, as
# it is, into the next window, the next `backward()` walks back into the previous window's
# graph, whose buffers the previous `backward()` has already freed. PyTorch stops:

# %%
demo_rnn = nn.GRU(input_size=3, hidden_size=4, batch_first=True)
state = None
try:
    for _ in range(2):
        out, state = demo_rnn(torch.randn(2, 5, 3), state)
        out.sum().backward()  # the second window's graph reaches into the first
except RuntimeError as err:
    print("RuntimeError:", str(err).split(".")[0] + ".")

# %% [markdown]
# (And with `retain_graph=True` it would "work" while every update backpropagates through
# the whole history: slower every window, and no longer truncated.) The fix is to keep the
# state's **values** and drop its **history**: `detach()`. An LSTM's state is a tuple
# $(h, c)$; a GRU's or vanilla RNN's is one tensor; before the first window it is `None`.
#
# ### Exercise 4 — `detach_state`


# %% nbgrader={"grade": false, "grade_id": "detach_state", "locked": false, "schema_version": 3, "solution": true, "task": false}
def detach_state(state):
    """The same state with its graph cut: None, a tensor, or a tuple (or list) of them.

    Args:
        state: None, a tensor (GRU, RNN: (num_layers, B, H)), or a tuple like LSTM's (h, c).
    Returns:
        the same structure (None, a tensor, a tuple or list) of detached tensors.
    Hint: `t.detach()`; for a tuple, build a new tuple of detached parts.
    """
    ### BEGIN SOLUTION
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)
    ### END SOLUTION


# %%
out, state = nn.LSTM(3, 4, batch_first=True)(torch.randn(2, 5, 3))
print([s.requires_grad for s in state], "->", [s.requires_grad for s in detach_state(state)])

# %% nbgrader={"grade": true, "grade_id": "test_detach_state_cuts_the_graph", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
"""detach_state keeps the values and the structure of LSTM and GRU states and cuts the graph.
When graded, more cases are checked outside the notebook."""
check_detach_state(detach_state)

# %% [markdown]
# ## 6. The model
#
# Embedding → recurrent layers → a linear layer over the vocabulary, applied at *every* time
# step (batch first, as everywhere in the course):
#
# $$e_t = E[x_t], \qquad h_t = \mathrm{RNN}(e_t, h_{t-1}), \qquad o_t = h_t W_{hq} + b_q \in \mathbb{R}^V.$$
#
# `forward` takes the state to start from and returns the new one, so that the training loop
# can carry it. **Weight tying** (Press & Wolf 2017; Inan et al. 2017) uses the embedding
# matrix as the output matrix too, $W_{hq} = E^\top$: it halves the parameters of both
# layers and often helps; it needs `embed_size == num_hiddens`.
#
# ### Exercise 5 — `CharLM`
# Use these attribute names (a test rebuilds your model from its parameters): `embedding`,
# `rnn`, `dropout`, `fc`.


# %% nbgrader={"grade": false, "grade_id": "CharLM", "locked": false, "schema_version": 3, "solution": true, "task": false}
class CharLM(nn.Module):
    """Embedding -> RNN/GRU/LSTM (batch first) -> dropout -> Linear over the vocabulary.

    Args:
        vocab_size: V.  embed_size: e.  num_hiddens: h.  num_layers: stacked layers.
        cell: "rnn" (tanh), "gru" or "lstm".  dropout: on embeddings, outputs, between layers.
        tie_weights: fc.weight is embedding.weight (a ValueError unless e == h).
    forward(X (B, T) int64, state=None) -> (logits (B, T, V), new state).
    Hint: `{"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell](..., batch_first=True)`.
    """

    def __init__(
        self,
        vocab_size,
        embed_size,
        num_hiddens,
        num_layers=1,
        cell="lstm",
        dropout=0.0,
        tie_weights=False,
    ):
        super().__init__()
        ### BEGIN SOLUTION
        self.embedding = nn.Embedding(vocab_size, embed_size)
        rnn_class = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn_class(
            embed_size,
            num_hiddens,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_hiddens, vocab_size)
        if tie_weights:
            if embed_size != num_hiddens:
                raise ValueError(
                    f"tie_weights needs embed_size == num_hiddens; got {embed_size} and {num_hiddens}"
                )
            self.fc.weight = self.embedding.weight
        ### END SOLUTION

    def forward(self, X, state=None):
        ### BEGIN SOLUTION
        E = self.dropout(self.embedding(X))  # (B, T, e)
        H, state = self.rnn(E, state)  # (B, T, h)
        return self.fc(self.dropout(H)), state  # (B, T, V)
        ### END SOLUTION


# %%
demo = CharLM(V, 16, 32, cell="gru")
logits, state = demo(corpus.train[:20].view(2, 10))
print(logits.shape, state.shape, f"{sum(p.numel() for p in demo.parameters()):,} parameters")

# %% nbgrader={"grade": true, "grade_id": "test_char_lm_layers_state_and_tying", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""CharLM matches PyTorch's layers with its own weights, for RNN, GRU and LSTM, carries the
state it is given, and ties weights when asked. When graded, more cases are checked outside
the notebook."""
check_char_lm(CharLM)

# %% [markdown]
# ## 7. Evaluation in bits per character
#
# Evaluation reads the validation stream exactly like training does — batchified, in
# windows, the state carried across them — but with dropout off (`model.eval()`) and
# without building graphs (`torch.no_grad()`).
#
# ### Exercise 6 — `evaluate_lm`


# %% nbgrader={"grade": false, "grade_id": "evaluate_lm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def evaluate_lm(model, windows):
    """Bits per character and perplexity of a model on a stream, over every target.

    Args:
        model: maps (X (B, t), state) to (logits (B, t, V), state).
        windows: (X, Y) pairs in reading order (from stream_windows); the last may be shorter.
    Returns:
        (bits_per_char, perplexity): two floats, from the NLL summed over all targets and
        divided by their number, with the state carried from window to window.
    Hint: `F.cross_entropy(..., reduction="sum")`; eval mode and no_grad.
    """
    ### BEGIN SOLUTION
    device = next(model.parameters()).device
    model.eval()
    total_nll, count, state = 0.0, 0, None
    with torch.no_grad():
        for X, Y in windows:
            logits, state = model(X.to(device), state)  # (B, t, V)
            total_nll += F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), Y.to(device).reshape(-1), reduction="sum"
            ).item()
            count += Y.numel()
    nll = total_nll / count  # nats per character
    return nll / math.log(2), math.exp(nll)
    ### END SOLUTION


# %%
valid_rows = batchify(corpus.valid, 32)
untrained_bits, untrained_perplexity = evaluate_lm(demo, stream_windows(valid_rows[:, :2001], 200))
print(
    f"untrained: {untrained_bits:.3f} bits/char (log2 V = {math.log2(V):.3f}), perplexity {untrained_perplexity:.1f}"
)

# %% nbgrader={"grade": true, "grade_id": "test_evaluate_lm_sums_every_target", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""evaluate_lm: eval mode, no graph, the state carried, the NLL averaged over all targets.
When graded, more cases are checked outside the notebook."""
check_evaluate_lm(evaluate_lm)

# %% [markdown]
# ## 8. Training with truncated BPTT
#
# One update is lesson 02's truncated step with the state of the previous window: forward
# from the carried state, the mean cross-entropy over the window's $B \cdot T$ targets,
# backward, clip the gradient norm, step, and hand back the new state, detached.
#
# ### Exercise 7 — `train_window`


# %% nbgrader={"grade": false, "grade_id": "train_window", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_window(model, X, Y, state, optimizer, max_norm=1.0):
    """One truncated-BPTT update on one window.

    Args:
        model: maps (X, state) to (logits (B, T, V), state).  X, Y: (B, T) int64.
        state: the detached state the previous window ended with (None at the start).
        optimizer: a torch optimizer.  max_norm: clip the gradient norm to this.
    Returns:
        (loss, state): the window's mean cross-entropy before the update (a float), and the
        model's new state, detached.
    Hint: zero_grad, forward, `F.cross_entropy` on (B*T, V) logits, backward,
    `nn.utils.clip_grad_norm_`, step.
    """
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    logits, state = model(X, state)  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item(), detach_state(state)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_train_window_steps_clips_and_detaches", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""train_window: fresh gradients from the given state, clipped, one step, the loss as a float,
the new state detached. When graded, more cases are checked outside the notebook."""
check_train_window(train_window)

# %% [markdown]
# The loop around it, `fit_stream_lm` (given, in `rnncourse.stream_training`), walks the
# training rows window by window with your `stream_windows`, updates with your
# `train_window`, for a time budget or a number of updates, and measures validation bits per
# character with your `evaluate_lm` as it goes. When it reaches the end of the rows it
# starts again from the top with a fresh state. Lesson 07 trains its word-level model with
# the same loop.


# %%
def fit_lm(model, train_rows, valid_windows, *, lr, num_steps, max_norm, seconds, max_updates):
    """fit_stream_lm with this notebook's functions: the curve [(seconds, updates,
    validation bits/char)] at the start and at ten points along the way."""
    return fit_stream_lm(
        model, train_rows, valid_windows, stream_windows=stream_windows,
        train_window=train_window, evaluate_lm=evaluate_lm, lr=lr, num_steps=num_steps,
        max_norm=max_norm, seconds=seconds, max_updates=max_updates,
    )  # fmt: skip


# %%
set_seed(0)
train_stream = corpus.train[: CONFIG["train_chars"]]
train_rows = batchify(train_stream, CONFIG["batch_size"])
valid_windows = stream_windows(batchify(corpus.valid[: CONFIG["valid_chars"]], 32), 256)
MODEL_CONFIG = {
    k: CONFIG[k] for k in ("embed_size", "num_hiddens", "num_layers", "cell", "dropout")
}
model = CharLM(V, **MODEL_CONFIG).to(DEVICE)
start = time.perf_counter()
curve = fit_lm(
    model, train_rows, valid_windows,
    **{k: CONFIG[k] for k in ("lr", "num_steps", "max_norm", "seconds", "max_updates")},
)  # fmt: skip
seconds, updates, _ = curve[-1]
LM_BITS, LM_PERPLEXITY = evaluate_lm(model, stream_windows(batchify(corpus.valid, 32), 256))
print(
    f"{updates} updates in {seconds:.0f} s of training on {DEVICE.type} "
    f"({updates * CONFIG['batch_size'] * CONFIG['num_steps'] / seconds:,.0f} chars/s)\n"
    f"validation: {LM_BITS:.3f} bits/char (perplexity {LM_PERPLEXITY:.2f}); "
    f"the {best_order}-gram: {NGRAM_BITS:.3f}; unigram: {UNIGRAM_BITS:.3f}"
)
model_cpu = copy.deepcopy(model).cpu().eval()  # sampling below runs on the CPU

# %% nbgrader={"grade": true, "grade_id": "test_trained_model_beats_unigram", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""The trained model predicts validation text better than character frequencies alone."""
check_lm_beats_unigram(model, corpus)

# %% [markdown]
# ### RNN, GRU and LSTM against the n-gram
#
# The same budget of training time for the three cells of lessons 01, 03 and 04 (the same
# sizes), against the best n-gram. These are this notebook's own numbers on its own device;
# run it on a GPU to see how far the curves go in the same minutes.

# %%
curves = {f"{CONFIG['cell'].upper()} (above)": curve}
if CONFIG["compare_seconds"]:
    for cell in ("rnn", "gru", "lstm"):
        set_seed(0)
        other = CharLM(V, **(MODEL_CONFIG | {"cell": cell})).to(DEVICE)
        curves[f"{cell.upper()}, {CONFIG['compare_seconds']} s"] = fit_lm(
            other, train_rows, valid_windows,
            **{k: CONFIG[k] for k in ("lr", "num_steps", "max_norm", "max_updates")},
            seconds=CONFIG["compare_seconds"],
        )  # fmt: skip
fig, ax = plt.subplots(figsize=(7, 3.8))
for name, points in curves.items():
    ax.plot([p[0] for p in points], [p[2] for p in points], marker=".", label=name)
ax.axhline(NGRAM_BITS, color="black", linestyle="--", label=f"best n-gram ({best_order}-gram)")
ax.axhline(UNIGRAM_BITS, color="gray", linestyle=":", label="unigram")
ax.set(
    xlabel=f"training seconds ({DEVICE.type})",
    ylabel="validation bits / char",
    ylim=(1.0, UNIGRAM_BITS + 0.3),
    title="Character-level language models of IMDB reviews",
)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Remember.** Report bits per character over every character of a held-out text, with the
# state carried, and always next to a baseline: "2.1 bits/char" means little until you know
# that counting 5-grams gives about 2.2 and the uniform guess 6.8.
#
# ## 9. Letting the model write
#
# To generate, **prime** the model with a prompt (run it over the prompt and keep the
# state), then repeat: turn the last logits into probabilities, draw a character, feed it
# back in. Two knobs shape the draw:
#
# - **temperature** $\tau$: sample from $\mathrm{softmax}(o / \tau)$. $\tau = 1$ is the
#   model's own distribution, $\tau < 1$ sharpens it (as $\tau \to 0$, the argmax), $\tau > 1$
#   flattens it. Divide the *logits*: raising tiny probabilities to the power $1/\tau$
#   underflows to zeros and NaN.
# - **top-k**: keep only the k most likely characters (set the other logits to $-\infty$),
#   so that a long tail of unlikely characters cannot derail the text.
#
# Draw with `torch.multinomial(probs, 1, generator=generator)`: the same seeded generator
# then gives the same text, whatever else uses the global random state.
#
# ### Exercise 8 — `sample`


# %% nbgrader={"grade": false, "grade_id": "sample", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sample(model, prompt_ids, num_chars, temperature=1.0, top_k=None, generator=None):
    """Generate num_chars ids after priming the model on a prompt.

    Args:
        model: maps (X (1, t), state) to (logits (1, t, V), state).
        prompt_ids: (P,) int64, P >= 1.  num_chars: how many ids to generate.
        temperature: > 0; divides the logits.  top_k: keep the k largest logits (None: all).
        generator: a torch.Generator for every random draw.
    Returns:
        a list of num_chars ints (the prompt not included).
    Hint: eval mode and no_grad; logits[0, -1] / temperature; `torch.topk` for the k-th
    largest value; feed each drawn id back in as a (1, 1) tensor with the state.
    """
    ### BEGIN SOLUTION
    device = next(model.parameters()).device
    model.eval()
    out = []
    with torch.no_grad():
        logits, state = model(prompt_ids.to(device)[None], None)  # (1, P, V)
        for _ in range(num_chars):
            last = logits[0, -1].double() / temperature  # (V,)
            if top_k is not None:
                last = last.masked_fill(last < torch.topk(last, top_k).values[-1], -math.inf)
            probs = torch.softmax(last, dim=-1).cpu()
            next_id = torch.multinomial(probs, 1, generator=generator)  # (1,)
            out.append(int(next_id))
            logits, state = model(next_id.to(device)[None], state)  # (1, 1, V)
    return out
    ### END SOLUTION


# %%
prompt = "This movie was "
g = torch.Generator().manual_seed(0)
print(prompt + vocab.decode(sample(model_cpu, vocab.encode(prompt), 200, 0.8, None, g)))

# %% nbgrader={"grade": true, "grade_id": "test_sample_is_seeded_and_primed", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""sample draws only from its generator and continues from the prompt's state.
When graded, more cases are checked outside the notebook."""
check_sample_seeded_and_primed(sample)

# %% nbgrader={"grade": true, "grade_id": "test_sample_temperature_and_top_k", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""sample: temperature 1 keeps the model's distribution, lower sharpens it, a tiny one is the
argmax without NaN, and top-k keeps exactly k candidates. When graded, more cases are
checked outside the notebook."""
check_sample_temperature_and_top_k(sample)

# %% [markdown]
# ### The same prompt at several temperatures
#
# Greedy decoding (the argmax, $\tau \to 0$) is the most likely character at each step, not
# the most likely *text*, and it soon repeats itself: once the model's state returns to a
# place it has been, the argmax follows the same path again. Sampling at $\tau$ near 1 gives
# varied, review-like text with invented words; a high temperature gives noise.

# %%
for temperature, top_k in [(1e-4, None), (0.5, None), (0.8, 10), (1.0, None), (1.5, None)]:
    g = torch.Generator().manual_seed(1)
    text = vocab.decode(sample(model_cpu, vocab.encode(prompt), 160, temperature, top_k, g))
    name = (
        "greedy"
        if temperature < 1e-3
        else f"τ = {temperature}" + (f", top-{top_k}" if top_k else "")
    )
    print(f"--- {name}\n{prompt}{text!r}")

# %% [markdown]
# ### What the model expects, character by character
#
# Below, a validation review coloured by the probability the model gave each character
# before seeing it: dark where the model was sure (word endings, spaces after words), light
# where it was surprised (the first letter of a word, names, numbers).

# %%
review = corpus.valid[: int((corpus.valid == vocab.stoi["\n"]).nonzero()[1]) + 1][:480]
with torch.no_grad():
    logits, _ = model_cpu(review[None, :-1])  # (1, len - 1, V)
    p_next = logits[0].softmax(-1).gather(1, review[1:, None])[:, 0]  # (len - 1,)
plot_char_probabilities(vocab.decode(review[1:]), p_next.numpy(), width=80)
plt.show()
print(f"mean probability of the right character: {p_next.mean():.2f}")

# %% [markdown]
# **Remember.** Sampling settings change what you see, not what the model knows: compare
# models by bits per character, never by how good a few samples look.
#
# ## Exercises to go further (not graded)
#
# 1. **Word-level model.** Use lesson 05's `tokenize` and a vocabulary of the 20,000 most
#    frequent words. The sequences are 5 times shorter and the softmax 200 times wider; what
#    happens to the speed, and how do you compare a word-level perplexity with bits per
#    character? (Divide the total NLL by the number of *characters* in both cases.)
#    Lesson 07 pre-trains exactly such a model.
# 2. **Beam search.** Keep the B most likely partial texts instead of one. Does it escape
#    the greedy loops above? Why do people sample anyway when they want text that reads as
#    human?
# 3. **Why a bidirectional model cannot generate.** A bidirectional LSTM (lesson 03) at step
#    t has read $x_{t+1}, \dots$ — the characters it should predict. Train one with this
#    notebook's loop and watch the validation loss go to almost zero: what has it learned?
# 4. **Random windows.** Train with random windows and a zero initial state instead of the
#    stream, with the same budget: how much worse is the validation bits/char, and does the
#    gap grow with T?
#
# ## Summary
#
# - A language model factorises $p(x)$ into next-character predictions; its quality is the
#   mean NLL over all characters of held-out text, in bits/char or perplexity $2^{\text{bits}}$.
# - Truncated BPTT over a stream: B rows read in windows of T, the state carried and
#   detached between windows, the gradient clipped.
# - The n-gram model is the baseline to beat; the recurrent state is what lets a network use
#   more context than a fixed window.
# - Generation is priming then sampling; temperature divides the logits, top-k cuts the tail,
#   and a seeded generator makes it reproducible.
