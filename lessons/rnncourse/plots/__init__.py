"""Figures the lessons share: unrolled graphs, heatmaps and training curves.

Every function draws on a Matplotlib ``Axes`` (a new figure if none is given) and returns it,
so that notebooks can combine them with ``plt.subplots``.
"""

from rnncourse.plots.charts import (
    LengthBins,
    LiveCurves,
    accuracy_by_length,
    moving_average,
    plot_accuracy_by_length,
    plot_bars,
    plot_batch_padding,
    plot_confusion_matrix,
    plot_curves,
    plot_gate_activations,
    plot_heatmap,
    plot_log_curves,
    plot_predictions,
    plot_runs,
)
from rnncourse.plots.diagrams import (
    draw_bptt,
    draw_gru_cell,
    draw_lstm_cell,
    draw_unrolled_rnn,
)
from rnncourse.plots.series import (
    cross_correlation,
    plot_cross_correlation,
    plot_error_by_horizon,
    plot_forecasts,
    plot_split,
)
from rnncourse.plots.text import plot_char_probabilities, plot_stream_layout

__all__ = [
    "cross_correlation",
    "plot_cross_correlation",
    "plot_error_by_horizon",
    "plot_forecasts",
    "plot_split",
    "LengthBins",
    "LiveCurves",
    "accuracy_by_length",
    "plot_accuracy_by_length",
    "draw_bptt",
    "draw_gru_cell",
    "draw_lstm_cell",
    "draw_unrolled_rnn",
    "moving_average",
    "plot_char_probabilities",
    "plot_stream_layout",
    "plot_bars",
    "plot_batch_padding",
    "plot_confusion_matrix",
    "plot_curves",
    "plot_gate_activations",
    "plot_heatmap",
    "plot_log_curves",
    "plot_predictions",
    "plot_runs",
]
