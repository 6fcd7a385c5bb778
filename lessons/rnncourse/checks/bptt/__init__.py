"""Checks for lesson 02 (backpropagation through time), with autograd as the reference.

The reference gradients come from autograd through ``torch.nn.RNN`` (the forward pass lesson 01
matched), from centred differences (``rnncourse.numerics``) and from
``torch.nn.utils.clip_grad_norm_``; none of them is the hand-written backward pass the lesson
asks for. Shapes follow the course: X is (B, T, D), states (B, H), and
h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h) with W_xh (D, H), W_hh (H, H), b_h (H,).

To test a backward pass with any upstream gradient dH, the loss is L = sum(H_all * dH): its
gradient with respect to H_all is exactly dH.
"""

from rnncourse.checks.bptt.cell import (
    CELL_GRADS as CELL_GRADS,
)
from rnncourse.checks.bptt.cell import (
    CELL_HINTS as CELL_HINTS,
)
from rnncourse.checks.bptt.cell import (
    DA_HINT as DA_HINT,
)
from rnncourse.checks.bptt.cell import (
    MAX_NUMERICAL_ERROR as MAX_NUMERICAL_ERROR,
)
from rnncourse.checks.bptt.cell import (
    TANH_HINT as TANH_HINT,
)
from rnncourse.checks.bptt.cell import (
    check_rnn_cell_backward as check_rnn_cell_backward,
)
from rnncourse.checks.bptt.cell import (
    check_rnn_cell_backward_numerical as check_rnn_cell_backward_numerical,
)
from rnncourse.checks.bptt.cell import (
    reference_jacobian_norms as reference_jacobian_norms,
)
from rnncourse.checks.bptt.cell import (
    reference_rnn_backward as reference_rnn_backward,
)
from rnncourse.checks.bptt.cell import (
    reference_rnn_cell_backward as reference_rnn_cell_backward,
)
from rnncourse.checks.bptt.clipping import (
    check_clip_grad_norm as check_clip_grad_norm,
)
from rnncourse.checks.bptt.clipping import (
    check_clip_grad_norm_non_finite as check_clip_grad_norm_non_finite,
)
from rnncourse.checks.bptt.clipping import (
    check_clipping_tames_explosion as check_clipping_tames_explosion,
)
from rnncourse.checks.bptt.clipping import (
    check_train_step_clipped as check_train_step_clipped,
)
from rnncourse.checks.bptt.flow import (
    FLOW_KEYS as FLOW_KEYS,
)
from rnncourse.checks.bptt.flow import (
    check_gradient_flow as check_gradient_flow,
)
from rnncourse.checks.bptt.flow import (
    check_jacobian_norms as check_jacobian_norms,
)
from rnncourse.checks.bptt.flow import (
    check_with_spectral_radius as check_with_spectral_radius,
)
from rnncourse.checks.bptt.layer import (
    EDGE_CASES as EDGE_CASES,
)
from rnncourse.checks.bptt.layer import (
    LAYER_GRADS as LAYER_GRADS,
)
from rnncourse.checks.bptt.layer import (
    UPSTREAM as UPSTREAM,
)
from rnncourse.checks.bptt.layer import (
    check_rnn_backward as check_rnn_backward,
)
from rnncourse.checks.bptt.layer import (
    check_rnn_backward_edge_cases as check_rnn_backward_edge_cases,
)
from rnncourse.checks.bptt.layer import (
    check_rnn_backward_numerical as check_rnn_backward_numerical,
)
from rnncourse.checks.bptt.truncated import (
    RecordingRNN as RecordingRNN,
)
from rnncourse.checks.bptt.truncated import (
    check_train_truncated_bptt as check_train_truncated_bptt,
)
