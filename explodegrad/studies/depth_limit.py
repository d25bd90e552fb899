"""The impact of exploding gradients on training (chapter 3).

Three studies, each returning numbers only (tables and arrays; :mod:`explodegrad.plots`
draws them):

* :func:`optimizer_study`: train one architecture with SGD, Adam and RMSprop and measure its
  GSC every few steps. Adam and RMSprop rescale each parameter's step, but the GSC does not
  depend on the scale of the weights, so adaptive optimizers do not remove the explosion.
* :func:`depth_study`: training error against depth for an exploding and a non-exploding
  architecture, each depth with its own best learning rate, all runs in one batched sweep
  (:func:`explodegrad.training.sweep.lr_search`), as the paper picks a rate per architecture.
* :func:`relative_update_sizes`: the relative size of the updates per layer,
  ``||delta theta_k|| / ||theta_k||``, from a training history. A relative change of layer
  k's output moves the loss about GSC(k, 0) times as much, relatively; so when the GSC
  explodes, the layers near the input take steps whose effect on the loss is magnified.

Layers are numbered from the output as in the paper (k = 1 the readout, k = L the first
layer). Sizes come from a :class:`~explodegrad.core.scales.Scale`; divergence is a result, never an
error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from explodegrad.core.checks import check_choice, check_int, check_positive
from explodegrad.core.config import INITS, NORMS
from explodegrad.core.data import Dataset
from explodegrad.core.nets import build_from_config
from explodegrad.core.scales import Scale
from explodegrad.core.seeds import chosen_rates, resolve_seeds, seed_table, seed_values
from explodegrad.measures.gsc import gsc_profile
from explodegrad.studies.common import (
    DEFAULT_INITS,
    StudyResult,
    architecture_label,
    config_for,
    default_dtype,
    resolve_data,
    resolve_device,
    resolve_scale,
)
from explodegrad.training.loop import TrainSettings
from explodegrad.training.sweep import LRSearchResult, lr_search

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = (
    "03/shallow-all-train",
    "03/exploding-train-worse-deep",
)

#: Learning rates a depth study searches by default (SGD with momentum 0.9): two, so that the
#: quick scale stays within a CPU's time budget; the best of the two is kept per depth.
DEFAULT_SEARCH_LRS = (0.01, 0.1)


#: The default architectures of :func:`depth_study`: batch-normalized ReLU and layer-normalized
#: tanh explode (rates about 1.21 and 1.09 per layer at initialization), tanh without
#: normalization does not (rate about 1).
DEFAULT_ARCHITECTURES = (("relu", "batch"), ("tanh", "layer"), ("tanh", "none"))


@dataclass(frozen=True, eq=False)  # holds DataFrames: compare fields, not results
class DepthStudy(StudyResult):
    """Training error against depth, each (architecture, depth, seed) at its best learning rate.

    Attributes:
        table: one row per (architecture, depth, seed): architecture (e.g. ``relu/batch``; the
            initializer is appended when it is not the activation's default), activation,
            norm, init, depth, seed, label, gsc_init (GSC(L, 0) of the initial network on a
            measurement batch), rate_init (its fitted r), best_lr (NaN when every rate
            diverged), final_train_error, final_test_error.
        search: the underlying :class:`~explodegrad.training.sweep.LRSearchResult` (every rate's run).
        steps: updates per run.
        optimizer: the optimizer used.
        lrs: the learning rates searched.
        seeds: the seeds (each seeds the weights; all seeds train in the same sweep).
    """

    table: pd.DataFrame
    search: LRSearchResult
    steps: int
    optimizer: str
    lrs: tuple[float, ...] = ()
    seeds: tuple[int, ...] = (0,)

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
        return (
            f"{self.optimizer}, {self.steps} steps, best of the rates {{{rates}}} per run; median "
            f"[min, max] over {len(self.seeds)} seeds\n{table.to_string(index=False)}"
        )


def default_depths(scale: Scale) -> tuple[int, ...]:
    """The depths a depth study trains by default: 2, half the scale's depth, it, and twice it."""
    depth = resolve_scale(scale).depth
    return tuple(sorted({2, max(2, depth // 2), max(2, depth), 2 * depth}))


def _check_architectures(architectures: Any) -> list[tuple[str, str, str]]:
    """(activation, norm, init) triples; a missing init is the activation's default."""
    try:
        items = [tuple(item) for item in architectures]
    except TypeError:
        raise TypeError(
            f"architectures={architectures!r} is not allowed: give a sequence of (activation, norm) "
            "or (activation, norm, init) tuples, e.g. (('relu', 'batch'), ('tanh', 'none'))"
        ) from None
    if not items or any(len(item) not in (2, 3) for item in items):
        raise ValueError(
            f"architectures={architectures!r} is not allowed: give a sequence of "
            "(activation, norm) or (activation, norm, init) tuples, e.g. "
            "(('relu', 'batch'), ('tanh', 'none'))"
        )
    triples = []
    for item in items:
        activation = check_choice("architectures", item[0], tuple(DEFAULT_INITS))
        norm = check_choice("architectures", item[1], NORMS)
        init = check_choice("architectures", item[2], INITS) if len(item) == 3 else DEFAULT_INITS[activation]
        triples.append((activation, norm, init))
    return triples


def depth_study(
    architectures: Sequence[tuple[str, str]] = DEFAULT_ARCHITECTURES,
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
    dtype: torch.dtype | None = None,
    progress: bool = False,
) -> DepthStudy:
    """Train each architecture at each depth with each learning rate and seed (one batched sweep).

    Args:
        architectures: (activation, norm) pairs, each with its activation's default
            initializer (:data:`explodegrad.studies.common.DEFAULT_INITS`), or (activation, norm,
            init) triples.
        depths: the depths (default :func:`default_depths` of the scale).
        lrs: learning rates searched for every (architecture, depth).
        scale: sizes (default :data:`explodegrad.core.scales.QUICK`).
        device: where to train (:func:`~explodegrad.studies.common.resolve_device`; default the
            data's, else the setup's choice).
        data: a Dataset, a data set name, or None for the scale's data.
        seeds: a count or the seeds themselves (default: the scale's ``num_seeds``); each seed
            draws the weights, and every seed picks its own best rate. The minibatch order is
            the first seed's for every run, so that all runs share one sweep.
        width: neurons per hidden layer (default: the scale's).
        steps: updates per run (default: the scale's ``train_steps``).
        optimizer: the optimizer of every run.
        momentum: SGD's momentum.
        dtype: float64 or float32; default float64 on a CPU, float32 on a GPU (see
            :func:`optimizer_study`).
        progress: show a progress bar.
    """
    scale = resolve_scale(scale)
    seeds = resolve_seeds(seeds, scale.num_seeds)
    device = resolve_device(device, data)
    triples = _check_architectures(architectures)
    depths = default_depths(scale) if depths is None else depths
    if isinstance(depths, (str, bytes)) or not list(depths):
        raise ValueError(f"depths={depths!r} is not allowed: give a sequence of integers >= 1")
    depths = [check_int("depths", d, 1) for d in depths]
    width = check_int("width", scale.width if width is None else width, 1)
    steps = check_int("steps", scale.train_steps if steps is None else steps, 1)
    lrs = tuple(check_positive("lrs", lr) for lr in lrs)
    dtype = default_dtype(device) if dtype is None else dtype
    dataset = resolve_data(data, scale=scale, seed=seeds[0], device=device, dtype=dtype)
    configs = [
        config_for(activation, norm, depth, width, dataset, seed, init)
        for activation, norm, init in triples
        for depth in depths
        for seed in seeds
    ]
    batch_size = min(scale.batch_size, int(dataset.x_train.shape[0]))
    settings = TrainSettings(
        optimizer=optimizer,
        momentum=momentum,
        steps=steps,
        batch_size=batch_size,
        record_every=steps,
        eval_size=1024,
        seed=seeds[0],
    )
    search = lr_search(configs, dataset, list(lrs), settings, device=dataset.device, progress=progress)
    inputs, targets = dataset.batch(min(256, len(dataset.x_train)), seed=seeds[0])
    rows = []
    for arch, config in enumerate(configs):
        net = build_from_config(config, dtype=torch.float64)
        profile = gsc_profile(net, inputs.cpu().double(), targets.cpu(), seed=config.seed)
        best = search.best.iloc[arch]
        default_init = config.init == DEFAULT_INITS[config.activation]
        rows.append(
            {
                "architecture": architecture_label(
                    config.activation, config.norm, init=None if default_init else config.init
                ),
                "activation": config.activation,
                "norm": config.norm,
                "init": config.init,
                "depth": config.depth,
                "seed": config.seed,
                "label": config.label(),
                "gsc_init": profile.first_layer_gsc,
                "rate_init": profile.fit.rate,
                "best_lr": float(best["best_lr"]),
                "final_train_error": float(best["final_train_error"]),
                "final_test_error": float(best["final_test_error"]),
            }
        )
    return DepthStudy(
        table=pd.DataFrame(rows),
        search=search,
        steps=steps,
        optimizer=settings.optimizer,
        lrs=lrs,
        seeds=seeds,
    )
