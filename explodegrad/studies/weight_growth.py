"""Chapter 4: why SGD's relative steps can end up smallest in the first layer of an exploding network.

Batch normalization makes a layer's output blind to the scale of its weights, so the gradient
of its weights is orthogonal to them and shrinks as they grow. A strongly exploding network's
first SGD update gives its first layer a huge relative step; that step inflates the layer's
weight norm, and from then on the same layer takes tiny relative steps.
:func:`sgd_weight_growth` follows the first layer and layer k = 2 (the last hidden layer) over
the first steps of batch-normalized ReLU networks at two depths: the weight norms and the ratio
of the two relative steps at every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explodegrad.core.checks import check_int, check_positive
from explodegrad.core.config import NetConfig
from explodegrad.core.data import Dataset
from explodegrad.core.nets import build_from_config
from explodegrad.core.scales import PAPER, QUICK, Scale
from explodegrad.core.seeds import median_range, resolve_seeds
from explodegrad.studies.common import StudyResult, resolve_data, resolve_scale
from explodegrad.training.loop import TrainSettings, train

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = (
    "04/sgd-first-step-follows-the-gsc",
    "04/deep-explosion-inflates-first-layer",
    "04/inflated-layer-takes-small-steps",
)

#: SGD's learning rate here: the optimizer study's default for SGD (momentum 0.9).
SGD_LR = 0.01
#: Steps followed: enough for the first layer's norm to settle at depth 50.
DEFAULT_STEPS = 60
#: The quantities :meth:`WeightGrowth.values` reads per seed.
QUANTITIES = ("first_step_ratio", "last_step_ratio", "first_layer_growth", "layer_2_growth")


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class WeightGrowth(StudyResult):
    """The first SGD steps of batch-normalized ReLU networks, per depth and seed.

    Attributes:
        depths: the network depths.
        seeds: the seeds (each seeds the weights and the minibatch order).
        steps: the steps 0 .. n, shared by every run.
        step_ratio: ``[depth, seed, step]``: the first layer's relative step over layer
            k = 2's (NaN at step 0), each ``||delta theta_k|| / ||theta_k||`` over the unit's
            parameters (weights, bias, batch norm's scale and shift), as the training history
            and the optimizer study record it; the weights dominate both norms.
        first_layer_norm: ``[depth, seed, step]``: ``||W_L||``, the first layer's weight norm
            after that step (step 0: at initialization).
        layer_2_norm: ``[depth, seed, step]``: ``||W_2||``, the same for layer k = 2.
        lr: SGD's learning rate (momentum 0.9).
        width: neurons per hidden layer.
        data_name: the data set trained on.
    """

    depths: tuple[int, ...]
    seeds: tuple[int, ...]
    steps: np.ndarray
    step_ratio: np.ndarray
    first_layer_norm: np.ndarray
    layer_2_norm: np.ndarray
    lr: float
    width: int
    data_name: str

    def values(self, depth: int, quantity: str) -> np.ndarray:
        """One number per seed at ``depth``: ``first_step_ratio`` (the ratio of relative steps
        at step 1), ``last_step_ratio`` (at the last step), ``first_layer_growth`` and
        ``layer_2_growth`` (weight norm at the last step over at initialization)."""
        if depth not in self.depths:
            raise ValueError(f"depth={depth!r} is not allowed: this study has depths {list(self.depths)}")
        if quantity not in QUANTITIES:
            raise ValueError(f"quantity={quantity!r} is not allowed: use one of {', '.join(QUANTITIES)}")
        index = self.depths.index(depth)
        if quantity == "first_step_ratio":
            return self.step_ratio[index, :, 1]
        if quantity == "last_step_ratio":
            return self.step_ratio[index, :, -1]
        norms = self.first_layer_norm if quantity == "first_layer_growth" else self.layer_2_norm
        return norms[index, :, -1] / norms[index, :, 0]

    def summary(self) -> str:
        """Per depth, median [min, max] over the seeds of the four quantities."""
        lines = [
            f"SGD (lr {self.lr:g}, momentum 0.9), batch-normalized ReLU, width {self.width}, "
            f"{self.data_name}; {int(self.steps[-1])} steps; median [min, max] over {len(self.seeds)} seeds"
        ]
        for depth in self.depths:
            parts = [
                f"{name.replace('_', ' ')} {median_range(self.values(depth, name))}" for name in QUANTITIES
            ]
            lines.append(f"depth {depth}: " + "; ".join(parts))
        return "\n".join(lines)


def growth_depths(scale: Scale) -> tuple[int, int]:
    """The course's two depths, 20 and 50, at the quick and paper scales; a small test scale's
    depth and twice it."""
    if scale.name in (QUICK.name, PAPER.name):
        return QUICK.depth, PAPER.depth
    return scale.depth, 2 * scale.depth


def sgd_weight_growth(
    depths: Sequence[int] | None = None,
    *,
    scale: Scale | None = None,
    device: Any = None,
    data: Dataset | str | None = None,
    seeds: int | Sequence[int] | None = None,
    width: int | None = None,
    steps: int = DEFAULT_STEPS,
    lr: float = SGD_LR,
    dtype: torch.dtype = torch.float64,
) -> WeightGrowth:
    """Follow the first layer and layer k = 2 of batch-normalized ReLU networks over SGD's first steps.

    Args:
        depths: network depths (default :func:`growth_depths` of the scale: 20 and 50).
        scale: sizes (default :data:`~explodegrad.core.scales.QUICK`): width, batch size, data.
        device: where to train (as :func:`~explodegrad.studies.common.resolve_data` takes it).
        data: a Dataset, a data set name, or None for the scale's data.
        seeds: a count or the seeds (default: the scale's ``num_seeds``).
        width: neurons per hidden layer (default: the scale's).
        steps: SGD steps, each recorded.
        lr: SGD's learning rate (momentum 0.9, as in the optimizer study).
        dtype: the precision (float64: the norms then differ between CPUs only in the last
            digits).
    """
    scale = resolve_scale(scale)
    chosen_depths = tuple(
        check_int("depths", depth, 2) for depth in (growth_depths(scale) if depths is None else depths)
    )
    if not chosen_depths:
        raise ValueError("depths=() is not allowed: give at least one depth")
    width = check_int("width", scale.width if width is None else width, 1)
    steps = check_int("steps", steps, 1)
    lr = check_positive("lr", lr)
    chosen_seeds = tuple(resolve_seeds(seeds, scale.num_seeds))
    dataset = resolve_data(data, scale=scale, seed=chosen_seeds[0], device=device, dtype=dtype)
    settings = TrainSettings(
        optimizer="sgd",
        lr=lr,
        steps=steps,
        batch_size=min(scale.batch_size, len(dataset.x_train)),
        record_every=1,
        eval_size=256,
    )
    runs = [
        [
            _follow(
                NetConfig(
                    depth=depth,
                    width=width,
                    activation="relu",
                    norm="batch",
                    init="he",
                    in_features=dataset.in_features,
                    out_features=dataset.num_classes,
                    seed=seed,
                ),
                dataset,
                settings.with_(seed=seed),
            )
            for seed in chosen_seeds
        ]
        for depth in chosen_depths
    ]
    ratio, first_norm, second_norm = (np.array([[run[i] for run in row] for row in runs]) for i in range(3))
    return WeightGrowth(
        depths=chosen_depths,
        seeds=chosen_seeds,
        steps=np.arange(steps + 1),
        step_ratio=ratio,
        first_layer_norm=first_norm,
        layer_2_norm=second_norm,
        lr=lr,
        width=width,
        data_name=dataset.name,
    )


def _follow(config: NetConfig, data: Dataset, settings: TrainSettings) -> tuple[np.ndarray, ...]:
    """One run: the ratio of the first layer's relative step over layer k = 2's at every step
    (NaN at step 0), and the two layers' weight norms at every step (step 0: at initialization)."""
    net = build_from_config(config, device=data.x_train.device, dtype=data.x_train.dtype)
    first, second = net.linear_layers()[0], net.linear_layers()[-2]
    ratio = np.full(settings.steps + 1, np.nan)
    norms = np.full((2, settings.steps + 1), np.nan)

    def record(step: int, _history: Any = None) -> None:
        norms[:, step] = float(first.weight.detach().norm()), float(second.weight.detach().norm())

    record(0)
    history = train(net, data, settings, progress=False, callback=record)
    sizes = np.asarray(history.update_ratio, dtype=float)
    moved = history.steps > 0
    ratio[history.steps[moved]] = sizes[moved, -1] / sizes[moved, 1]
    return ratio, norms[0], norms[1]
