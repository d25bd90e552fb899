"""The impact of exploding gradients on training (chapter 04): training error against depth.

Returns numbers only (tables and arrays; :mod:`explodegrad.plots` draws them):

* :func:`depth_study`: training error against depth for an exploding and a non-exploding
  architecture, each depth with its own best learning rate, all runs in one batched sweep
  (:func:`explodegrad.training.sweep.lr_search`), as the paper picks a rate per architecture.
* :func:`depth_limit_evidence`: the stored depth-limit study (depths 10, 30 and 50; CIFAR-10 or
  the digits).
* :func:`rate_curves`: a depth's final error against the learning rate, per seed.

The optimizers and the relative update sizes per layer live in
:mod:`explodegrad.studies.optimizers`.

Layers are numbered from the output as in the paper (k = 1 the readout, k = L the first
layer). Sizes come from a :class:`~explodegrad.core.scales.Scale`; divergence is a result, never an
error.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from explodegrad.core.checks import check_choice, check_int, check_positive
from explodegrad.core.config import INITS, NORMS, NetConfig
from explodegrad.core.data import Dataset
from explodegrad.core.device import default_dtype, resolve_device
from explodegrad.core.jsonable import frame_from_records
from explodegrad.core.nets import build_from_config
from explodegrad.core.scales import EVIDENCE, QUICK, Scale
from explodegrad.core.seeds import chosen_rates, resolve_seeds, seed_table, seed_values
from explodegrad.measures.gsc import gsc_profile
from explodegrad.studies.common import (
    DEFAULT_INITS,
    Architecture,
    StudyResult,
    architecture_label,
    resolve_data,
    resolve_scale,
)
from explodegrad.training.loop import TrainSettings
from explodegrad.training.sweep import LRSearchResult, best_rate, lr_search

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = (
    "04/shallow-all-train",
    "04/exploding-train-worse-deep",
    "04/depth-limit-shallow-trains",
    "04/depth-limit-exploding-degrade",
    "04/depth-limit-calm-train-deep",
    "04/depth-limit-exploding-worse",
    "04/depth-limit-resnets-rescue",
    "04/depth-limit-error-grows-with-gsc",
)

#: Learning rates a depth study searches by default (SGD with momentum 0.9): two, so that the
#: quick scale stays within a CPU's time budget; the best of the two is kept per depth.
DEFAULT_SEARCH_LRS = (0.01, 0.1)


#: The version of the depth study's computation. Stored evidence records it; bump it when a
#: change alters what :func:`depth_study` computes, and the stored files become stale (a test
#: fails until they are computed again with ``python -m explodegrad evidence``).
STUDY_VERSION = 1

#: The stored evidence's architectures: plain ReLU, tanh and SELU without normalization,
#: batch-normalized ReLU and layer-normalized tanh, and the residual versions of those that
#: explode at initialization (batch-normalized ReLU, layer-normalized tanh, SELU).
EVIDENCE_ARCHITECTURES = (
    Architecture("relu", "none"),
    Architecture("relu", "batch"),
    Architecture("tanh", "none"),
    Architecture("tanh", "layer"),
    Architecture("selu", "none"),
    Architecture("relu", "batch", residual=True),
    Architecture("tanh", "layer", residual=True),
    Architecture("selu", "none", residual=True),
)
#: The stored evidence's depths.
EVIDENCE_DEPTHS = (10, 30, 50)
#: The stored evidence's initial grid of learning rates (SGD, momentum 0.9), log-spaced; it
#: grows by up to :data:`EVIDENCE_WIDEN` rates on a side where a seed chose the edge.
EVIDENCE_LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
EVIDENCE_WIDEN = 2


#: The default architectures of :func:`depth_study`: batch-normalized ReLU and layer-normalized
#: tanh explode (rates about 1.21 and 1.09 per layer at initialization), tanh without
#: normalization does not (rate about 1).
DEFAULT_ARCHITECTURES = (("relu", "batch"), ("tanh", "layer"), ("tanh", "none"))

#: The float columns of a depth study's table and rates (NaN where a stored value is null).
_TABLE_FLOATS = (
    "gsc_init",
    "rate_init",
    "r_squared_init",
    "best_lr",
    "final_train_error",
    "final_test_error",
)
_RATES_FLOATS = ("lr", "final_train_error", "final_train_loss")


@dataclass(frozen=True, eq=False)  # holds DataFrames: compare fields, not results
class DepthStudy(StudyResult):
    """Training error against depth, each (architecture, depth, seed) at its best learning rate.

    Attributes:
        table: one row per (architecture, depth, seed): architecture (e.g. ``relu/batch``; the
            initializer is appended when it is not the activation's default), activation,
            norm, init, depth, seed, label, gsc_init (GSC(L, 0) of the initial network on a
            measurement batch), rate_init (its fitted r), best_lr (NaN when every rate
            diverged), final_train_error, final_test_error.
        search: the first :class:`~explodegrad.training.sweep.LRSearchResult` (every rate's run of
            the initial grid; None for a study read back from stored evidence).
        rates: every run tried, one row per (architecture, depth, seed, lr): the final training
            error and loss and whether it diverged (the widened rates included).
        data_name: the data set trained on.
        width: neurons per hidden layer.
        steps: updates per run.
        optimizer: the optimizer used.
        lrs: the learning rates searched.
        seeds: the seeds (each seeds the weights; all seeds train in the same sweep).
    """

    table: pd.DataFrame
    search: LRSearchResult | None = field(metadata={"serialize": False})  # ``rates`` summarizes it
    steps: int
    optimizer: str
    lrs: tuple[float, ...] = ()
    seeds: tuple[int, ...] = (0,)
    rates: pd.DataFrame | None = None
    data_name: str = ""
    width: int = 0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DepthStudy:
        """The study back from :meth:`to_dict` (``search`` is None; missing numbers are NaN)."""
        table = frame_from_records(values["table"], floats=_TABLE_FLOATS)
        rates = (
            frame_from_records(values["rates"], floats=_RATES_FLOATS)
            if values.get("rates") is not None
            else None
        )
        return cls(
            table=table,
            search=None,
            steps=int(values["steps"]),
            optimizer=str(values["optimizer"]),
            lrs=tuple(float(rate) for rate in values["lrs"]),
            seeds=tuple(int(seed) for seed in values["seeds"]),
            rates=rates,
            data_name=str(values.get("data_name", "")),
            width=int(values.get("width", 0)),
        )

    def values(self, architecture: str, depth: int, column: str) -> np.ndarray:
        """One value of ``table[column]`` per seed for (architecture, depth)."""
        return seed_values(self.table, column, architecture=architecture, depth=depth)

    def summary(self) -> str:
        """Per architecture and depth: GSC(L, 0) at init, the chosen rates and the training error,
        as the median [min, max] over the seeds."""
        table = seed_table(
            self.table,
            ["architecture", "depth"],
            {"gsc_init": "GSC(L, 0) at init", "final_train_error": "train error"},
            {"gsc_init": ".4g", "final_train_error": ".3f"},
        )
        table.insert(3, "best lr", chosen_rates(self.table, ["architecture", "depth"]))
        rates = ", ".join(f"{rate:g}" for rate in self.lrs)
        tried = sorted(set(self.rates["lr"])) if self.rates is not None else list(self.lrs)
        widened = [rate for rate in tried if not any(math.isclose(rate, r) for r in self.lrs)]
        note = f"; grid widened by {', '.join(f'{r:.3g}' for r in widened)} at its edges" if widened else ""
        if "at_edge" in self.table and self.table["at_edge"].any():
            edge = self.table[self.table["at_edge"]]
            where = sorted(set(edge["architecture"] + " d" + edge["depth"].astype(str)))
            note += f"; still at an edge: {', '.join(where)}"
        return (
            f"{self.optimizer}, {self.steps} steps, best of the rates {{{rates}}} per run{note}; median "
            f"[min, max] over {len(self.seeds)} seeds\n{table.to_string(index=False)}"
        )


def default_depths(scale: Scale) -> tuple[int, ...]:
    """The depths a depth study trains by default: 2, half the scale's depth, it, and twice it."""
    depth = resolve_scale(scale).depth
    return tuple(sorted({2, max(2, depth // 2), max(2, depth), 2 * depth}))


def _check_architectures(architectures: Any) -> list[Architecture]:
    """:class:`~explodegrad.studies.common.Architecture` s from those, or from (activation, norm)
    and (activation, norm, init) tuples (a missing init is the activation's default)."""
    try:
        items = list(architectures)
    except TypeError:
        raise TypeError(
            f"architectures={architectures!r} is not allowed: give a sequence of Architecture objects "
            "or (activation, norm) or (activation, norm, init) tuples, e.g. "
            "(('relu', 'batch'), ('tanh', 'none'))"
        ) from None
    if not items:
        raise ValueError(f"architectures={architectures!r} is not allowed: give at least one architecture")
    chosen = []
    for item in items:
        if isinstance(item, Architecture):
            chosen.append(item)
            continue
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) not in (2, 3):
            raise ValueError(
                f"architectures={architectures!r} is not allowed: give a sequence of Architecture objects "
                "or (activation, norm) or (activation, norm, init) tuples, e.g. "
                "(('relu', 'batch'), ('tanh', 'none'))"
            )
        activation = check_choice("architectures", item[0], tuple(DEFAULT_INITS))
        norm = check_choice("architectures", item[1], NORMS)
        init = check_choice("architectures", item[2], INITS) if len(item) == 3 else None
        chosen.append(Architecture(activation, norm, init=init))
    return chosen


def _study_label(architecture: Architecture) -> str:
    """The architecture's key in the table: its label, with the initializer when it is not the default."""
    default_init = architecture.init in (None, DEFAULT_INITS[architecture.activation])
    return architecture_label(
        architecture.activation,
        architecture.norm,
        architecture.residual,
        init=None if default_init else architecture.init,
    )


def widened_rate(grid: Sequence[float], chosen: Sequence[float]) -> list[float]:
    """The rates to add to a log-spaced ``grid`` so that no seed's ``chosen`` rate sits at its edge.

    One more rate below the grid when a seed chose its smallest rate, one above when a seed chose
    its largest, each one grid step (the grid's geometric step) away; none when every chosen rate
    is inside (NaN: every rate diverged, which says to go lower).
    """
    grid = sorted(grid)
    if len(grid) < 2:
        return []
    step = (grid[-1] / grid[0]) ** (1.0 / (len(grid) - 1))
    added = []
    if any(math.isnan(rate) or rate <= grid[0] for rate in chosen):
        added.append(grid[0] / step)
    if any(rate >= grid[-1] for rate in chosen if not math.isnan(rate)):
        added.append(grid[-1] * step)
    return added


def depth_study(
    architectures: Sequence[Architecture | tuple[str, ...]] = DEFAULT_ARCHITECTURES,
    depths: Sequence[int] | None = None,
    lrs: Sequence[float] = DEFAULT_SEARCH_LRS,
    *,
    scale: Scale | None = None,
    device: Any = None,
    data: Dataset | str | None = None,
    seeds: int | Sequence[int] | None = None,
    width: int | None = None,
    steps: int | None = None,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    widen: int = 0,
    eval_size: int = 1024,
    dtype: torch.dtype | None = None,
    progress: bool = False,
) -> DepthStudy:
    """Train each architecture at each depth with each learning rate and seed (batched sweeps).

    Args:
        architectures: :class:`~explodegrad.studies.common.Architecture` s, or (activation, norm)
            pairs with the activation's default initializer
            (:data:`explodegrad.studies.common.DEFAULT_INITS`), or (activation, norm, init) triples.
        depths: the depths (default :func:`default_depths` of the scale).
        lrs: learning rates searched for every (architecture, depth); log-spaced when ``widen``.
        scale: sizes (default :data:`explodegrad.core.scales.QUICK`).
        device: where to train (:func:`~explodegrad.core.device.resolve_device`; default the
            data's, else the setup's choice).
        data: a Dataset, a data set name, or None for the scale's data.
        seeds: a count or the seeds themselves (default: the scale's ``num_seeds``); each seed
            draws the weights, and every seed picks its own best rate. The minibatch order is
            the first seed's for every run, so that all runs share one sweep.
        width: neurons per hidden layer (default: the scale's).
        steps: updates per run (default: the scale's ``train_steps``).
        optimizer: the optimizer of every run.
        momentum: SGD's momentum.
        widen: how many times the grid of an (architecture, depth) may grow by one rate at an
            edge where a seed chose the grid's smallest or largest rate (see
            :func:`widened_rate`); the table's ``at_edge`` says where a chosen rate still sits at
            the edge afterwards.
        eval_size: training examples the final training error is measured on.
        dtype: float64 or float32; default float64 on a CPU, float32 on a GPU (see
            :func:`optimizer_study`).
        progress: show a progress bar.
    """
    scale = resolve_scale(scale)
    seeds = resolve_seeds(seeds, scale.num_seeds)
    device = resolve_device(device, data)
    chosen = _check_architectures(architectures)
    depths = default_depths(scale) if depths is None else depths
    if isinstance(depths, (str, bytes)) or not list(depths):
        raise ValueError(f"depths={depths!r} is not allowed: give a sequence of integers >= 1")
    depths = [check_int("depths", d, 1) for d in depths]
    width = check_int("width", scale.width if width is None else width, 1)
    steps = check_int("steps", scale.train_steps if steps is None else steps, 1)
    lrs = tuple(check_positive("lrs", lr) for lr in lrs)
    widen = check_int("widen", widen, 0)
    dtype = default_dtype(device) if dtype is None else dtype
    dataset = resolve_data(data, scale=scale, seed=seeds[0], device=device, dtype=dtype)
    runs = [
        (architecture, architecture.config(depth, width, dataset.in_features, dataset.num_classes, seed))
        for architecture in chosen
        for depth in depths
        for seed in seeds
    ]
    configs = [config for _, config in runs]
    settings = TrainSettings(
        optimizer=optimizer,
        momentum=momentum,
        steps=steps,
        batch_size=min(scale.batch_size, int(dataset.x_train.shape[0])),
        record_every=steps,
        eval_size=eval_size,
        seed=seeds[0],
    )
    search = lr_search(configs, dataset, list(lrs), settings, device=dataset.device, progress=progress)
    tried = search.table.copy()
    grids = {index: list(lrs) for index in range(len(configs))}
    for _ in range(widen):
        extra: dict[float, list[int]] = {}  # new rate -> runs (every seed of a group) to train at it
        for group in _groups(runs):
            best = [best_rate(tried[tried["arch"] == index])["best_lr"] for index in group]
            for rate in widened_rate(grids[group[0]], best):
                extra.setdefault(rate, []).extend(group)
        if not extra:
            break
        for rate, indices in extra.items():
            more = lr_search(
                [configs[i] for i in indices],
                dataset,
                [rate],
                settings,
                device=dataset.device,
                progress=progress,
            ).table
            more["arch"] = [indices[i] for i in more["arch"]]
            tried = pd.concat([tried, more], ignore_index=True)
            for index in indices:
                grids[index].append(rate)
    inputs, targets = dataset.batch(min(256, len(dataset.x_train)), seed=seeds[0])
    rows = []
    for index, (architecture, config) in enumerate(runs):
        net = build_from_config(config, dtype=torch.float64)
        profile = gsc_profile(net, inputs.cpu().double(), targets.cpu(), seed=config.seed)
        best = best_rate(tried[tried["arch"] == index])
        grid = sorted(grids[index])
        rows.append(
            {
                "architecture": _study_label(architecture),
                "activation": config.activation,
                "norm": config.norm,
                "residual": config.residual,
                "init": config.init,
                "depth": config.depth,
                "seed": config.seed,
                "label": config.label(),
                "gsc_init": profile.first_layer_gsc,
                "rate_init": profile.fit.rate,
                "r_squared_init": profile.fit.r_squared,
                "best_lr": best["best_lr"],
                "at_edge": bool(math.isnan(best["best_lr"]) or best["best_lr"] in (grid[0], grid[-1]))
                and len(grid) > 1,
                "final_train_error": best["final_train_error"],
                "final_test_error": best["final_test_error"],
            }
        )
    table = pd.DataFrame(rows)
    rates = tried.merge(
        table[["architecture", "depth", "seed"]].rename_axis("arch").reset_index(), on="arch"
    )[["architecture", "depth", "seed", "lr", "final_train_error", "final_train_loss", "diverged"]]
    return DepthStudy(
        table=table,
        search=search,
        steps=steps,
        optimizer=settings.optimizer,
        lrs=lrs,
        seeds=seeds,
        rates=rates.sort_values(["architecture", "depth", "seed", "lr"], ignore_index=True),
        data_name=dataset.name,
        width=width,
    )


def depth_limit_evidence(
    *,
    data: Dataset | str = "cifar10",
    device: Any = None,
    seeds: int | Sequence[int] | None = None,
    architectures: Sequence[Architecture] = EVIDENCE_ARCHITECTURES,
    depths: Sequence[int] = EVIDENCE_DEPTHS,
    lrs: Sequence[float] = EVIDENCE_LRS,
    widen: int = EVIDENCE_WIDEN,
    progress: bool = False,
) -> DepthStudy:
    """The depth-limit study of the stored evidence: :func:`depth_study` at the evidence scale.

    Every architecture of :data:`EVIDENCE_ARCHITECTURES` at every depth of
    :data:`EVIDENCE_DEPTHS`, a log-spaced grid of rates widened at its edges, the scale's seeds,
    in float32 (on a CPU too: the stored numbers are judged over seeds with margins, and an
    integrity test recomputes one configuration within a stated tolerance). ``data`` is
    ``"cifar10"`` (the evidence scale's first 500 training examples) or ``"digits"`` (the same
    number of the bundled digits), or a Dataset. The other arguments exist to recompute a part
    of it (the integrity test) or to run it elsewhere.
    """
    scale = EVIDENCE
    if isinstance(data, str) and data == "digits":
        scale = EVIDENCE.with_(dataset="digits")
    return depth_study(
        architectures,
        depths,
        lrs,
        scale=scale,
        device=device,
        data=None if isinstance(data, str) else data,
        seeds=seeds,
        widen=widen,
        dtype=torch.float32,
        progress=progress,
    )


def _groups(runs: Sequence[tuple[Architecture, NetConfig]]) -> list[list[int]]:
    """The run indices of each (architecture, depth), every seed together."""
    groups: dict[tuple[Architecture, int], list[int]] = {}
    for index, (architecture, config) in enumerate(runs):
        groups.setdefault((architecture, config.depth), []).append(index)
    return list(groups.values())


@dataclass(frozen=True, eq=False)  # holds DataFrames: compare fields, not results
class RateCurves:
    """Training error against learning rate for one (architecture, depth): what chapter 04's
    depth-limit explorer draws.

    Attributes:
        source: where the stored curves come from (a stored file's label).
        architecture: the study's label, e.g. ``relu/batch`` or ``relu/none/looks_linear``.
        depth: weight layers.
        spec: the architecture itself (activation, norm, residual, initializer), taken from the
            study's table, never parsed from the label: what :func:`quick_rerun` trains.
        stored: the stored runs, one row per (seed, lr): final_train_error, diverged.
        chosen: one row per seed: best_lr (NaN when every rate diverged), final_train_error.
        rerun: a fresh quick run of the same architecture and depth (one row per lr:
            final_train_error, diverged), or None.
        rerun_label: what the rerun was (scale, data, width, steps, seed).
    """

    source: str
    architecture: str
    depth: int
    spec: Architecture
    stored: pd.DataFrame
    chosen: pd.DataFrame
    rerun: pd.DataFrame | None = None
    rerun_label: str = ""

    def summary(self) -> str:
        """The chosen rate and training error of each seed, and the rerun's best."""
        lines = [f"{self.architecture} at depth {self.depth} ({self.source})"]
        for _, row in self.chosen.iterrows():
            lr = "every rate diverged" if math.isnan(row["best_lr"]) else f"best lr {row['best_lr']:.3g}"
            lines.append(f"  seed {int(row['seed'])}: {lr}, training error {row['final_train_error']:.3f}")
        if self.rerun is not None:
            best = best_rate(self.rerun)
            lines.append(
                f"  your rerun ({self.rerun_label}): best lr {best['best_lr']:.3g}, "
                f"training error {best['final_train_error']:.3f}"
            )
        return "\n".join(lines)


def rate_curves(study: DepthStudy, architecture: str, depth: int, *, source: str = "") -> RateCurves:
    """The stored training error of every rate tried for (architecture, depth), per seed."""
    if not isinstance(study, DepthStudy) or study.rates is None:
        raise TypeError(
            "study: expected a DepthStudy with its rates (e.g. stored.load('depth-limit-cifar10').result)"
        )
    architecture = check_choice(
        "architecture", architecture, tuple(dict.fromkeys(study.table["architecture"]))
    )
    depth = check_int("depth", depth, 1)
    depths = sorted(set(study.table["depth"]))
    if depth not in depths:
        raise ValueError(f"depth={depth} is not allowed: the study has the depths {depths}")
    rates = study.rates[(study.rates["architecture"] == architecture) & (study.rates["depth"] == depth)]
    table = study.table[(study.table["architecture"] == architecture) & (study.table["depth"] == depth)]
    return RateCurves(
        source=source,
        architecture=architecture,
        depth=depth,
        spec=_table_architecture(table),
        stored=rates[["seed", "lr", "final_train_error", "diverged"]].reset_index(drop=True),
        chosen=table[["seed", "best_lr", "final_train_error"]].reset_index(drop=True),
    )


def _table_architecture(rows: pd.DataFrame) -> Architecture:
    """The architecture of a depth study's rows of one label: their activation, norm, residual
    and init columns (every seed's row holds the same; a stored study has them too)."""
    first = rows.iloc[0]
    return Architecture(
        str(first["activation"]),
        str(first["norm"]),
        residual=bool(first["residual"]),
        init=str(first["init"]),
    )


def quick_rerun(
    curves: RateCurves, *, seed: int = 0, steps: int = 100, device: Any = None, progress: bool = False
) -> RateCurves:
    """``curves`` with a fresh run of its architecture (``curves.spec``) and depth at the quick
    scale's data and width (the bundled digits, width 64), ``steps`` updates, one seed, float32,
    at the first seed's chosen rate and its two neighbours in the stored grid: seconds on a CPU,
    so a learner can see the same shape (or not) on their own machine."""
    if not isinstance(curves, RateCurves):
        raise TypeError(f"curves: expected RateCurves from rate_curves(), got {type(curves).__name__}")
    steps = check_int("steps", steps, 1, 10_000)
    grid = sorted(set(float(rate) for rate in curves.stored["lr"]))
    first = curves.chosen["best_lr"].dropna()
    centre = grid.index(float(first.iloc[0])) if len(first) else len(grid) // 2
    lrs = grid[max(0, centre - 1) : centre + 2]
    study = depth_study(
        [curves.spec],
        depths=(curves.depth,),
        lrs=lrs,
        scale=QUICK,
        device=device,
        seeds=(seed,),
        steps=steps,
        dtype=torch.float32,
        progress=progress,
    )
    rerun = study.rates[["lr", "final_train_error", "final_train_loss", "diverged"]].copy()
    rerun["final_test_error"] = math.nan
    label = f"digits, width {QUICK.width}, {steps} steps, seed {seed}, float32"
    return dataclasses.replace(curves, rerun=rerun, rerun_label=label)
