"""The parts of a report: one experiment each, what it runs, and the list of them.

Every ``run_*`` function takes ``(plan, data, options)`` and returns a dict of result objects
(numbers only) computed by the same library functions the notebooks call; :func:`plan_parts`
lists the parts of a plan in report order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from explodegrad import claims
from explodegrad.claims.evidence import STACKED_SEED_STUDIES
from explodegrad.core.config import NetConfig
from explodegrad.core.data import Dataset
from explodegrad.core.nets import build_mlp
from explodegrad.measures.dilution import dilution_profile
from explodegrad.reproduce.plan import DILUTION_ARCHITECTURES, PAPER_SIZE, TABLE_ARCHITECTURES, ReportPlan
from explodegrad.studies.common import Architecture, study_settings
from explodegrad.studies.depth_limit import DEFAULT_ARCHITECTURES as IMPACT_ARCHITECTURES
from explodegrad.studies.depth_limit import default_depths, depth_study
from explodegrad.studies.effective_depth import (
    EffectiveDepthStudy,
    TrainedNetworks,
    effective_depth_study,
    sweep_run_history,
)
from explodegrad.studies.gsc_meaning import perturbation_check, rescaling_comparison
from explodegrad.studies.optimizers import optimizer_study
from explodegrad.studies.orthogonal import orthogonal_initial_state
from explodegrad.studies.remedies import batch_norm_clipping, optimizer_evidence
from explodegrad.studies.survey import architecture_survey
from explodegrad.studies.width_depth import width_vs_depth
from explodegrad.training.loop import TrainSettings
from explodegrad.training.sweep import LRSearchResult, estimate_memory, lr_search, memory_limit

#: How a table row's effective depth and Taylor curve were measured (the part's ``route``).
MEASURED_ROUTE = "measured on the search's own models"
RETRAINED_ROUTE = "retrained at the chosen rate"
#: The route when every searched rate diverged: nothing to measure, so the smallest rate is trained.
ALL_DIVERGED_ROUTE = "retrained at the smallest rate (every searched rate diverged)"


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


def search_checkpoint_bytes(
    config: NetConfig, settings: TrainSettings, n_train: int, num_models: int, dtype: torch.dtype
) -> int:
    """Bytes a rate search's kept checkpoints take (``lr_search(..., keep_checkpoints=True)``).

    At every record the sweep keeps a copy of every model's parameters and buffers:
    ``records x models x (parameters + buffers)``, where the buffers are batch norm's running
    mean and variance (``dtype``) and its update counter (int64) per normalized layer, and a
    residual network's scale per block. Exact when the search is one chunk and no run stops
    early (a diverged run's rows are still copied until every run has stopped).

    Args:
        config: the searched network.
        settings: the search's settings (its steps and ``record_every``).
        n_train: training examples (for a run given in epochs).
        num_models: runs of the search (learning rates x configurations).
        dtype: the networks' dtype.
    """
    total = settings.total_steps(n_train)
    records = total // settings.record_every + 1 + (1 if total % settings.record_every else 0)
    size = torch.empty((), dtype=dtype).element_size()
    normalized = len(config.linear_shapes()) - 1 if config.norm == "batch" else 0
    numbers = config.num_parameters() + 2 * config.width * normalized + config.num_blocks
    per_model = numbers * size + normalized * torch.empty((), dtype=torch.int64).element_size()
    return records * num_models * per_model


def check_search_memory(
    config: NetConfig,
    settings: TrainSettings,
    data: Dataset,
    num_models: int,
    limit: int | None = None,
) -> int:
    """Refuse a search whose kept checkpoints and own training would not fit on the data's device.

    The estimate is :func:`search_checkpoint_bytes` plus the sweep's own estimate for the
    whole group (:func:`~explodegrad.training.sweep.estimate_memory`); the limit is the one
    sweeps use (:func:`~explodegrad.training.sweep.memory_limit`: a share of the free memory).

    Returns:
        The checkpoints' bytes.

    Raises:
        ValueError: when the estimate exceeds ``limit`` (default: ``memory_limit(data.device)``).
    """
    n_train, n_test = int(data.x_train.shape[0]), int(data.x_test.shape[0])
    dtype = data.x_train.dtype
    kept = search_checkpoint_bytes(config, settings, n_train, num_models, dtype)
    n_eval = (
        max(n_train, n_test) if settings.eval_size is None else min(max(n_train, n_test), settings.eval_size)
    )
    training = estimate_memory(config, settings, n_eval, dtype).total(num_models)
    limit = memory_limit(data.device) if limit is None else int(limit)
    if kept + training > limit:
        raise ValueError(
            f"measure_search_models=True is not allowed here: the {num_models} searched "
            f"networks of {config.label()}'s shape: their checkpoints take about "
            f"{kept / 2**20:,.1f} MiB and their training about {training / 2**20:,.1f} MiB, "
            "more than the limit of "
            f"{limit / 2**20:,.1f} MiB on {data.device}; use a plan with measure_search_models=False "
            "(retrain at the chosen rate), fewer checkpoints or fewer learning rates"
        )
    return kept


def run_architecture(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapters 04, 07: one table row's training: batched rate search, effective depth, Taylor.

    The rate search trains one network per rate in one stacked sweep. Its effective depth (at
    every record) and Taylor curve (at the end) are then measured on one of two routes, named
    in the result's ``route``:

    * ``plan.measure_search_models`` (the paper scale): the search keeps its networks at every
      record (checked against the memory limit first, :func:`check_search_memory`) and the
      chosen rate's own networks are measured (:data:`MEASURED_ROUTE`); the checkpoints are
      dropped before the result is returned.
    * otherwise (quick and tiny): the network is trained again at the chosen rate with
      :func:`~explodegrad.training.loop.train` (same weights and minibatches, a stack of one,
      so its float32 trajectory differs from the search's by rounding) and measured during that
      run (:data:`RETRAINED_ROUTE`).

    When every rate diverged, the smallest rate is trained again on either route
    (:data:`ALL_DIVERGED_ROUTE`).
    """
    return _search_rows(plan, data, [_architecture(options)])[0]


def run_table_rows(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapters 04, 07: several table rows of one shape (``options["architectures"]``), searched
    in ONE sweep, so that their networks train as one stacked group (ReLU, tanh and SELU rows,
    and the looks-linear one, differ only in activation and initializer).

    Each row is then measured exactly as :func:`run_architecture` measures it, on the same
    route; the result holds every row's objects under ``rows`` (keyed by
    :func:`arch_part_name`), each with the row's own view of the search
    (:meth:`~explodegrad.training.sweep.LRSearchResult.select`). Read a row with
    :func:`table_row`.
    """
    architectures = [_architecture(item) for item in options["architectures"]]
    results = _search_rows(plan, data, architectures)
    return {"rows": {arch_part_name(a): result for a, result in zip(architectures, results)}}


def _search_rows(plan: ReportPlan, data: Dataset, architectures: list[Architecture]) -> list[dict[str, Any]]:
    """One rate search over every row of ``architectures`` (one sweep), then each row measured;
    returns each row's ``search`` (its own view), ``study``, ``lr_used`` and ``route``."""
    scale = plan.scale
    configs = [
        a.config(scale.depth, scale.width, data.in_features, data.num_classes, plan.seed)
        for a in architectures
    ]
    settings = study_settings(scale, seed=plan.seed)
    keep = plan.measure_search_models
    if keep:
        check_search_memory(configs[0], settings, data, len(plan.lrs) * len(configs))
    search = lr_search(configs, data, list(plan.lrs), settings, progress=False, keep_checkpoints=keep)
    measured = []
    for index, architecture in enumerate(architectures):
        chosen = search.best_lr(index)
        lr_used = chosen if math.isfinite(chosen) else min(plan.lrs)
        best = search.best_run(index)
        if keep and best is not None:
            study = _measure_search(plan, data, architecture, search, best)
            route = MEASURED_ROUTE
        else:
            study = effective_depth_study(
                [architecture],
                scale=scale,
                data=data,
                settings=settings.with_(lr=lr_used),
                seeds=(plan.seed,),
            )
            route = RETRAINED_ROUTE if best is not None else ALL_DIVERGED_ROUTE
        measured.append((study, lr_used, route))
    if search.sweep.checkpoints:  # device memory, and not part of what a part stores
        search = dataclasses.replace(search, sweep=dataclasses.replace(search.sweep, checkpoints={}))
    return [
        {
            "search": search if len(architectures) == 1 else search.select(index),
            "study": study,
            "lr_used": lr_used,
            "route": route,
        }
        for index, (study, lr_used, route) in enumerate(measured)
    ]


def table_row(stored: dict[str, Any], architecture: Architecture) -> dict[str, Any]:
    """The objects of one table row (``search``, ``study``, ``lr_used``, ``route``), from its own
    part (:func:`run_architecture`) or from the part that searched its shape together
    (:func:`run_table_rows`)."""
    name = arch_part_name(architecture)
    if name in stored:
        return stored[name].objects
    for part in stored.values():
        rows = part.objects.get("rows") if isinstance(part.objects, dict) else None
        if rows is not None and name in rows:
            return rows[name]
    raise KeyError(f"architecture: no stored part holds the table row {architecture.name}")


def table_row_groups(plan: ReportPlan) -> list[list[Architecture]]:
    """The table's rows grouped by what can train stacked (:meth:`NetConfig.stack_key` at the
    plan's size), in table order."""
    groups: dict[tuple, list[Architecture]] = {}
    for architecture in TABLE_ARCHITECTURES:
        config = architecture.config(plan.scale.depth, plan.scale.width, 1, 2, plan.seed)
        groups.setdefault(config.stack_key(), []).append(architecture)
    return list(groups.values())


def rows_part_name(architectures: list[Architecture]) -> str:
    """The part name of table rows searched together, e.g. ``arch-rows-batch-res``."""
    first = architectures[0]
    return f"arch-rows-{first.norm}" + ("-res" if first.residual else "")


def _measure_search(
    plan: ReportPlan, data: Dataset, architecture: Architecture, search: LRSearchResult, run: int
) -> EffectiveDepthStudy:
    """The effective-depth study of the search's run ``run``, measured on its kept networks."""
    result = search.sweep
    steps = [checkpoint.step for checkpoint in result.checkpoints[run]]
    trained = TrainedNetworks(
        networks=[(step, result.network_at(run, step)) for step in steps],
        history=sweep_run_history(result, run, data),
    )
    return effective_depth_study(
        [architecture],
        scale=plan.scale,
        data=data,
        seeds=(plan.seed,),
        trained={(architecture.label, plan.seed): trained},
    )


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


#: The claims' studies that train, each group its own part (so that ``--jobs`` spreads them:
#: at the paper scale they are most of the report's training), with its relative cost. Every
#: other study judged at a scale (most measure at initialization) goes to ``claims-other``.
CLAIM_PARTS: dict[str, tuple[tuple[str, ...], float]] = {
    "claims-depth-errors": (("depth-errors",), 6.0),
    "claims-width-depth": (("width-depth",), 4.0),
    "claims-effective-depth": (("effective-depth",), 4.0),
    "claims-optimizers": (("optimizers",), 3.0),
    "claims-orthogonal": (("orthogonal",), 3.0),
    "claims-clipping": (("clipping-runs", "clipping"), 3.0),
    "claims-recurrent": (("recurrent", "recurrent-memory"), 1.0),
}
OTHER_CLAIMS_PART = "claims-other"


def claim_part_studies(scale_name: str) -> dict[str, list[str]]:
    """Part name -> the studies it judges at this scale (parts without a claim left out), in
    the registry's order of studies."""
    studies = list(dict.fromkeys(c.study for c in claims.all_claims() if c.judged_at(scale_name)))
    grouped = {name: [s for s in studies if s in members] for name, (members, _) in CLAIM_PARTS.items()}
    listed = {s for members, _ in CLAIM_PARTS.values() for s in members}
    grouped[OTHER_CLAIMS_PART] = [s for s in studies if s not in listed]
    return {name: chosen for name, chosen in grouped.items() if chosen}


def is_claims_part(name: str) -> bool:
    """Whether a part name is one of the claims' parts (:func:`claim_part_studies`)."""
    return name == OTHER_CLAIMS_PART or name in CLAIM_PARTS


def run_claims(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """The claims of ``options["studies"]``, judged by the registry (:mod:`explodegrad.claims`)
    over the plan's claim seeds: the report's verdicts come from the same claims as the
    notebooks' (at the paper scale, the studies of ``STACKED_SEED_STUDIES`` train their seeds
    together here, while a notebook's call trains one network at a time; see
    :attr:`explodegrad.claims.evidence.EvidenceSetting.stack_seeds`).

    The claims' studies load the scale's data themselves: the plan's ``data_root`` reaches them
    as the scale's own (``Scale.data_root``).
    """
    chosen = [c.claim_id for c in judged_claims(plan, options["studies"])]
    return {"judgements": claims.evaluate(plan.scale, plan.claim_seeds, data.device, claim_ids=chosen)}


def judged_claims(plan: ReportPlan, studies: list[str]) -> list[claims.Claim]:
    """The registry's claims of these studies judged at the plan's scale, in registry order."""
    chosen = set(studies)
    return [c for c in claims.all_claims() if c.judged_at(plan.scale.name) and c.study in chosen]


def stale_claims(part: Part, plan: ReportPlan, judged: Any) -> str:
    """Why a stored claims part no longer speaks for the registry's claims, ``""`` when it does.

    ``judged`` is the part's stored judgements as JSON (each with ``claim_id`` and
    ``sentence``). A claim added to or removed from the part's studies, or a sentence reworded
    since, makes the part stale: a report must not print a verdict under words it was not
    judged for. The checks' code is not compared: the part's JSON names its commit, and the
    report names parts of other commits.
    """
    try:
        stored = {item["claim_id"]: item["sentence"] for item in judged}
    except (TypeError, KeyError):
        return "its judgements are unreadable (no claim ids and sentences)"
    wanted = {c.claim_id: c.sentence for c in judged_claims(plan, part.options.get("studies", []))}
    changes = [
        (what, ids)
        for what, ids in (
            ("added", [i for i in wanted if i not in stored]),
            ("removed", [i for i in stored if i not in wanted]),
            ("reworded", [i for i in wanted if i in stored and stored[i] != wanted[i]]),
        )
        if ids
    ]
    if not changes:
        return ""
    said = "; ".join(f"{what}: {', '.join(ids)}" for what, ids in changes)
    return f"its claims changed since it was computed ({said})"


def _stacked_option(plan: ReportPlan, studies: list[str]) -> dict[str, Any]:
    """A claims part's key names it when its studies train their seeds together, so a part
    stored before (or without) that route is computed again, not reused."""
    stacked = claims.setting(plan.scale).stack_seeds and set(studies) & set(STACKED_SEED_STUDIES)
    return {"stack_seeds": True} if stacked else {}


def _route_option(plan: ReportPlan) -> dict[str, Any]:
    """The table parts' key names the measuring route only where it is not the default
    (retraining), so quick and tiny parts keep their keys."""
    return {"measure_search_models": True} if plan.measure_search_models else {}


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
    if plan.stack_table_rows:
        for group in table_row_groups(plan):
            parts.append(
                Part(
                    rows_part_name(group),
                    f"{', '.join(a.name for a in group)}: one rate search, effective depth, Taylor",
                    "04, 07",
                    run_table_rows,
                    {"architectures": [_arch_options(a) for a in group]} | _route_option(plan),
                    cost=(3.0 if group[0].residual else 5.0) * len(group),
                )
            )
    else:
        for architecture in TABLE_ARCHITECTURES:
            parts.append(
                Part(
                    arch_part_name(architecture),
                    f"{architecture.name}: rate search, effective depth, Taylor",
                    "04, 07",
                    run_architecture,
                    _arch_options(architecture) | _route_option(plan),
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
    ]
    judged = [c for c in claims.all_claims() if c.judged_at(plan.scale.name)]
    for name, studies in claim_part_studies(plan.scale.name).items():
        chapters = sorted({c.claim_id.split("/")[0] for c in judged if c.study in studies})
        parts.append(
            Part(
                name,
                f"the claims of {', '.join(studies)}, judged over several seeds",
                ", ".join(chapters),
                run_claims,
                {"seeds": list(plan.claim_seeds), "studies": studies, **_stacked_option(plan, studies)},
                cost=CLAIM_PARTS[name][1] if name in CLAIM_PARTS else 1.0,
            )
        )
    return parts
