"""The report's figures: what each shows, its caption, and how it is drawn from the stored parts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from explodegrad.reproduce.parts import table_row
from explodegrad.reproduce.plan import DILUTION_ARCHITECTURES, TABLE_ARCHITECTURES
from explodegrad.reproduce.store import StoredPart
from explodegrad.studies.depth_limit import DEFAULT_ARCHITECTURES as IMPACT_ARCHITECTURES
from explodegrad.studies.effective_depth import EffectiveDepthStudy


def merge_depth_studies(named: Sequence[tuple[str, EffectiveDepthStudy]]) -> EffectiveDepthStudy:
    """One study made of single-architecture studies, each under a new label (for one figure)."""
    labels, trajectories, taylor, linear, histories, tables = [], {}, {}, {}, {}, []
    for label, study in named:
        old = study.labels[0]
        labels.append(label)
        trajectories[label], taylor[label] = study.trajectories[old], study.taylor[old]
        linear[label], histories[label] = study.taylor_linear_layers[old], study.histories[old]
        tables.append(study.table.assign(label=label))
    return dataclasses.replace(
        named[0][1],
        labels=labels,
        trajectories=trajectories,
        taylor=taylor,
        taylor_linear_layers=linear,
        histories=histories,
        table=pd.concat(tables, ignore_index=True),
    )


def _impact_study(stored: dict[str, StoredPart]) -> Any:
    """The error-against-depth studies of every impact part as one
    :class:`~explodegrad.studies.depth_limit.DepthStudy`."""
    studies = [
        stored[f"impact-{activation}-{norm}"].objects["study"] for activation, norm in IMPACT_ARCHITECTURES
    ]
    return dataclasses.replace(studies[0], table=pd.concat([s.table for s in studies], ignore_index=True))


def _activation_study(stored: dict[str, StoredPart], activation: str) -> EffectiveDepthStudy:
    named = [
        (
            a.name if a.init == "looks_linear" else a.label,
            table_row(stored, a)["study"],
        )
        for a in TABLE_ARCHITECTURES
        if a.activation == activation
    ]
    return merge_depth_studies(named)


@dataclass(frozen=True)
class ReportFigure:
    """A figure of the report: its file name, its one-line explanation and how to draw it."""

    file: str
    caption: str
    draw: Callable[[], Any]


def report_figures(stored: dict[str, StoredPart]) -> dict[str, list[ReportFigure]]:
    """The figures of each report section, drawn by :mod:`explodegrad.plots` from the stored results."""
    from explodegrad.plots.depth_limit import plot_depth_study
    from explodegrad.plots.dilution import plot_dilution
    from explodegrad.plots.effective_depth import plot_effective_depth_study
    from explodegrad.plots.gsc_meaning import plot_perturbation_check, plot_rescaling
    from explodegrad.plots.optimizers import plot_optimizer_gsc, plot_update_sizes
    from explodegrad.plots.orthogonal import plot_orthogonal_state
    from explodegrad.plots.survey import (
        plot_domain_tradeoff,
        plot_survey,
        plot_survey_domains,
        plot_survey_profiles,
    )
    from explodegrad.plots.width_depth import plot_width_vs_depth

    meaning = stored["gsc-meaning"].objects
    survey = stored["survey"].objects["survey"]
    plain = [label for label in survey.profiles if not label.endswith("/res")]
    figures = {
        "gsc": [
            ReportFigure(
                "gsc-rescaling.png",
                "Rescaling one layer's output by 10 (and the next layer's "
                "weights by 1/10) leaves the function unchanged: the raw gradient jumps, the GSC does "
                "not move.",
                lambda: plot_rescaling(meaning["rescaling"]),
            ),
            ReportFigure(
                "gsc-perturbation.png",
                "Nudging f_k by a small relative amount moves the losses, "
                "relatively, GSC(k, 0) times as much: the root mean square gain lies on the diagonal.",
                lambda: plot_perturbation_check(meaning["perturbation"]),
            ),
        ]
    }
    figures["survey"] = [
        ReportFigure(
            "survey-gsc.png",
            "GSC(L, 0) of every architecture at initialization, log scale: bars "
            "above the dashed line at 1 mean exploding gradients.",
            lambda: plot_survey(survey, value="gsc_first_layer"),
        ),
        ReportFigure(
            "survey-profiles.png",
            "GSC(k, 0) against the layer k of the plain architectures: a "
            "straight line on the log axis is exponential growth with rate r.",
            lambda: plot_survey_profiles(survey, labels=plain),
        ),
    ]
    figures["domain"] = [
        ReportFigure(
            "domain-sign-diversity.png",
            "Sign diversity of every hidden layer at initialization, "
            "one panel per activation: where it falls towards 0 the domain collapses (neurons "
            "stop changing sign and act linearly).",
            lambda: plot_survey_domains(survey, "sign_diversity"),
        ),
        ReportFigure(
            "domain-tradeoff.png",
            "Exploding gradients against a collapsing domain, one point per "
            "architecture: architectures avoid one at the price of the other.",
            lambda: plot_domain_tradeoff(survey),
        ),
    ]
    dilution = stored["dilution"].objects[DILUTION_ARCHITECTURES[0].label]
    figures["dilution"] = [
        ReportFigure(
            "dilution.png",
            f"{DILUTION_ARCHITECTURES[0].label}: per block, the measured GSC "
            "against the Pythagorean prediction and the branch's own GSC (left), and the "
            "skip-to-residual ratio (right).",
            lambda: plot_dilution(dilution),
        )
    ]
    if "survey-paper-size" in stored:
        big = stored["survey-paper-size"].objects["survey"]
        figures["survey"].append(
            ReportFigure(
                "survey-paper-size.png",
                "The same survey at the paper's size (depth 50, width 100), measured at initialization only.",
                lambda: plot_survey(big, value="gsc_first_layer"),
            )
        )
    impact, optimizers = _impact_study(stored), stored["optimizers"].objects["study"]
    figures["impact"] = [
        ReportFigure(
            "impact-depth.png",
            "Final training error against depth, each depth at its best learning rate.",
            lambda: plot_depth_study(impact),
        ),
        ReportFigure(
            "impact-optimizers.png",
            "GSC(L, 0) during training under SGD, Adam and RMSprop: "
            "adaptive optimizers rescale the steps, not the GSC.",
            lambda: plot_optimizer_gsc(optimizers),
        ),
        ReportFigure(
            "impact-update-sizes.png",
            "Relative update size per layer (left) and GSC(k, 0) at the "
            "end of training (right), per optimizer.",
            lambda: plot_update_sizes(optimizers),
        ),
    ]
    figures["taylor"] = []
    for activation in ("relu", "tanh", "selu"):
        study = _activation_study(stored, activation)
        figures["taylor"].append(
            ReportFigure(
                f"taylor-{activation}.png",
                f"{activation}: effective depth during training (left; skip = the layer at initialization) "
                "and training error when the top layers are replaced by their first-order Taylor expansion "
                f"(right; a ring marks where the error first rises by more than {study.tolerance:g}).",
                lambda study=study, activation=activation: plot_effective_depth_study(
                    study, title=f"{activation}: effective depth and the Taylor experiment"
                ),
            )
        )
    orthogonal = stored["orthogonal"].objects["result"]
    width = stored["width-vs-depth"].objects["result"]
    figures["remedies"] = [
        ReportFigure(
            "orthogonal-state.png",
            "GSC(L, 2) between the hidden layers (left) and training "
            "error (right) during training; the looks-linear network starts at GSC 1 exactly.",
            lambda: plot_orthogonal_state(orthogonal),
        ),
        ReportFigure(
            "width-vs-depth.png",
            "Final errors against depth at one parameter budget, each "
            "network as wide as the budget allows, at its best learning rate.",
            lambda: plot_width_vs_depth(width),
        ),
    ]
    return figures


def save_figures(figures: dict[str, list[ReportFigure]], folder: Path) -> list[Path]:
    """Draw every figure in the course's theme and save it as PNG in ``folder``; return the paths."""
    import matplotlib.pyplot as plt

    from explodegrad.plots.theme import set_theme

    set_theme()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for section in figures.values():
        for figure in section:
            drawn = figure.draw()
            path = folder / figure.file
            drawn.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(drawn)
            paths.append(path)
    return paths
