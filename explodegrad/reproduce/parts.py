"""The parts of a report: one experiment each, what it runs, and the list of them.

Every ``run_*`` function takes ``(plan, data, options)`` and returns a dict of result objects
(numbers only) computed by the same library functions the notebooks call; :func:`plan_parts`
lists the parts of a plan in report order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from explodegrad import claims
from explodegrad.core.data import Dataset
from explodegrad.core.nets import build_mlp
from explodegrad.measures.dilution import dilution_profile
from explodegrad.reproduce.plan import DILUTION_ARCHITECTURES, PAPER_SIZE, TABLE_ARCHITECTURES, ReportPlan
from explodegrad.studies.common import Architecture, study_settings
from explodegrad.studies.depth_limit import DEFAULT_ARCHITECTURES as IMPACT_ARCHITECTURES
from explodegrad.studies.depth_limit import default_depths, depth_study
from explodegrad.studies.effective_depth import effective_depth_study
from explodegrad.studies.gsc_meaning import perturbation_check, rescaling_comparison
from explodegrad.studies.optimizers import optimizer_study
from explodegrad.studies.orthogonal import orthogonal_initial_state
from explodegrad.studies.remedies import batch_norm_clipping, optimizer_evidence
from explodegrad.studies.survey import architecture_survey
from explodegrad.studies.width_depth import width_vs_depth
from explodegrad.training.sweep import lr_search


@dataclass(frozen=True, eq=False)
class Part:
    """One experiment of the report, computed on its own and stored as one file pair.

    Attributes:
        name: file stem and key, e.g. ``arch-relu-batch-he-res``.
        title: what it measures, in words.
        chapters: the chapters whose headline it reproduces, e.g. ``"04, 07"``.
        run: ``run(plan, data, options) -> dict`` of result objects (numbers only).
        options: the part's own settings (JSON-able); part of its key.
        cost: relative compute cost, to start the longest parts first.
    """

    name: str
    title: str
    chapters: str
    run: Callable[[ReportPlan, Dataset, dict[str, Any]], dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)
    cost: float = 1.0


def arch_part_name(architecture: Architecture) -> str:
    """The part name of one table row, e.g. ``arch-relu-batch-he-res``."""
    return "arch-" + architecture.name.replace("/", "-").replace("_", "-")


def _architecture(options: dict[str, Any]) -> Architecture:
    return Architecture(options["activation"], options["norm"], options["residual"], options["init"])


def _arch_options(architecture: Architecture) -> dict[str, Any]:
    return {
        "activation": architecture.activation,
        "norm": architecture.norm,
        "residual": architecture.residual,
        "init": architecture.init,
    }


def run_gsc_meaning(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 03: rescaling a layer changes raw gradients but not the GSC; the GSC predicts nudges."""
    scale = plan.scale
    net = build_mlp(
        depth=scale.depth,
        width=scale.width,
        activation="relu",
        norm="none",
        init="he",
        in_features=data.in_features,
        out_features=data.num_classes,
        seed=plan.seed,
        device=data.device,
        dtype=torch.float64,
    )
    inputs, targets = data.batch(min(256, len(data.x_train)), seed=plan.seed)
    inputs = inputs.to(torch.float64)
    middle = max(2, net.num_layers // 2)
    rescaling = rescaling_comparison(net, inputs, targets, middle, factor=options["factor"])
    layers = sorted({1, 2, middle, net.num_layers, net.num_layers + 1})
    perturbation = perturbation_check(
        net, inputs, targets, layers=tuple(layers), num_directions=options["directions"], seed=plan.seed
    )
    return {"rescaling": rescaling, "perturbation": perturbation}


def _surveys(plan: ReportPlan, data: Dataset, depth: int, width: int) -> dict[str, Any]:
    common = dict(data=data, scale=plan.scale, seeds=(plan.seed,), depth=depth, width=width)
    return {
        "survey": architecture_survey(
            ("relu", "tanh", "selu"), ("none", "batch", "layer"), residual=(False, True), **common
        ),
        "looks_linear": architecture_survey(("relu",), ("none",), inits="looks_linear", **common),
    }


def run_survey(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapters 04-06: GSC, fitted rate and domain statistics of every architecture at initialization."""
    return _surveys(plan, data, plan.scale.depth, plan.scale.width)


def run_survey_paper_size(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """The same survey at the paper's depth 50 and width 100 (measuring at init is cheap)."""
    return _surveys(plan, data, *PAPER_SIZE)


def run_dilution(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 06: skip-to-residual ratio and block GSC against the Pythagorean prediction."""
    inputs, _ = data.batch(min(plan.scale.batch_size, len(data.x_train)), seed=plan.seed)
    results = {}
    for architecture in DILUTION_ARCHITECTURES:
        config = architecture.config(
            plan.scale.depth, plan.scale.width, data.in_features, data.num_classes, plan.seed
        )
        net = build_mlp(
            **{k: v for k, v in config.as_dict().items() if k != "seed"},
            seed=config.seed,
            device=data.device,
            dtype=torch.float64,
        )
        results[architecture.label] = dilution_profile(net, inputs.to(torch.float64), seed=plan.seed)
    return results


def run_architecture(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapters 04, 07: one table row's training: batched rate search, effective depth, Taylor.

    The rate search trains one network per rate in one stacked sweep; the network is then
    trained again at the chosen rate with :func:`~explodegrad.training.loop.train` (same weights and
    minibatches) so that its effective depth can be measured at every checkpoint. When every
    rate diverged, the smallest rate is used for that second run.
    """
    architecture = _architecture(options)
    scale = plan.scale
    config = architecture.config(scale.depth, scale.width, data.in_features, data.num_classes, plan.seed)
    settings = study_settings(scale, seed=plan.seed)
    search = lr_search([config], data, list(plan.lrs), settings, progress=False)
    chosen = search.best_lr(0)
    lr_used = chosen if math.isfinite(chosen) else min(plan.lrs)
    study = effective_depth_study(
        [architecture], scale=scale, data=data, settings=settings.with_(lr=lr_used), seeds=(plan.seed,)
    )
    return {"search": search, "study": study, "lr_used": lr_used}


def run_impact(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 04: training error against depth for one architecture (a batched search per depth)."""
    pair = (options["activation"], options["norm"])
    return {
        "study": depth_study(
            [pair], depths=options["depths"], lrs=plan.lrs, data=data, scale=plan.scale, seeds=(plan.seed,)
        )
    }


def run_optimizers(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 04: the GSC under SGD, Adam and RMSprop; SGD against Adam as remedy evidence."""
    study = optimizer_study(data=data, scale=plan.scale, seeds=(plan.seed,))
    return {"study": study, "evidence": optimizer_evidence(study, data)}


def run_orthogonal(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 08: the looks-linear orthogonal initial state against He and orthogonal tanh."""
    return {"result": orthogonal_initial_state(scale=plan.scale, data=data, seeds=(plan.seed,))}


def run_width_vs_depth(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 08: deeper-narrower against shallower-wider networks at one parameter budget."""
    return {"result": width_vs_depth(scale=plan.scale, data=data, lrs=plan.lrs, seeds=(plan.seed,))}


def run_clipping(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 08: gradient clipping by norm on batch-normalized ReLU, as remedy evidence."""
    return {"evidence": batch_norm_clipping(plan.scale, data, plan.seed)}


def run_claims(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Every claim of the course, judged by the registry (:mod:`explodegrad.claims`) over the
    plan's claim seeds: the report's verdicts come from the same place as the notebooks'."""
    device = data.device
    return {"judgements": claims.evaluate(plan.scale, plan.claim_seeds, device)}


def plan_parts(plan: ReportPlan) -> list[Part]:
    """Every part of a report, in report order."""
    parts = [
        Part(
            "gsc-meaning",
            "what the GSC means: rescaling and perturbations",
            "03",
            run_gsc_meaning,
            {"factor": 10.0, "directions": 16},
            cost=0.3,
        ),
        Part("survey", "every architecture at initialization", "04, 05, 06", run_survey, cost=0.5),
    ]
    if plan.paper_size_survey:
        parts.append(
            Part(
                "survey-paper-size",
                "every architecture at initialization, depth 50, width 100",
                "04, 05",
                run_survey_paper_size,
                {"depth": PAPER_SIZE[0], "width": PAPER_SIZE[1]},
                cost=1.0,
            )
        )
    parts.append(
        Part("dilution", "dilution in residual networks at initialization", "06", run_dilution, cost=0.2)
    )
    for architecture in TABLE_ARCHITECTURES:
        parts.append(
            Part(
                arch_part_name(architecture),
                f"{architecture.name}: rate search, effective depth, Taylor",
                "04, 07",
                run_architecture,
                _arch_options(architecture),
                cost=3.0 if architecture.residual else 5.0,
            )
        )
    for activation, norm in IMPACT_ARCHITECTURES:
        parts.append(
            Part(
                f"impact-{activation}-{norm}",
                f"{activation}/{norm}: training error against depth",
                "04",
                run_impact,
                {"activation": activation, "norm": norm, "depths": list(default_depths(plan.scale))},
                cost=8.0,
            )
        )
    parts += [
        Part("optimizers", "the GSC under SGD, Adam and RMSprop", "04", run_optimizers, cost=4.0),
        Part("orthogonal", "the orthogonal initial state in training", "08", run_orthogonal, cost=4.0),
        Part(
            "width-vs-depth",
            "width against depth at one parameter budget",
            "08",
            run_width_vs_depth,
            cost=8.0,
        ),
        Part("clipping", "gradient clipping by norm", "08", run_clipping, cost=2.0),
        Part(
            "claims",
            "every claim of the course, judged over several seeds",
            "01-07",
            run_claims,
            {"seeds": list(plan.claim_seeds)},
            cost=12.0,
        ),
    ]
    return parts
