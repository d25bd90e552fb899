"""Chapter 3: optimizers and the GSC. SGD, Adam and RMSprop train the same network over several
seeds; the GSC and the relative update size per layer are recorded (:func:`optimizer_study`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from explodegrad.core.checks import check_choice, check_int, check_positive
from explodegrad.core.config import NetConfig
from explodegrad.core.data import Dataset
from explodegrad.core.device import default_dtype, resolve_device
from explodegrad.core.scales import Scale
from explodegrad.core.seeds import resolve_seeds, seed_table, seed_values
from explodegrad.studies.common import StudyResult, config_for, resolve_data, resolve_scale
from explodegrad.training.loop import TrainHistory, TrainSettings, train
from explodegrad.training.optimizers import OPTIMIZERS

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = (
    "03/adaptive-optimizers-still-explode",
    "03/sgd-lowers-but-keeps",
    "03/adaptive-equal-steps",
    "07/adam-keeps-the-explosion",
)

#: Learning rates used when none are given: the usual starting points of each optimizer.
DEFAULT_LRS = {"sgd": 0.01, "adam": 1e-3, "rmsprop": 1e-3}


def relative_update_sizes(history: TrainHistory, statistic: str = "median") -> np.ndarray:
    """Per layer k = 1 ... L, the typical ``||delta theta_k|| / ||theta_k||`` of a run's updates.

    Args:
        history: a run from :func:`explodegrad.training.loop.train` (its recorded updates are used;
            step 0, the initial network, has none).
        statistic: ``"median"`` or ``"mean"`` over the recorded updates.

    Returns:
        ``sizes[k - 1]`` for layer k; NaN for every layer when no update was recorded.
    """
    if not isinstance(history, TrainHistory):
        raise TypeError(
            f"history: expected a TrainHistory from explodegrad.training.loop, got {type(history).__name__}"
        )
    statistic = check_choice("statistic", statistic, ("median", "mean"))
    ratios = np.asarray(history.update_ratio, dtype=float)
    rows = ratios[(history.steps > 0) & np.isfinite(ratios).all(axis=1)]
    if rows.shape[0] == 0:
        return np.full(ratios.shape[1], np.nan)
    return np.median(rows, axis=0) if statistic == "median" else rows.mean(axis=0)


@dataclass(frozen=True, eq=False)  # holds DataFrames: compare fields, not results
class OptimizerStudy(StudyResult):
    """How the GSC of one architecture evolves under several optimizers, over several seeds.

    Attributes:
        label: the architecture, e.g. ``relu/batch/he d20 w64``.
        gsc: one row per (optimizer, seed, measurement): optimizer, seed, lr, step,
            gsc_first_layer (GSC(L, 0)), gsc_input (GSC(L + 1, 0)), rate (fitted r),
            train_error (the record of that step, NaN where none was taken).
        updates: one row per (optimizer, seed, layer k): optimizer, seed, layer, update_size
            (median ``||delta theta_k|| / ||theta_k||`` over the recorded updates), gsc_start
            and gsc_end (GSC(k, 0) at the first and the last measurement).
        runs: one row per (optimizer, seed): optimizer, seed, lr, gsc_start, gsc_end,
            rate_start, rate_end, r_squared_start, r_squared_end (of the fitted rates),
            final_train_error, diverged, update_ratio (the first layer's relative update size
            over that of layer k = 2).
        histories: (optimizer, seed) -> its :class:`~explodegrad.training.loop.TrainHistory`.
        seeds: the seeds (each seeds the weights, the minibatch order and the probes).
    """

    label: str
    gsc: pd.DataFrame
    updates: pd.DataFrame
    runs: pd.DataFrame
    histories: dict[tuple[str, int], TrainHistory]
    seeds: tuple[int, ...]

    @property
    def optimizers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.runs["optimizer"]))

    def values(self, optimizer: str, column: str) -> np.ndarray:
        """One value of ``runs[column]`` per seed for ``optimizer`` (a ValueError names the known ones)."""
        return seed_values(self.runs, column, optimizer=optimizer)

    def summary(self) -> str:
        """Per optimizer the GSC and rate at the start and the end (with the R^2 of the final fit),
        and the training error, each as the median [min, max] over the seeds."""
        table = seed_table(
            self.runs,
            ["optimizer", "lr"],
            {
                "gsc_start": "GSC start",
                "gsc_end": "GSC end",
                "rate_start": "r start",
                "rate_end": "r end",
                "r_squared_end": "R^2 end",
                "final_train_error": "train error",
            },
            {"rate_start": ".3f", "rate_end": ".3f", "r_squared_end": ".2f", "final_train_error": ".3f"},
        )
        diverged = int(self.runs["diverged"].sum())
        note = f"\n{diverged} run(s) diverged (their numbers are left out)" if diverged else ""
        return (
            f"{self.label}: GSC(L, 0) from the first layer to the loss, median [min, max] over "
            f"{len(self.seeds)} seeds\n{table.to_string(index=False)}{note}"
        )

    def update_summary(self) -> str:
        """Per optimizer the relative update size near the output (k = 2) and at the first layer
        (k = L), their ratio, and GSC(L, 0) at the end, each as the median [min, max] over seeds."""
        last = int(self.updates["layer"].max())
        rows = []
        for (optimizer, seed), group in self.updates.groupby(["optimizer", "seed"], sort=False):
            sizes = group.set_index("layer")
            rows.append(
                {
                    "optimizer": optimizer,
                    "seed": seed,
                    "near": float(sizes["update_size"].get(2, math.nan)),
                    "first": float(sizes["update_size"][last]),
                    "end": float(sizes["gsc_end"][last]),
                }
            )
        frame = pd.DataFrame(rows)
        frame["ratio"] = frame["first"] / frame["near"]
        table = seed_table(
            frame,
            ["optimizer"],
            {"near": "k = 2", "first": f"k = {last}", "ratio": "ratio", "end": "GSC(L, 0) at end"},
            {"ratio": ".2f"},
        )
        return (
            "relative update size ||delta theta_k|| / ||theta_k|| (median over the run), "
            f"median [min, max] over {len(self.seeds)} seeds\n{table.to_string(index=False)}"
        )


def optimizer_study(
    config: NetConfig | None = None,
    optimizers: Sequence[str] = ("sgd", "adam", "rmsprop"),
    lrs: dict[str, float] | None = None,
    *,
    scale: Scale | None = None,
    device: Any = None,
    data: Dataset | str | None = None,
    seeds: int | Sequence[int] | None = None,
    steps: int | None = None,
    measure_every: int | None = None,
    dtype: torch.dtype | None = None,
    progress: bool = False,
) -> OptimizerStudy:
    """Train one architecture with each optimizer, over several seeds, measuring its GSC during training.

    Args:
        config: the architecture (default: a batch-normalized ReLU network of the scale's
            depth and width, He init, which explodes at initialization); its input and
            output sizes are set from the data, its weight seed from each seed.
        optimizers: names from :data:`explodegrad.training.optimizers.OPTIMIZERS`.
        lrs: optimizer -> learning rate (missing ones from :data:`DEFAULT_LRS`).
        scale: sizes (default :data:`explodegrad.core.scales.QUICK`).
        device: where to train (:func:`~explodegrad.core.device.resolve_device`: a name, a
            torch device, the setup's DeviceChoice; default the data's, else the setup's choice).
        data: a Dataset, a data set name, or None for the scale's data.
        seeds: a count or the seeds themselves (default: the scale's ``num_seeds``). Each seed
            draws the weights and the minibatch order; within a seed every optimizer starts
            from the same weights and sees the same minibatches.
        steps: updates per run (default: the scale's ``train_steps``).
        measure_every: updates between GSC measurements (default: a tenth of the run).
        dtype: float64 or float32; default :func:`~explodegrad.core.device.default_dtype`
            (float64 on a CPU, float32 on a GPU), given data included. Training is chaotic: the
            digits of one run change with the CPU's rounding, hence the seeds.
        progress: show progress bars.
    """
    scale = resolve_scale(scale)
    seeds = resolve_seeds(seeds, scale.num_seeds)
    device = resolve_device(device, data)
    if isinstance(optimizers, str):
        optimizers = (optimizers,)
    optimizers = tuple(check_choice("optimizers", name, OPTIMIZERS) for name in optimizers)
    if not optimizers:
        raise ValueError(f"optimizers=() is not allowed: give at least one of {OPTIMIZERS}")
    if lrs is not None and not isinstance(lrs, dict):
        raise TypeError(f"lrs={lrs!r} is not allowed: lrs must be a dict optimizer -> learning rate")
    rates = {
        name: check_positive(f"lrs[{name!r}]", (lrs or {}).get(name, DEFAULT_LRS[name]))
        for name in optimizers
    }
    steps = check_int("steps", scale.train_steps if steps is None else steps, 1)
    every = check_int("measure_every", max(1, steps // 10) if measure_every is None else measure_every, 1)
    dtype = default_dtype(device) if dtype is None else dtype
    dataset = resolve_data(data, scale=scale, seed=seeds[0], device=device, dtype=dtype)
    if config is None:
        config = config_for("relu", "batch", scale.depth, scale.width, dataset, seeds[0])
    if not isinstance(config, NetConfig):
        raise TypeError(f"config={config!r} is not allowed: config must be a NetConfig or None")
    config = config.with_(in_features=dataset.in_features, out_features=dataset.num_classes)
    batch_size = min(scale.batch_size, int(dataset.x_train.shape[0]))
    gsc_rows, update_rows, run_rows, histories = [], [], [], {}
    for seed in seeds:
        settings = TrainSettings(
            steps=steps,
            batch_size=batch_size,
            record_every=every,
            measure_every=every,
            measure_size=min(256, len(dataset.x_train)),
            eval_size=1024,
            seed=seed,
        )
        for name in optimizers:
            history = train(
                config.with_(seed=seed),
                dataset,
                settings.with_(optimizer=name, lr=rates[name]),
                progress=progress,
            )
            histories[(name, seed)] = history
            errors = dict(zip(history.steps.tolist(), history.train_error.tolist()))
            for measurement in history.measurements:
                profile = measurement.gsc
                gsc_rows.append(
                    {
                        "optimizer": name,
                        "seed": seed,
                        "lr": rates[name],
                        "step": measurement.step,
                        "gsc_first_layer": profile.first_layer_gsc,
                        "gsc_input": profile.input_gsc,
                        "rate": profile.fit.rate,
                        "train_error": errors.get(measurement.step, math.nan),
                    }
                )
            sizes = relative_update_sizes(history)
            start, end = history.measurements[0].gsc, history.measurements[-1].gsc
            for k in history.layers:
                update_rows.append(
                    {
                        "optimizer": name,
                        "seed": seed,
                        "layer": int(k),
                        "update_size": float(sizes[k - 1]),
                        "gsc_start": start.gsc_at(int(k)) if k > start.reference else math.nan,
                        "gsc_end": end.gsc_at(int(k)) if k > end.reference else math.nan,
                    }
                )
            near = float(sizes[1]) if len(sizes) > 1 else math.nan
            run_rows.append(
                {
                    "optimizer": name,
                    "seed": seed,
                    "lr": rates[name],
                    "gsc_start": start.first_layer_gsc,
                    "gsc_end": end.first_layer_gsc,
                    "rate_start": start.fit.rate,
                    "rate_end": end.fit.rate,
                    "r_squared_start": start.fit.r_squared,
                    "r_squared_end": end.fit.r_squared,
                    "final_train_error": history.final_train_error if not history.diverged else math.nan,
                    "diverged": bool(history.diverged),
                    "update_ratio": float(sizes[-1]) / near if near > 0 else math.nan,
                }
            )
    return OptimizerStudy(
        label=config.label(),
        gsc=pd.DataFrame(gsc_rows),
        updates=pd.DataFrame(update_rows),
        runs=pd.DataFrame(run_rows),
        histories=histories,
        seeds=seeds,
    )
