"""Lesson 05's checks, pooling over time without the padding, and the model."""

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from rnncourse.checks._core import (
    CheckFailed,
    call_student,
    device_mix_problem,
    expect_close,
    expect_tensor,
)
from rnncourse.checks.imdb.data import PAD_ID


def _padded_states(lengths, dim, *, dtype, seed, fill):
    """Sequences (L_b, H) and their padded stack (B, T, H) whose padded places hold ``fill``."""
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randn(n, dim, generator=g, dtype=torch.float64).to(dtype) for n in lengths]
    H = pad_sequence(seqs, batch_first=True, padding_value=fill)
    return seqs, H


def _check_pool(student, name, reduce, wrong, *, lengths, dim, dtype, seed, fill, shift=0.0):
    seqs, H = _padded_states(lengths, dim, dtype=dtype, seed=seed, fill=fill)
    seqs, H = [s + shift for s in seqs], H.clone()
    real = torch.arange(H.shape[1]) < torch.tensor(lengths)[:, None]
    H[real] += shift
    lens = torch.tensor(lengths)
    got = call_student(student, H.clone(), lens.clone(), name=name)
    want = torch.stack([reduce(s) for s in seqs])  # (B, D)
    expect_tensor("the pooled states", got, want.shape, "(B, D)")
    if got.dtype != dtype:
        raise CheckFailed(f"{name} returns {got.dtype}; expected the dtype of H_all, {dtype}.")
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}
    hint = next(
        (h for h, candidate in wrong(H, lens, real) if torch.allclose(got, candidate, **tol)),
        "compare with each sequence's own H_all[b, :lengths[b]].",
    )
    expect_close("the pooled states", got.detach(), want, hint=hint, **tol)
    # as train_one_epoch calls it on a GPU: the states there, the lengths still on the CPU
    problem = device_mix_problem(student, torch.empty(H.shape, dtype=dtype, device="meta"), lens)
    if problem:
        raise CheckFailed(
            f"{name} mixes devices when the states are on a GPU and the lengths on the CPU "
            f"(as in train_one_epoch; the check used PyTorch's 'meta' device): move them with "
            f"lengths.to(H_all.device) first. ({problem})"
        )


def check_masked_mean(
    masked_mean, *, lengths=(6, 1, 3, 4), dim=3, dtype=torch.float64, seed=0, fill=1e3
):
    """masked_mean(H_all (B, T, H), lengths (B,)) -> mean over the real steps, (B, H)."""
    mask = lambda real: real[:, :, None].to(dtype)  # noqa: E731

    def wrong(H, lens, real):
        T = H.shape[1]
        return [
            ("padding counts: average over the first lengths[b] steps only.", H.mean(1)),
            (
                "the padded states are masked but you divide by T: divide by each length L_b.",
                (H * mask(real)).sum(1) / T,
            ),
            (
                "you divide by L_b but sum the padded states too: zero them with the mask first.",
                H.sum(1) / lens[:, None].to(dtype),
            ),
        ]

    _check_pool(
        masked_mean,
        "masked_mean",
        lambda s: s.mean(0),
        wrong,
        lengths=lengths,
        dim=dim,
        dtype=dtype,
        seed=seed,
        fill=fill,
    )
    print(f"masked_mean ignores padding (lengths {list(lengths)}, {dtype}).")


def check_masked_max(
    masked_max, *, lengths=(6, 1, 3, 4), dim=3, dtype=torch.float64, seed=0, fill=-1e3
):
    """masked_max(H_all (B, T, H), lengths (B,)) -> elementwise max over the real steps, (B, H)."""

    def wrong(H, lens, real):
        zeroed = H * real[:, :, None].to(dtype)
        return [
            ("the maximum sees the padded steps: exclude them.", H.amax(1)),
            (
                "multiplying by the mask puts zeros in the padded places, and 0 beats negative "
                "states: fill them with -inf instead.",
                zeroed.amax(1),
            ),
        ]

    # all real states negative, padding large: a max over padding returns the padding, and
    # zeroing the padding with the mask returns 0
    _check_pool(
        masked_max,
        "masked_max",
        lambda s: s.amax(0),
        wrong,
        lengths=lengths,
        dim=dim,
        dtype=dtype,
        seed=seed,
        fill=1e3,
        shift=-10.0,
    )
    _check_pool(
        masked_max,
        "masked_max",
        lambda s: s.amax(0),
        wrong,
        lengths=lengths,
        dim=dim,
        dtype=dtype,
        seed=seed + 1,
        fill=fill,
    )
    print(f"masked_max ignores padding (lengths {list(lengths)}, {dtype}).")


