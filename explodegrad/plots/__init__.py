"""Figures of results: one consistent look, no computation.

Every plot function takes a result (an array or dataclass from a measure), an optional
matplotlib ``ax`` (``axes`` for multi-panel figures) to draw into, and returns the Figure. It
never computes what a measure should: if a number is needed, a measure in the library computes
it and is tested there. Non-finite values are drawn as a marked overflow with a note, never as
a crash or a blank. Per-layer axes say which numbering they use (the paper's, from the output).
Figures are made through pyplot, so in a notebook end the cell with ``;`` (or keep the returned
figure in a variable) to show it once.

One concept per file: :mod:`~explodegrad.plots.theme` (the look and shared helpers), then one
file per measure or study (gsc, domain, residual, taylor, training, sweep, chain, layers).
"""

from explodegrad.plots.chain_rule import (
    plot_gradient_descent_path,
    plot_init_scales,
    plot_linear_gradients,
    plot_overflow,
    plot_recurrent_gradients,
    plot_rnn_time_gradients,
    plot_scalar_chain,
)
from explodegrad.plots.collapsing_domain import plot_domain_tradeoff, plot_survey_domains
from explodegrad.plots.dilution import plot_dilution, plot_path_contributions
from explodegrad.plots.domain import plot_domain_stats
from explodegrad.plots.effective_depth import (
    plot_effective_depth,
    plot_effective_depth_study,
    plot_path_fractions,
    plot_taylor_study,
)
from explodegrad.plots.gsc import plot_gsc_matrix, plot_gsc_profile
from explodegrad.plots.gsc_meaning import plot_perturbation_check, plot_rescaling
from explodegrad.plots.loop import plot_gradient_norms, plot_training_history
from explodegrad.plots.optimizers import plot_depth_study, plot_optimizer_gsc, plot_update_sizes
from explodegrad.plots.orthogonal import plot_orthogonal_state, plot_width_vs_depth
from explodegrad.plots.signal_scale import plot_layer_rms
from explodegrad.plots.survey import plot_survey, plot_survey_profiles
from explodegrad.plots.sweep import plot_sweep_heatmap, plot_sweep_lines
from explodegrad.plots.taylor import plot_taylor_curve
from explodegrad.plots.theme import (
    FIGSIZE,
    LAYER_LABEL,
    LAYER_LABEL_WITH_INPUT,
    LOG_SCALE_RANGE,
    PALETTE,
    figure_and_axes,
    figure_and_panels,
    log_axis,
    mark_overflow,
    new_panels,
    overflow_notes,
    set_theme,
)

__all__ = [
    "FIGSIZE",
    "LAYER_LABEL",
    "LAYER_LABEL_WITH_INPUT",
    "LOG_SCALE_RANGE",
    "PALETTE",
    "figure_and_axes",
    "figure_and_panels",
    "log_axis",
    "mark_overflow",
    "new_panels",
    "overflow_notes",
    "set_theme",
    "plot_layer_rms",
    "plot_gsc_profile",
    "plot_gsc_matrix",
    "plot_domain_stats",
    "plot_dilution",
    "plot_path_contributions",
    "plot_taylor_curve",
    "plot_training_history",
    "plot_gradient_norms",
    "plot_sweep_heatmap",
    "plot_sweep_lines",
    "plot_scalar_chain",
    "plot_linear_gradients",
    "plot_overflow",
    "plot_gradient_descent_path",
    "plot_rnn_time_gradients",
    "plot_recurrent_gradients",
    "plot_init_scales",
]
__all__ += [
    "plot_perturbation_check",
    "plot_rescaling",
    "plot_depth_study",
    "plot_optimizer_gsc",
    "plot_update_sizes",
    "plot_survey",
    "plot_survey_profiles",
]
__all__ += [
    "plot_effective_depth",
    "plot_effective_depth_study",
    "plot_path_fractions",
    "plot_taylor_study",
    "plot_orthogonal_state",
    "plot_width_vs_depth",
    "plot_domain_tradeoff",
    "plot_survey_domains",
]
