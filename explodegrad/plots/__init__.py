"""Figures of results: one consistent look, no computation.

Every plot function takes a result (an array or dataclass from a measure or a study), an
optional matplotlib ``ax`` (``axes`` for multi-panel figures) to draw into, and returns the
Figure. It never computes what a measure should: if a number is needed, a measure in the
library computes it and is tested there. Non-finite values are drawn as a marked overflow with
a note, never as a crash or a blank. Per-layer axes say which numbering they use (the paper's,
from the output). A result of the wrong type raises ``TypeError`` naming the function that
makes the right one. Figures are made through pyplot, so in a notebook end the cell with ``;``
(or keep the returned figure in a variable) to show it once.

Files mirror what they draw: ``plots/<name>.py`` draws the results of ``measures/<name>.py``
(gsc, domain, dilution, paths, taylor), ``studies/<name>.py`` (chain_rule, overflow,
gradient_descent, recurrent, gsc_meaning, survey, optimizers, weight_growth, depth_limit,
effective_depth, orthogonal, width_depth, signal_scale) or ``training/<name>.py`` (loop, sweep). Besides them:
:mod:`~explodegrad.plots.theme` (the look and the drawing helpers every file shares) and
``_checks`` (the shared type check). Every public function is re-exported here.
"""

from explodegrad.plots.chain_rule import plot_init_scales, plot_linear_gradients, plot_scalar_chain
from explodegrad.plots.clipping import plot_clipped_explosion, plot_clipping_comparison
from explodegrad.plots.depth_limit import plot_depth_study, plot_rate_curves
from explodegrad.plots.dilution import plot_dilution
from explodegrad.plots.domain import plot_domain_stats
from explodegrad.plots.effective_depth import (
    plot_effective_depth,
    plot_effective_depth_study,
    plot_path_fractions,
    plot_taylor_study,
    plot_trained_depth,
)
from explodegrad.plots.gradient_descent import plot_gradient_descent_path
from explodegrad.plots.gsc import plot_gsc_matrix, plot_gsc_profile
from explodegrad.plots.gsc_meaning import plot_perturbation_check, plot_rescaling
from explodegrad.plots.layer_histograms import plot_layer_histograms
from explodegrad.plots.loop import plot_gradient_norms, plot_training_history
from explodegrad.plots.optimizers import plot_layer_trace, plot_optimizer_gsc, plot_update_sizes
from explodegrad.plots.orthogonal import plot_orthogonal_state
from explodegrad.plots.overflow import plot_overflow
from explodegrad.plots.paths import plot_path_contributions
from explodegrad.plots.recurrent import plot_recurrent_gradients, plot_rnn_time_gradients
from explodegrad.plots.recurrent_memory import plot_first_token_memory
from explodegrad.plots.signal_scale import plot_layer_rms
from explodegrad.plots.survey import (
    plot_domain_tradeoff,
    plot_survey,
    plot_survey_domains,
    plot_survey_profiles,
)
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
from explodegrad.plots.weight_growth import plot_weight_growth
from explodegrad.plots.width_depth import plot_width_vs_depth

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
    "plot_clipping_comparison",
    "plot_clipped_explosion",
    "plot_layer_histograms",
    "plot_rate_curves",
    "plot_trained_depth",
    "plot_layer_trace",
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
__all__ += ["plot_first_token_memory", "plot_weight_growth"]