def expected_parameter_names(cell: str, num_layers: int) -> set[str]:
    """Parameter names of the lesson's layout (what the grader loads)."""
    rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](2, 2, num_layers=num_layers, bidirectional=True)
    names = {f"rnn.{name}" for name, _ in rnn.named_parameters()}
    return names | {"embedding.weight", "fc.weight", "fc.bias"}


def build_student_model(SentimentRNN, config, *, dtype=torch.float64, seed=0):
    """The student's SentimentRNN(**config) in eval mode, weights drawn from ``seed``."""
    torch.manual_seed(seed)
    model = call_student(SentimentRNN, **config, name="SentimentRNN")
    if not isinstance(model, nn.Module):
        raise CheckFailed("SentimentRNN must be an nn.Module subclass.")
    return model.to(dtype).eval()


def _random_batch(lengths, vocab_size, *, seed, extra_padding=0):
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(2, vocab_size, (n,), generator=g) for n in lengths]
    X = pad_sequence(seqs, batch_first=True, padding_value=PAD_ID)  # (B, T)
    if extra_padding:
        X = torch.cat([X, X.new_full((len(seqs), extra_padding), PAD_ID)], dim=1)
    return seqs, X, torch.tensor(lengths)


def _layout_problems(model, config) -> list[str]:
    V, e, h = config["vocab_size"], config["embed_size"], config["num_hiddens"]
    layers, cell, p = config["num_layers"], config["cell"], config["dropout"]
    rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
    problems = []
    emb = getattr(model, "embedding", None)
    if not isinstance(emb, nn.Embedding) or (emb.num_embeddings, emb.embedding_dim) != (V, e):
        problems.append(f"model.embedding must be nn.Embedding({V}, {e}, padding_idx=PAD_ID)")
    elif emb.padding_idx != PAD_ID:
        problems.append(f"model.embedding.padding_idx is {emb.padding_idx}; expected PAD_ID = 0")
    rnn = getattr(model, "rnn", None)
    if not isinstance(rnn, rnn_class):
        problems.append(f"with cell={cell!r}, model.rnn must be an nn.{rnn_class.__name__}")
    else:
        wanted = dict(
            input_size=e,
            hidden_size=h,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=p if layers > 1 else 0.0,
        )
        for attr, value in wanted.items():
            if getattr(rnn, attr) != value:
                problems.append(f"model.rnn.{attr} is {getattr(rnn, attr)}; expected {value}")
    fc = getattr(model, "fc", None)
    if not isinstance(fc, nn.Linear) or (fc.in_features, fc.out_features) != (4 * h, 2):
        problems.append(
            f"model.fc must be nn.Linear(4 * num_hiddens, 2) = nn.Linear({4 * h}, 2): "
            "[mean; max] of both directions in, two logits out"
        )
    drop = getattr(model, "dropout", None)
    if not isinstance(drop, nn.Dropout) or drop.p != p:
        problems.append(f"model.dropout must be nn.Dropout({p})")
    names = set(model.state_dict())
    want = expected_parameter_names(cell, layers)
    if not problems and names != want:
        problems.append(
            f"parameter names differ from the layout the grader loads: missing "
            f"{sorted(want - names)}, unexpected {sorted(names - want)}"
        )
    return problems


