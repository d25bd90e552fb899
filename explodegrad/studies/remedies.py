"""Remedies and their tradeoffs: each remedy's measured evidence, without and with it.

Chapter 08 (Philipp, Song & Carbonell, 2018) sets each remedy against a baseline: skip
connections, the orthogonal initial state (:mod:`explodegrad.studies.orthogonal`),
normalization, gradient clipping, an adaptive optimizer and width instead of depth
(:mod:`explodegrad.studies.width_depth`). The ``*_evidence`` functions turn those studies'
results into :class:`RemedyEvidence` (the measured numbers without and with the remedy), or
:func:`collect_remedy_evidence` runs whatever is missing and returns all six;
:func:`skip_comparison` pairs plain and residual rows of a survey.

Numbers only: what each remedy touches and what it leaves alone are results, stated by claims;
the table that puts those sentences, their verdicts and these numbers together is
:func:`explodegrad.claims.remedies.remedies_summary`.

GSC measurements follow :mod:`explodegrad.measures.gsc`: batch norm is always measured with the batch's
statistics (training mode). Layers are numbered from the output (k = 1 the readout, k = L the
first layer); "GSC(L, 2)" is the GSC from the first layer's output to the last hidden layer's,
the span in which the looks-linear network is exactly orthogonal (the readout maps 64 or 100
neurons to 10 classes and is not). Training settings are an operational choice
(:func:`explodegrad.studies.common.study_settings`: SGD with momentum 0.9, lr 0.01, the scale's
steps and batch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from explodegrad.core.checks import check_positive
from explodegrad.core.config import NetConfig
from explodegrad.core.data import Dataset
from explodegrad.core.nets import build_from_config
from explodegrad.core.scales import Scale
from explodegrad.core.seeds import resolve_seeds
from explodegrad.measures.gsc import gsc_profile
from explodegrad.studies.clipping import first_update_sizes, global_gradient_norms, update_spread
from explodegrad.studies.common import (
    Architecture,
    architecture_label,
    resolve_data,
    study_settings,
)
from explodegrad.studies.effective_depth import EffectiveDepthStudy
from explodegrad.studies.optimizers import OptimizerStudy, optimizer_study
from explodegrad.studies.orthogonal import OrthogonalStateResult, orthogonal_initial_state
from explodegrad.studies.survey import SurveyResult, architecture_survey
from explodegrad.studies.width_depth import WidthDepthResult, width_vs_depth
from explodegrad.training.loop import TrainHistory, TrainSettings, train

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = ("08/clipping-keeps-balance",)


def skip_comparison(survey: SurveyResult) -> pd.DataFrame:
    """Plain against residual GSC for every activation and norm a survey holds in both layouts.

    Args:
        survey: an :func:`~explodegrad.studies.survey.architecture_survey` run with
            ``residual=(False, True)``.

    Returns:
        One row per (activation, norm): activation, norm, gsc_plain and gsc_resnet (GSC from
        the input to the loss), ratio = gsc_plain / gsc_resnet (how much the skips cut it),
        rate_plain and rate_resnet (fitted r per addressable layer: per layer for the plain
        network, per block for the ResNet).

    Raises:
        ValueError: when no architecture appears in both layouts.
    """
    if not isinstance(survey, SurveyResult):
        raise TypeError(
            f"survey: expected a SurveyResult from explodegrad.studies.survey, got {type(survey).__name__}"
        )
    table = survey.table
    rows = []
    for (activation, norm), group in table.groupby(["activation", "norm"], sort=False):
        layouts = group.set_index("residual")
        if not {False, True} <= set(layouts.index):
            continue
        plain, resnet = layouts.loc[False], layouts.loc[True]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = float(np.float64(plain["gsc_input"]) / np.float64(resnet["gsc_input"]))
        rows.append(
            {
                "activation": activation,
                "norm": norm,
                "gsc_plain": float(plain["gsc_input"]),
                "gsc_resnet": float(resnet["gsc_input"]),
                "ratio": ratio,
                "rate_plain": float(plain["rate"]),
                "rate_resnet": float(resnet["rate"]),
            }
        )
    if not rows:
        raise ValueError(
            "survey: no architecture appears both plain and residual; run "
            "architecture_survey(..., residual=(False, True))"
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Measured:
    """One measured quantity, without and with a remedy.

    Attributes:
        quantity: what was measured, in words (e.g. ``GSC(input, loss) at initialization``).
        without: its value without the remedy.
        with_remedy: its value with the remedy.
    """

    quantity: str
    without: float
    with_remedy: float

    def text(self) -> str:
        """E.g. ``GSC(input, loss) at initialization: 97.2 without, 3.1 with``."""
        return f"{self.quantity}: {_number(self.without)} without, {_number(self.with_remedy)} with"


def _number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e6:
        return f"{int(value)}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class RemedyEvidence:
    """One remedy's measured numbers, without and with it.

    What the remedy touches and what it leaves alone are results, so they are claims
    (:mod:`explodegrad.claims.remedies` attaches them); this holds the numbers only.

    Attributes:
        remedy: its name, e.g. ``skip connections (ResNet)``.
        comparison: the two networks or runs compared, e.g. ``relu/batch plain vs residual``.
        chapters: where the course measures it, e.g. ``06, 07``.
        measured: the measured quantities.
    """

    remedy: str
    comparison: str
    chapters: str
    measured: tuple[Measured, ...]

    def evidence(self) -> str:
        """The measured numbers as one sentence."""
        return f"{self.comparison}: " + "; ".join(m.text() for m in self.measured)


def _survey_row(survey: SurveyResult, activation: str, norm: str, residual: bool) -> dict[str, Any]:
    if not isinstance(survey, SurveyResult):
        raise TypeError(
            f"survey: expected a SurveyResult from explodegrad.studies.survey, got {type(survey).__name__}"
        )
    return survey.row(activation, norm, residual)


def skip_connection_evidence(
    survey: SurveyResult,
    activation: str = "relu",
    norm: str = "batch",
    effective_depth: EffectiveDepthStudy | None = None,
) -> RemedyEvidence:
    """Skip connections: plain against residual GSC (and effective depth, when a study is given).

    ``survey`` must hold both layouts of ``activation/norm`` (``residual=(False, True)``).
    """
    plain = _survey_row(survey, activation, norm, False)
    resnet = _survey_row(survey, activation, norm, True)
    measured = [Measured("GSC(input, loss) at initialization", plain["gsc_input"], resnet["gsc_input"])]
    if effective_depth is not None:
        # the median over the study's seeds (one row per label and seed)
        table = diverged_as_error_one(effective_depth.table).groupby("label").median(numeric_only=True)
        labels = (architecture_label(activation, norm, False), architecture_label(activation, norm, True))
        if all(label in table.index for label in labels):
            measured.append(
                Measured(
                    "effective depth after training (skip = initial layer)",
                    float(table.loc[labels[0], "depth_since_init_final"]),
                    float(table.loc[labels[1], "depth_since_init_final"]),
                )
            )
            measured.append(
                Measured(
                    "final training error",
                    float(table.loc[labels[0], "final_train_error"]),
                    float(table.loc[labels[1], "final_train_error"]),
                )
            )
    return RemedyEvidence(
        remedy="skip connections (ResNet)",
        comparison=f"{activation}/{norm} plain vs residual, depth {plain['depth']}",
        chapters="06, 07",
        measured=tuple(measured),
    )


def normalization_evidence(
    survey: SurveyResult, activation: str = "relu", norm: str = "batch"
) -> RemedyEvidence:
    """Normalization: ``activation/none`` against ``activation/norm`` (plain networks of ``survey``)."""
    without = _survey_row(survey, activation, "none", False)
    with_norm = _survey_row(survey, activation, norm, False)
    return RemedyEvidence(
        remedy=f"{norm} normalization",
        comparison=f"{activation}/none vs {activation}/{norm}, depth {without['depth']}, at initialization",
        chapters="04, 05",
        measured=(
            Measured("GSC(input, loss)", without["gsc_input"], with_norm["gsc_input"]),
            Measured(
                "sign diversity at k = 2", without["sign_diversity_last"], with_norm["sign_diversity_last"]
            ),
            Measured(
                "nonlinearity used, 1 - R^2 at k = 2",
                without["linear_fit_error_last"],
                with_norm["linear_fit_error_last"],
            ),
        ),
    )


def _seeds_note(seeds: tuple[int, ...]) -> str:
    return f" (median over {len(seeds)} seeds)" if len(seeds) > 1 else ""


def initialization_evidence(
    result: OrthogonalStateResult, baseline: str | None = None, remedy: str | None = None
) -> RemedyEvidence:
    """The orthogonal initial state against a usual initialization (names of ``result``).

    Defaults: the first architecture of ``result`` is the baseline, the second the remedy.
    """
    if not isinstance(result, OrthogonalStateResult):
        raise TypeError(f"result: expected an OrthogonalStateResult, got {type(result).__name__}")
    if len(result.names) < 2:
        raise ValueError(f"result: holds {result.names}; the comparison needs at least two architectures")
    baseline = result.names[0] if baseline is None else baseline
    remedy = result.names[1] if remedy is None else remedy
    for argument, name in (("baseline", baseline), ("remedy", remedy)):
        if name not in result.names:
            raise ValueError(f"{argument}={name!r} is not allowed: choose one of {result.names}")
    frame = diverged_as_error_one(result.table)
    # A run that never reached the target counts as infinitely slow, so the median stays honest.
    frame["steps_to_target"] = frame["steps_to_target"].astype("Float64").fillna(math.inf).astype(float)
    table = frame.groupby("name", sort=False).median(numeric_only=True)
    before, after = table.loc[baseline], table.loc[remedy]

    def reached(row: pd.Series) -> float:
        return math.nan if not math.isfinite(row["steps_to_target"]) else float(row["steps_to_target"])

    return RemedyEvidence(
        remedy="orthogonal initial state",
        comparison=f"{baseline} vs {remedy}, depth {int(before['depth'])}{_seeds_note(result.seeds)}",
        chapters="08",
        measured=(
            Measured("GSC(L, 2) at initialization", before["hidden_gsc_init"], after["hidden_gsc_init"]),
            Measured("GSC(L, 2) after training", before["hidden_gsc_final"], after["hidden_gsc_final"]),
            Measured(f"steps to training error <= {result.target_error:g}", reached(before), reached(after)),
            Measured("final training error", before["final_train_error"], after["final_train_error"]),
        ),
    )


def clipping_evidence(
    config: NetConfig, data: Dataset, settings: TrainSettings, clip_norm: float | None = None
) -> RemedyEvidence:
    """Gradient clipping by norm: the same run without and with clipping.

    Args:
        config, data, settings: the run (``settings.clip_norm`` is overridden).
        clip_norm: the bound; None: the median whole-network gradient norm of the unclipped
            run's recorded updates, so that about half of its steps would be clipped.

    Measured: the first update's first-layer-to-readout ratio of relative update sizes
    (clipping multiplies every layer's gradient by one factor, so with SGD it is unchanged),
    GSC(L, 0) after training and the final training error.
    """
    if not isinstance(config, NetConfig):
        raise TypeError(f"config must be a NetConfig, got {type(config).__name__}")
    inputs, targets = data.batch(min(256, len(data.x_train)), seed=settings.seed)

    def run(bound: float | None) -> tuple[tuple[float, float, float], TrainHistory]:
        chosen = settings.with_(clip_norm=bound)
        net = build_from_config(config, device=data.device, dtype=data.x_train.dtype)
        history = train(net, data, chosen, progress=False)
        gsc = gsc_profile(net, inputs, targets).first_layer_gsc
        spread = update_spread(first_update_sizes(config, data, chosen))
        return (spread, gsc, history.final_train_error), history

    without, unclipped = run(None)
    if clip_norm is None:
        clip_norm = float(np.median(global_gradient_norms(unclipped)))
    clipped, _ = run(check_positive("clip_norm", clip_norm))
    runs = {"without": without, "with": clipped}
    return RemedyEvidence(
        remedy=f"gradient clipping (norm {clip_norm:.3g})",
        comparison=f"{config.activation}/{config.norm} depth {config.depth}, {settings.optimizer}",
        chapters="02, 08",
        measured=(
            Measured(
                "first update, first layer / readout relative size", runs["without"][0], runs["with"][0]
            ),
            Measured("GSC(L, 0) after training", runs["without"][1], runs["with"][1]),
            Measured("final training error", runs["without"][2], runs["with"][2]),
        ),
    )


def optimizer_evidence(
    study: OptimizerStudy, data: Dataset, baseline: str = "sgd", remedy: str = "adam"
) -> RemedyEvidence:
    """Adaptive optimizers, SGD against Adam: the first update's balance, the GSC, the error.

    Args:
        study: an :func:`~explodegrad.studies.optimizers.optimizer_study` that trained both optimizers.
        data: the data set it trained on (the first updates are recomputed on it).
        baseline, remedy: the optimizers compared.
    """
    if not isinstance(study, OptimizerStudy):
        raise TypeError(
            "study: expected an OptimizerStudy from explodegrad.studies.optimizers, got "
            f"{type(study).__name__}"
        )
    for argument, name in (("baseline", baseline), ("remedy", remedy)):
        if name not in study.optimizers:
            raise ValueError(
                f"{argument}={name!r} is not allowed: the study trained {', '.join(study.optimizers)}"
            )

    def median(name: str, column: str) -> float:
        """The median over seeds: a diverged run's error counts as 1; it has no GSC at the end."""
        values = study.values(name, column)
        if column == "final_train_error":
            values = np.where(np.isnan(values), 1.0, values)
        values = values[np.isfinite(values)]
        return float(np.median(values)) if values.size else math.nan

    def first_spread(name: str) -> float:
        history = study.histories[(name, study.seeds[0])]
        return update_spread(first_update_sizes(history.config, data, history.settings))

    seeds = f"median over {len(study.seeds)} seeds" if len(study.seeds) > 1 else "one seed"
    compared = study.runs[study.runs["optimizer"].isin([baseline, remedy])]
    if compared["diverged"].any():
        seeds += f"; {int(compared['diverged'].sum())} run(s) diverged: error 1, no GSC at the end"
    return RemedyEvidence(
        remedy=f"adaptive optimizer ({remedy})",
        comparison=f"{study.label}, {baseline} vs {remedy} ({seeds})",
        chapters="04, 08",
        measured=(
            Measured(
                "first update, first layer / readout relative size",
                first_spread(baseline),
                first_spread(remedy),
            ),
            Measured("GSC(L, 0) after training", median(baseline, "gsc_end"), median(remedy, "gsc_end")),
            Measured(
                "final training error",
                median(baseline, "final_train_error"),
                median(remedy, "final_train_error"),
            ),
        ),
    )


def diverged_as_error_one(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose diverged runs (NaN training or test error) count as error 1, as
    the learning-rate searches count them, so that a median over seeds cannot leave them out and
    make a failing setting look better."""
    frame = frame.copy()
    for column in ("final_train_error", "final_test_error"):
        if column in frame:
            frame[column] = frame[column].astype(float).fillna(1.0)
    return frame


def width_evidence(result: WidthDepthResult, deep: int | None = None) -> RemedyEvidence:
    """Width instead of depth: the deepest (or ``deep``) network against the shallowest, same budget."""
    if not isinstance(result, WidthDepthResult):
        raise TypeError(f"result: expected a WidthDepthResult, got {type(result).__name__}")
    table = diverged_as_error_one(result.table).groupby("depth").median(numeric_only=True)
    deep = int(table.index.max()) if deep is None else deep
    if deep not in table.index:
        raise ValueError(f"deep={deep!r} is not allowed: choose one of {table.index.tolist()}")
    shallow = int(table.index.min())
    narrow, wide = table.loc[deep], table.loc[shallow]
    return RemedyEvidence(
        remedy="width instead of depth",
        comparison=(
            f"{result.architecture}, at most {result.budget:,} parameters: depth {deep} width "
            f"{int(narrow['width'])} vs depth {shallow} width {int(wide['width'])}"
            f"{_seeds_note(result.seeds)}"
        ),
        chapters="04, 08",
        measured=(
            Measured("final training error", narrow["final_train_error"], wide["final_train_error"]),
            Measured("final test error", narrow["final_test_error"], wide["final_test_error"]),
        ),
    )


def batch_norm_clipping(
    scale: Scale, data: Dataset, seed: int = 0, clip_norm: float | None = None
) -> RemedyEvidence:
    """:func:`clipping_evidence` on the course's case: batch-normalized ReLU of the scale's size,
    SGD with momentum 0.9 at learning rate 0.01 (chapter 08, the report and the claims use it)."""
    config = Architecture("relu", "batch").config(
        scale.depth, scale.width, data.in_features, data.num_classes, seed
    )
    settings = study_settings(scale).with_(optimizer="sgd", lr=0.01, momentum=0.9, seed=seed)
    return clipping_evidence(config, data, settings, clip_norm)


def find_evidence(evidence: Sequence[RemedyEvidence], remedy: str) -> RemedyEvidence:
    """The evidence whose remedy starts with ``remedy`` (e.g. ``"gradient clipping"``)."""
    if not isinstance(remedy, str):
        raise TypeError(f"remedy must be a string such as 'gradient clipping', got {type(remedy).__name__}")
    found = [item for item in evidence if item.remedy.startswith(remedy)]
    if len(found) != 1:
        raise ValueError(
            f"remedy={remedy!r} is not allowed: it must name exactly one of "
            f"{[item.remedy for item in evidence]}"
        )
    return found[0]


def collect_remedy_evidence(
    scale: Scale,
    *,
    orthogonal: OrthogonalStateResult | None = None,
    width_depth: WidthDepthResult | None = None,
    effective_depth: EffectiveDepthStudy | None = None,
    survey: SurveyResult | None = None,
    optimizers: OptimizerStudy | None = None,
    data: Dataset | None = None,
    clip_norm: float | None = None,
    seeds: int | Sequence[int] | None = None,
    device: Any = None,
) -> list[RemedyEvidence]:
    """Every remedy's evidence, running whatever study was not passed in.

    Args:
        scale: sizes of :mod:`explodegrad.core.scales`.
        orthogonal, width_depth, effective_depth: results of this chapter's studies (the first
            two are run when missing; ``effective_depth`` is optional extra evidence for skip
            connections).
        survey: an :func:`~explodegrad.studies.survey.architecture_survey` holding relu/none,
            relu/batch and relu/batch/res (run at the scale's size when missing).
        optimizers: an :func:`~explodegrad.studies.optimizers.optimizer_study` with ``sgd`` and ``adam``
            (run when missing, on batch-normalized ReLU).
        data: the data set (default :func:`~explodegrad.studies.common.resolve_data`: the scale's,
            on ``device``, float64 on the CPU).
        clip_norm: the clipping bound of the clipping comparison (default: see
            :func:`clipping_evidence`).
        seeds: the seeds of the studies run here (default: the scale's ``num_seeds``); the
            survey and the clipping comparison use the first.
        device: where to run when ``data`` is not given.
    """
    seeds = resolve_seeds(seeds, scale.num_seeds if isinstance(scale, Scale) else 1)
    seed = seeds[0]
    data = resolve_data(data, scale=scale, seed=seed, device=device)
    if survey is None:
        survey = architecture_survey(
            activations=("relu",),
            norms=("none", "batch"),
            residual=(False, True),
            data=data,
            scale=scale,
            seeds=(seed,),
        )
    if optimizers is None:
        optimizers = optimizer_study(data=data, optimizers=("sgd", "adam"), scale=scale, seeds=seeds)
    if orthogonal is None:
        orthogonal = orthogonal_initial_state(scale=scale, data=data, seeds=seeds)
    if width_depth is None:
        width_depth = width_vs_depth(scale=scale, data=data, seeds=seeds)
    return [
        skip_connection_evidence(survey, "relu", "batch", effective_depth),
        initialization_evidence(orthogonal),
        normalization_evidence(survey, "relu", "batch"),
        batch_norm_clipping(scale, data, seed, clip_norm),
        optimizer_evidence(optimizers, data),
        width_evidence(width_depth),
    ]
