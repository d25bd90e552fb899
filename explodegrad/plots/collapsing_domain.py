"""Chapter 04: the collapsing domain across the surveyed architectures, and its tradeoff with explosion."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from explodegrad.plots.theme import FIGSIZE, mark_overflow
from explodegrad.studies.survey import SurveyResult

#: What :func:`plot_survey_domains` can show: DomainStats field -> axis label.
DOMAIN_STATISTICS = {
    "preact_std_relative": "pre-activation std / RMS",
    "sign_diversity": "sign diversity",
    "linear_fit_error": "linear fit error 1 - R^2 (0: acts linearly)",
}
#: The domain columns of a survey table :func:`plot_domain_tradeoff` draws, and their labels.
TRADEOFF_COLUMNS = {
    "sign_diversity_last": "sign diversity at k = 2",
    "linear_fit_error_last": "linear fit error 1 - R^2 at k = 2",
}


def _check_survey(result: object) -> None:
    if not isinstance(result, SurveyResult):
        raise ValueError(
            f"result: expected a SurveyResult from explodegrad.studies.survey, got {type(result).__name__}"
        )


def _note(ax: plt.Axes, names: list[str], why: str) -> None:
    if names:
        mark_overflow(ax, [], f"{why}: " + ", ".join(names))


def plot_survey_domains(
    result: SurveyResult, statistic: str = "sign_diversity", *, title: str | None = None
) -> Figure:
    """One panel per activation: a domain statistic against the hidden layer k, one line per norm.

    Args:
        result: from :func:`explodegrad.studies.survey.architecture_survey` (its ``domains``).
        statistic: a key of :data:`DOMAIN_STATISTICS`.
        title: the figure's title.

    The x axes count layers from the output (k = 2 is the last hidden layer, next to the
    readout; k = L the first). Non-finite values (an overflow) are left out and listed.
    """
    _check_survey(result)
    if statistic not in DOMAIN_STATISTICS:
        raise ValueError(
            f"statistic={statistic!r} is not supported: statistic must be one of "
            f"{', '.join(repr(s) for s in DOMAIN_STATISTICS)}"
        )
    table = result.table
    activations = list(dict.fromkeys(table["activation"]))
    fig, axes = plt.subplots(
        1,
        len(activations),
        figsize=(FIGSIZE[0] * len(activations) * 0.7, FIGSIZE[1]),
        sharey=True,
        squeeze=False,
    )
    for ax, activation in zip(axes[0], activations):
        missing = []
        for row in table[table["activation"] == activation].itertuples():
            stats = result.domains[row.label]
            values = np.asarray(getattr(stats, statistic), dtype=float)
            finite = np.isfinite(values)
            ax.plot(
                stats.layers[finite],
                values[finite],
                marker="o",
                markersize=2,
                label=row.label.split("/", 1)[1],
            )
            if not finite.all():
                missing.append(row.label)
        _note(ax, missing, "not finite (overflow)")
        ax.set_ylim(bottom=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("hidden layer k, counted from the output")
        ax.set_title(activation)
        ax.legend(fontsize="small", title="norm")
    axes[0][0].set_ylabel(DOMAIN_STATISTICS[statistic])
    fig.suptitle(title or f"{DOMAIN_STATISTICS[statistic]} per layer at initialization")
    fig.tight_layout()
    return fig


def plot_domain_tradeoff(result: SurveyResult, *, title: str | None = None) -> Figure:
    """Exploding gradients against the collapsing domain: one point per surveyed architecture.

    Two panels share the x axis, GSC(L + 1, 0) from the input to the loss (log scale, dashed
    line at 1); the y axes are the last hidden layer's sign diversity and linear fit error.
    Architectures whose GSC or statistic is not finite are left out and listed.
    """
    _check_survey(result)
    table = result.table
    fig, axes = plt.subplots(1, len(TRADEOFF_COLUMNS), figsize=(2 * FIGSIZE[0], FIGSIZE[1]))
    gsc = table["gsc_input"].to_numpy(dtype=float)
    for ax, (column, ylabel) in zip(axes, TRADEOFF_COLUMNS.items()):
        values = table[column].to_numpy(dtype=float)
        shown = np.isfinite(gsc) & (gsc > 0) & np.isfinite(values)
        for activation, color in zip(dict.fromkeys(table["activation"]), plt.rcParams["axes.prop_cycle"]):
            rows = shown & (table["activation"] == activation).to_numpy()
            ax.scatter(gsc[rows], values[rows], color=color["color"], label=activation)
        for label, x, y in zip(table["label"][shown], gsc[shown], values[shown]):
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize="x-small")
        _note(ax, list(table["label"][~shown]), "not finite, left out")
        ax.set_xscale("log")
        ax.axvline(1.0, color="0.3", linestyle="--", linewidth=1)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("GSC(L + 1, 0): input to the loss (log)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
    fig.suptitle(title or "the tradeoff: exploding gradients (right) against a collapsing domain (low)")
    fig.tight_layout()
    return fig
