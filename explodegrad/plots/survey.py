"""The architecture survey: how much each architecture explodes at initialization (chapter 03),
and how far its domain collapses, with the tradeoff between the two (chapter 04).

Draws :func:`explodegrad.studies.survey.architecture_survey`'s result.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from explodegrad.core.checks import check_choice
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import FIGSIZE, PALETTE, figure_and_axes, mark_overflow
from explodegrad.studies.survey import SurveyResult

#: Where a :class:`SurveyResult` comes from (named in type errors).
SURVEY_SOURCE = "explodegrad.studies.survey.architecture_survey"

#: What :func:`plot_survey` can show, and its axis label.
SURVEY_VALUES = {
    "gsc_input": "GSC(L + 1, 0): from the input to the loss",
    "gsc_first_layer": "GSC(L, 0): from the first layer to the loss",
    "rate": "fitted explosion rate r per layer",
}
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


def plot_survey(
    result: SurveyResult, *, value: str = "gsc_input", ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Bars per architecture: activation on the x axis, one bar per normalization.

    The y axis is logarithmic for GSC values, with a dashed line at 1 (no explosion). An
    architecture whose value is not finite (an overflow) gets no bar and a note instead.

    Args:
        result: from :func:`explodegrad.studies.survey.architecture_survey`.
        value: a key of :data:`SURVEY_VALUES`.
        ax: draw into these axes (default: a new figure).
        title: axes title (default: the networks' depth and width).
    """
    check_result("result", result, SurveyResult, SURVEY_SOURCE)
    value = check_choice("value", value, SURVEY_VALUES)
    table = result.table.copy()
    table["normalization"] = table["norm"] + np.where(table["residual"], " + residual", "")
    fig, ax = figure_and_axes(ax)
    activations = list(dict.fromkeys(table["activation"]))
    groups = list(dict.fromkeys(table["normalization"]))
    colors = sns.color_palette(PALETTE, len(groups))
    width = 0.8 / len(groups)
    missing = []
    for j, group in enumerate(groups):
        rows = table[table["normalization"] == group].set_index("activation")
        positions, heights = [], []
        for i, activation in enumerate(activations):
            if activation not in rows.index:
                continue
            height = float(rows.loc[activation, value])
            x = i - 0.4 + width * (j + 0.5)
            if np.isfinite(height) and height > 0:
                positions.append(x)
                heights.append(height)
            else:
                missing.append(f"{activation}/{group}")
        ax.bar(positions, heights, width=width, color=colors[j], label=group)
    ax.set_xticks(range(len(activations)), activations)
    ax.set_yscale("log")
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlabel("activation")
    ax.set_ylabel(SURVEY_VALUES[value])
    ax.legend(title="normalization", fontsize="small")
    if missing:
        ax.text(
            0.02,
            0.95,
            "overflow (inf/NaN): " + ", ".join(missing),
            transform=ax.transAxes,
            va="top",
            color="crimson",
        )
    depth, width_ = int(table["depth"].iloc[0]), int(table["width"].iloc[0])
    ax.set_title(title or f"at initialization, depth {depth}, width {width_} ({result.data_name})")
    return fig


def plot_survey_profiles(
    result: SurveyResult,
    *,
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """GSC(k, 0) against k for each architecture of a survey, on a log axis.

    Args:
        result: from :func:`explodegrad.studies.survey.architecture_survey`.
        labels: the architectures to draw (default: all), e.g. ``["relu/batch", "relu/none"]``.
        ax: draw into these axes (default: a new figure).
        title: axes title.
    """
    check_result("result", result, SurveyResult, SURVEY_SOURCE)
    chosen = list(result.profiles) if labels is None else list(labels)
    unknown = [label for label in chosen if label not in result.profiles]
    if unknown or not chosen:
        raise ValueError(
            f"labels={labels!r} is not allowed: choose from "
            f"{', '.join(repr(label) for label in result.profiles)}"
        )
    fig, ax = figure_and_axes(ax)
    overflowed = []
    for label in chosen:
        profile = result.profiles[label]
        finite = np.isfinite(profile.gsc) & (profile.gsc > 0)
        ax.plot(profile.layers[finite], profile.gsc[finite], marker="o", markersize=2, label=label)
        if not finite.all():
            overflowed.append(label)
    ax.set_yscale("log")
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer k, counted from the output (k = L + 1: the input)")
    ax.set_ylabel("GSC(k, 0)")
    ax.legend(fontsize="small", ncol=3 if len(chosen) > 4 else 1)
    if overflowed:
        ax.text(
            0.02,
            0.95,
            "overflow (inf/NaN) in: " + ", ".join(overflowed),
            transform=ax.transAxes,
            va="top",
            color="crimson",
        )
    if title:
        ax.set_title(title)
    return fig


def _note(ax: plt.Axes, names: list[str], why: str) -> None:
    """List what was left out (``why: a, b``) as the panel's overflow note."""
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
    check_result("result", result, SurveyResult, SURVEY_SOURCE)
    statistic = check_choice("statistic", statistic, DOMAIN_STATISTICS)
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
    check_result("result", result, SurveyResult, SURVEY_SOURCE)
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
