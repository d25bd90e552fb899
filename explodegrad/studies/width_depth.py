"""Chapter 8: width against depth at a fixed parameter budget (:func:`width_vs_depth`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from explodegrad.core.checks import check_int, check_positive
from explodegrad.core.config import NetConfig
from explodegrad.core.data import Dataset
from explodegrad.core.scales import Scale
from explodegrad.core.seeds import chosen_rates, resolve_seeds, seed_table, seed_values
from explodegrad.studies.common import (
    Architecture,
    StudyResult,
    architecture_label,
    resolve_data,
    resolve_scale,
    study_settings,
)
from explodegrad.training.loop import TrainSettings
from explodegrad.training.sweep import LRSearchResult, lr_search

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = ("08/width-beats-depth",)

#: Learning rates the width-vs-depth study searches (SGD with momentum 0.9).
DEFAULT_WIDTH_LRS = (0.03, 0.1, 0.3)


def width_for_budget(config: NetConfig, depth: int, budget: int) -> int:
    """The largest width whose network (``config`` at ``depth``) has at most ``budget`` parameters.

    Raises:
        ValueError: when not even width 1 fits the budget (or the depth is not allowed).
    """
    budget = check_int("budget", budget, 1)
    depth = check_int("depth", depth, 2)

    def count(width: int) -> int:
        return config.with_(depth=depth, width=width).num_parameters()

    if count(1) > budget:
        raise ValueError(
            f"budget={budget} is not allowed for depth={depth}: even width 1 needs {count(1)} parameters"
        )
    low, high = 1, 2
    while count(high) <= budget:
        low, high = high, 2 * high
    while high - low > 1:  # count(low) <= budget < count(high)
        middle = (low + high) // 2
        low, high = (middle, high) if count(middle) <= budget else (low, middle)
    return low


def default_budget_depths(scale: Scale | None = None) -> tuple[int, ...]:
    """Depths compared at a fixed budget: 2, 4, 8, the scale's depth and twice it."""
    scale = resolve_scale(scale)
    return tuple(sorted({2, 4, 8, scale.depth, 2 * scale.depth}))


@dataclass(frozen=True, eq=False)  # holds DataFrames: compare fields, not results
class WidthDepthResult(StudyResult):
    """Deeper-narrower against shallower-wider networks with the same parameter budget.

    Attributes:
        table: one row per (depth, seed), depths ascending: depth, seed, width, parameters,
            best_lr, final_train_error, final_train_loss, final_test_error (NaN when every
            rate diverged).
        budget: the parameter budget (every network has at most this many).
        architecture: activation/norm/init of every network.
        search: the :class:`~explodegrad.training.sweep.LRSearchResult` with every run.
    """

    table: pd.DataFrame
    budget: int
    architecture: str
    search: LRSearchResult
    seeds: tuple[int, ...] = (0,)

    @property
    def depths(self) -> list[int]:
        return sorted(set(int(d) for d in self.table["depth"]))

    def values(self, depth: int, column: str) -> np.ndarray:
        """One value of ``table[column]`` per seed at ``depth``."""
        return seed_values(self.table, column, depth=depth)

    def summary(self) -> str:
        """Per depth: the width, the parameters, the chosen rates and the errors, as the median
        [min, max] over the seeds."""
        table = seed_table(
            self.table,
            ["depth", "width", "parameters"],
            {"final_train_error": "train err", "final_test_error": "test err"},
            {"final_train_error": ".3f", "final_test_error": ".3f"},
        )
        table.insert(3, "best lr", chosen_rates(self.table, "depth"))
        table["parameters"] = table["parameters"].map(lambda count: f"{count:,}")
        return (
            f"{self.architecture}, at most {self.budget:,} parameters each; median [min, max] over "
            f"{len(self.seeds)} seeds\n{table.to_string(index=False)}"
        )


def width_vs_depth(
    depths: Sequence[int] | None = None,
    budget: int | None = None,
    *,
    scale: Scale | None = None,
    device: Any = None,
    data: Dataset | str | None = None,
    seeds: int | Sequence[int] | None = None,
    architecture: Architecture | None = None,
    lrs: Sequence[float] = DEFAULT_WIDTH_LRS,
    settings: TrainSettings | None = None,
    progress: bool = False,
) -> WidthDepthResult:
    """Train networks of several depths at one parameter budget, each as wide as the budget allows.

    Args:
        depths: the depths (default :func:`default_budget_depths`), each >= 2.
        budget: the parameter budget (default: the scale's network, depth x width).
        scale: sizes of :mod:`explodegrad.core.scales` (default QUICK).
        device: where to train (:func:`~explodegrad.core.device.resolve_device`; default the
            data's, else the setup's choice).
        data: a Dataset, a data set name or None (:func:`~explodegrad.studies.common.resolve_data`:
            the scale's, float64 on the CPU; a given Dataset is used in its own dtype).
        seeds: a count or the seeds themselves (default: the scale's ``num_seeds``); each seed
            draws the weights and picks its own best rate; all seeds train in the same sweep
            (with the first seed's minibatch order).
        architecture: activation, norm and init of every network (default: batch-normalized
            ReLU with He init, whose gradients explode with depth).
        lrs: learning rates searched for every depth (SGD by default); all runs train in ONE
            batched sweep and each depth keeps its best rate (lowest final training error).
        settings: training settings (default :func:`~explodegrad.studies.common.study_settings`).
        progress: show a progress bar.
    """
    scale = resolve_scale(scale)
    seeds = resolve_seeds(seeds, scale.num_seeds)
    data = resolve_data(data, scale=scale, seed=seeds[0], device=device)
    architecture = Architecture("relu", "batch", init="he") if architecture is None else architecture
    if not isinstance(architecture, Architecture):
        raise TypeError(
            f"architecture={architecture!r} is not allowed: give a plain Architecture, "
            "e.g. Architecture('relu', 'batch')"
        )
    if architecture.residual:
        raise ValueError(
            f"architecture={architecture!r} is not allowed: give a plain Architecture, "
            "e.g. Architecture('relu', 'batch')"
        )
    depths = default_budget_depths(scale) if depths is None else depths
    if isinstance(depths, (str, bytes)) or not list(depths):
        raise ValueError(f"depths={depths!r} is not allowed: give a sequence of integers >= 2")
    depths = sorted({check_int("depths", d, 2) for d in depths})
    base = architecture.config(scale.depth, scale.width, data.in_features, data.num_classes, seeds[0])
    budget = base.num_parameters() if budget is None else check_int("budget", budget, 1)
    configs = [
        base.with_(depth=d, width=width_for_budget(base, d, budget), seed=seed)
        for d in depths
        for seed in seeds
    ]
    settings = study_settings(scale) if settings is None else settings
    settings = settings.with_(record_every=settings.total_steps(len(data.x_train)), seed=seeds[0])
    search = lr_search(configs, data, [check_positive("lrs", lr) for lr in lrs], settings, progress=progress)
    rows = []
    for index, config in enumerate(configs):
        best = search.best.iloc[index]
        rows.append(
            {
                "depth": config.depth,
                "seed": config.seed,
                "width": config.width,
                "parameters": config.num_parameters(),
                "best_lr": float(best["best_lr"]),
                "final_train_error": float(best["final_train_error"]),
                "final_train_loss": float(best["final_train_loss"]),
                "final_test_error": float(best["final_test_error"]),
            }
        )
    return WidthDepthResult(
        table=pd.DataFrame(rows),
        budget=budget,
        architecture=architecture_label(base.activation, base.norm, init=base.init),
        search=search,
        seeds=seeds,
    )