def check_sentiment_rnn(
    SentimentRNN,
    configs=(
        dict(
            vocab_size=30,
            embed_size=8,
            num_hiddens=5,
            num_layers=1,
            cell="gru",
            dropout=0.0,
            packed=False,
        ),
        dict(
            vocab_size=25,
            embed_size=6,
            num_hiddens=4,
            num_layers=2,
            cell="lstm",
            dropout=0.25,
            packed=False,
        ),
    ),
    *,
    seed=0,
):
    """Layers, parameter names, (B, 2) logits, [mean; max] pooling of the BiRNN's states."""
    for config in configs:
        model = build_student_model(SentimentRNN, config, seed=seed)
        problems = _layout_problems(model, config)
        if problems:
            raise CheckFailed(f"SentimentRNN(**{config}): " + "; ".join(problems) + ".")
        T = 7
        _, X, lengths = _random_batch([T, T, T], config["vocab_size"], seed=seed)  # no padding
        with torch.no_grad():
            logits = call_student(model, X, lengths, name="SentimentRNN.forward")
            expect_tensor("logits", logits, (3, 2), "(B, 2)")
            H, _ = model.rnn(model.embedding(X))  # (B, T, 2h): no padding, plain pooling
            mean, top = H.mean(1), H.amax(1)
            want = model.fc(torch.cat([mean, top], -1))
            hints = [
                ("concatenate [mean; max] in this order", model.fc(torch.cat([top, mean], -1))),
            ]
        tol = {"rtol": 1e-8, "atol": 1e-8}
        hint = next((h for h, c in hints if torch.allclose(logits, c, **tol)), "")
        expect_close(
            "logits (no padding, eval mode)",
            logits,
            want,
            hint=hint
            or "expected fc([masked_mean(H); masked_max(H)]) with H the bidirectional "
            "RNN's states over the embedded tokens.",
            **tol,
        )
        model.train()
        if config["dropout"] > 0:
            with torch.no_grad():
                a, b = model(X, lengths), model(X, lengths)
            if torch.allclose(a, b):
                raise CheckFailed("in training mode dropout must make two calls differ.")
    print(f"SentimentRNN: layout, parameter names and logits right for {len(configs)} configs.")


def check_sentiment_rnn_ignores_padding(
    SentimentRNN,
    config=(
        ("vocab_size", 30),
        ("embed_size", 6),
        ("num_hiddens", 4),
        ("num_layers", 1),
        ("cell", "gru"),
        ("dropout", 0.3),
    ),
    lengths=(5, 2, 7, 1),
    *,
    seed=0,
):
    """packed=True: a review's logits alone = in a padded batch; packed = padded without padding."""
    config = dict(config)
    model = build_student_model(SentimentRNN, config | {"packed": True}, seed=seed)
    seqs, X, lens = _random_batch(list(lengths), config["vocab_size"], seed=seed, extra_padding=3)
    tol = {"rtol": 1e-8, "atol": 1e-8}
    with torch.no_grad():
        batch = call_student(model, X, lens, name="SentimentRNN.forward")
        expect_tensor("logits", batch, (len(seqs), 2), "(B, 2)")
        alone = torch.cat(
            [call_student(model, s[None], torch.tensor([len(s)])) for s in seqs]
        )  # (B, 2)
    expect_close(
        "logits in a padded batch vs alone (packed=True, eval mode)",
        batch,
        alone,
        hint="in packed mode padding must change nothing: pack_padded_sequence(E, "
        "lengths.cpu(), batch_first=True, enforce_sorted=False), then pad_packed_sequence(..., "
        "total_length=T), and pool with masked_mean / masked_max.",
        **tol,
    )
    padded_model = build_student_model(SentimentRNN, config | {"packed": False}, seed=seed)
    padded_model.load_state_dict(model.state_dict())
    full = [len(seqs[0])] * 3
    _, X_full, lens_full = _random_batch(full, config["vocab_size"], seed=seed + 1)
    with torch.no_grad():
        expect_close(
            "logits with packed=False (no padding in the batch)",
            padded_model(X_full, lens_full),
            model(X_full, lens_full),
            hint="without padding, packed and padded modes must agree: same layers, same pooling.",
            **tol,
        )
    print(f"SentimentRNN (packed) ignores padding for lengths {list(lengths)}.")
