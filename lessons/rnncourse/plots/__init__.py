"""Figures the lessons share: unrolled graphs, heatmaps and training curves.

Every function draws on a Matplotlib ``Axes`` (a new figure if none is given) and returns it,
so that notebooks can combine them with ``plt.subplots``.
"""

from rnncourse.plots.charts import (
    LiveCurves as LiveCurves,
)
from rnncourse.plots.charts import (
    moving_average as moving_average,
)
from rnncourse.plots.charts import (
    plot_bars as plot_bars,
)
from rnncourse.plots.charts import (
    plot_batch_padding as plot_batch_padding,
)
from rnncourse.plots.charts import (
    plot_confusion_matrix as plot_confusion_matrix,
)
from rnncourse.plots.charts import (
    plot_curves as plot_curves,
)
from rnncourse.plots.charts import (
    plot_gate_activations as plot_gate_activations,
)
from rnncourse.plots.charts import (
    plot_heatmap as plot_heatmap,
)
from rnncourse.plots.charts import (
    plot_log_curves as plot_log_curves,
)
from rnncourse.plots.charts import (
    plot_predictions as plot_predictions,
)
from rnncourse.plots.charts import (
    plot_runs as plot_runs,
)
from rnncourse.plots.diagrams import (
    draw_bptt as draw_bptt,
)
from rnncourse.plots.diagrams import (
    draw_gru_cell as draw_gru_cell,
)
from rnncourse.plots.diagrams import (
    draw_lstm_cell as draw_lstm_cell,
)
from rnncourse.plots.diagrams import (
    draw_unrolled_rnn as draw_unrolled_rnn,
)
