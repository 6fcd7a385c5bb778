"""The integrity pass for lesson 02, without nbgrader: the reference and the corpus of
alternatives pass, wrong answers behind no-op checks fail, with why."""

from tests import test_alternatives_bptt as alt
from tests.integrity_support import integrity_tests, sources

CORPUS = {
    "rnn_cell_backward": alt.CELLS[1:],
    "numerical_gradient": alt.NUMGRADS,
    "rnn_backward": alt.BACKWARDS,
    "readout_backward": alt.READOUTS,
    "jacobian_norms": alt.JACOBIANS,
    "with_spectral_radius": alt.RADII,
    "clip_grad_norm": alt.CLIPS,
    "train_truncated_bptt": alt.TRUNCATED,
    "train_step_clipped": alt.STEPS,
}
HELPERS = sources(
    alt.cell_einsum,
    alt.cell_stacked_weights,
    alt.cell_float64_inside,
    alt._ce,
    alt.clip_vector_norm,
    alt.clip_min_of_floats,
)
CASCADES = {"rnn_cell_backward": ["rnn_backward"]}  # the reference's rnn_backward calls it

CHEATS = {
    "rnn_cell_backward": (
        "def rnn_cell_backward(dh_next, cache):\n"
        "    x_t, h_prev, h_t, W_xh, W_hh = cache\n"
        "    da = dh_next\n"  # no tanh derivative
        "    return da @ W_xh.T, da @ W_hh.T, x_t.T @ da, h_prev.T @ da, da.sum(0)\n",
        "dx_t: largest difference",
    ),
    "numerical_gradient": (
        "def numerical_gradient(f, x, eps=1e-6):\n"
        "    grad = torch.zeros_like(x)\n"
        "    flat = x.view(-1)\n"
        "    for i in range(flat.numel()):\n"
        "        old = flat[i].item()\n"
        "        here = f().item()\n"
        "        flat[i] = old + eps\n"
        "        grad.view(-1)[i] = (f().item() - here) / eps\n"  # one-sided
        "        flat[i] = old\n"
        "    return grad\n",
        "against the centred difference",
    ),
    "readout_backward": (
        "def readout_backward(H_all, W_hy, b_y, Y):\n"
        "    logits = H_all @ W_hy + b_y\n"
        "    p = torch.softmax(logits, dim=-1)\n"
        "    loss = F.cross_entropy(logits.flatten(0, 1), Y.flatten())\n"
        "    d = p - F.one_hot(Y, W_hy.shape[1]).to(p.dtype)\n"  # not divided by N
        "    return loss, d @ W_hy.T, H_all.flatten(0, 1).T @ d.flatten(0, 1), d.sum((0, 1))\n",
        "dH: largest difference",
    ),
    "rnn_backward": (
        "def rnn_backward(dH, caches):\n"
        "    B, T, H = dH.shape\n"
        "    D = caches[0][0].shape[1]\n"
        "    return (dH.new_zeros(B, T, D), dH.new_zeros(B, H), dH.new_zeros(D, H),\n"
        "            dH.new_zeros(H, H), dH.new_zeros(H))\n",
        "dX: largest difference",
    ),
    "jacobian_norms": (
        "def jacobian_norms(H_all, W_hh):\n"
        "    return H_all.new_ones(H_all.shape[0], H_all.shape[1] + 1)\n",
        "norms: largest difference",
    ),
    "with_spectral_radius": (
        "def with_spectral_radius(W, radius):\n"
        "    return W.mul_(radius / torch.linalg.eigvals(W).abs().max())\n",
        "changed W in place",
    ),
    "clip_grad_norm": (
        "def clip_grad_norm(grads, max_norm):\n"
        "    return torch.sqrt(sum((g ** 2).sum() for g in grads))\n",  # never clips
        "grads[0]: largest difference",
    ),
    "train_truncated_bptt": (
        "def train_truncated_bptt(model, optimizer, X, Y, chunk_size):\n"
        "    losses = []\n"
        "    for s in range(0, X.shape[1], chunk_size):\n"  # the state is never carried
        "        logits, _ = model(X[:, s:s + chunk_size], None)\n"
        "        loss = F.cross_entropy(logits.flatten(0, 1), Y[:, s:s + chunk_size].flatten())\n"
        "        optimizer.zero_grad()\n        loss.backward()\n        optimizer.step()\n"
        "        losses.append(loss.item())\n"
        "    return losses\n",
        "did not apply one per chunk",
    ),
    "train_step_clipped": (
        "def train_step_clipped(model, optimizer, X, Y, max_norm):\n"
        "    optimizer.zero_grad()\n"
        "    loss = F.cross_entropy(model(X)[0].flatten(0, 1), Y.flatten())\n"
        "    loss.backward()\n    optimizer.step()\n"  # never clips
        "    return loss.item(), 1.0\n",
        "did not apply the clipped gradient",
    ),
}

(
    test_the_reference_passes_every_probe,
    test_alternatives_of_the_corpus_pass,
    test_a_wrong_answer_behind_no_op_checks_fails_here_with_why,
) = integrity_tests("02_bptt", CORPUS, HELPERS, CHEATS, CASCADES)
