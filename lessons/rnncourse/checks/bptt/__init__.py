"""Checks for lesson 02 (backpropagation through time), with autograd as the reference.

The reference gradients come from autograd through ``torch.nn.RNN`` (the forward pass lesson 01
matched) and ``F.cross_entropy``, from closed forms (the finite differences of a cubic, for the
student's gradient checker) and from ``torch.nn.utils.clip_grad_norm_``; none of them is the
hand-written backward pass or the centred difference the lesson asks for. Shapes follow the
course: X is (B, T, D), states (B, H), and h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h) with
W_xh (D, H), W_hh (H, H), b_h (H,); the read-out is logits = H_all W_hy + b_y, (B, T, V).

To test a backward pass with any upstream gradient dH, the loss is L = sum(H_all * dH): its
gradient with respect to H_all is exactly dH.
"""

from rnncourse.checks.bptt.cell import (
    CELL_GRADS,
    CELL_HINTS,
    DA_HINT,
    TANH_HINT,
    check_rnn_cell_backward,
    reference_jacobian_norms,
    reference_rnn_backward,
    reference_rnn_cell_backward,
)
from rnncourse.checks.bptt.clipping import (
    check_clip_grad_norm,
    check_clip_grad_norm_non_finite,
    check_clipping_tames_explosion,
    check_train_step_clipped,
)
from rnncourse.checks.bptt.flow import (
    FLOW_KEYS,
    check_gradient_flow,
    check_jacobian_norms,
    check_with_spectral_radius,
)
from rnncourse.checks.bptt.gradcheck import (
    CUBIC_ERROR,
    MAX_NUMERICAL_ERROR,
    RESTORE_TOLERANCE,
    check_numerical_gradient,
    cubic,
    cubic_differences,
    smooth,
    without_autograd,
)
from rnncourse.checks.bptt.layer import (
    EDGE_CASES,
    LAYER_GRADS,
    UPSTREAM,
    check_rnn_backward,
    check_rnn_backward_edge_cases,
)
from rnncourse.checks.bptt.readout import (
    READOUT_GRADS,
    check_readout_backward,
    readout_inputs,
    reference_readout_backward,
)
from rnncourse.checks.bptt.truncated import (
    RecordingRNN,
    check_train_truncated_bptt,
)

__all__ = [
    "CELL_GRADS",
    "CELL_HINTS",
    "CUBIC_ERROR",
    "DA_HINT",
    "EDGE_CASES",
    "FLOW_KEYS",
    "LAYER_GRADS",
    "MAX_NUMERICAL_ERROR",
    "READOUT_GRADS",
    "RESTORE_TOLERANCE",
    "RecordingRNN",
    "TANH_HINT",
    "UPSTREAM",
    "check_clip_grad_norm",
    "check_clip_grad_norm_non_finite",
    "check_clipping_tames_explosion",
    "check_gradient_flow",
    "check_jacobian_norms",
    "check_numerical_gradient",
    "check_readout_backward",
    "check_rnn_backward",
    "check_rnn_backward_edge_cases",
    "check_rnn_cell_backward",
    "check_train_step_clipped",
    "check_train_truncated_bptt",
    "check_with_spectral_radius",
    "cubic",
    "cubic_differences",
    "readout_inputs",
    "reference_jacobian_norms",
    "reference_readout_backward",
    "reference_rnn_backward",
    "reference_rnn_cell_backward",
    "smooth",
    "without_autograd",
]
