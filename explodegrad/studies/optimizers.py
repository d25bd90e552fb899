"""Chapter 4: optimizers and the GSC. SGD, Adam and RMSprop train the same network over several
seeds; the GSC and the relative update size per layer are recorded (:func:`optimizer_study`).

At the evidence scale (:func:`optimizer_evidence`, stored with the package) each optimizer first
gets its own learning rate (:func:`tune_rates`: a log-spaced grid, chosen by the median final
training error over the seeds), then trains the depth-50 network of an exploding and of a calm
architecture on CIFAR-10.
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

from explodegrad.core.checks import check_bool, check_choice, check_int, check_positive
from explodegrad.core.config import NetConfig
from explodegrad.core.data import Dataset
from explodegrad.core.device import default_dtype, resolve_device
from explodegrad.core.jsonable import frame_from_records
from explodegrad.core.scales import EVIDENCE, Scale
from explodegrad.core.seeds import resolve_seeds, seed_table, seed_values
from explodegrad.studies.common import Architecture, StudyResult, config_for, resolve_data, resolve_scale
from explodegrad.training.loop import TrainHistory, TrainSettings, train_per_seed
from explodegrad.training.optimizers import OPTIMIZERS
from explodegrad.training.sweep import lr_search

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = (
    "04/adaptive-optimizers-still-explode",
    "04/sgd-lowers-but-keeps",
    "04/adaptive-equal-steps",
    "08/adam-keeps-the-explosion",
    "04/optimizers-calm-stays-calm",
)

#: Learning rates used when none are given: the usual starting points of each optimizer.
DEFAULT_LRS = {"sgd": 0.01, "adam": 1e-3, "rmsprop": 1e-3}

#: The version of this study's computation, recorded in stored evidence (see
#: :mod:`explodegrad.studies.stored`); bump it when a change alters what the study computes.
STUDY_VERSION = 2  # 2: the tuned grids widen at an edge

#: The stored evidence's architectures, by the name in the file name: batch-normalized ReLU
#: explodes at initialization (r about 1.21 per layer), ReLU without normalization does not
#: (r about 1.01).
EVIDENCE_ARCHITECTURES = {
    "relu-batch": Architecture("relu", "batch"),
    "relu-none": Architecture("relu", "none"),
}
#: Each optimizer's log-spaced grid at the evidence scale (SGD with momentum 0.9).
EVIDENCE_GRIDS = {
    "sgd": (1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
    "adam": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2),
    "rmsprop": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2),
}
#: How many times a grid may grow by one rate at the edge where its chosen rate sits.
EVIDENCE_WIDEN = 2
#: GSC measurements per run at the evidence scale (step 0 included: every 40 of 200 steps).
EVIDENCE_MEASURE_EVERY = 40


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
        histories: (optimizer, seed) -> its :class:`~explodegrad.training.loop.TrainHistory`
            (empty for a study read back from stored evidence).
        seeds: the seeds (each seeds the weights, the minibatch order and the probes).
        layers: one row per (optimizer, seed, measurement, layer k): optimizer, seed, step,
            layer, gsc (GSC(k, 0); NaN at and below the reference layer) and update_size (that
            record's ``||delta theta_k|| / ||theta_k||``; NaN at step 0): the per-layer view
            over training.
        tuning: the learning-rate search when the rates were tuned (:func:`tune_rates`), else
            None: one row per (optimizer, lr, seed) with final_train_error and diverged, and
            chosen / at_edge flags.
        data_name: the data set trained on.
    """

    label: str
    gsc: pd.DataFrame
    updates: pd.DataFrame
    runs: pd.DataFrame
    histories: dict[tuple[str, int], TrainHistory] = field(metadata={"serialize": False})
    seeds: tuple[int, ...]
    layers: pd.DataFrame | None = None
    tuning: pd.DataFrame | None = None
    data_name: str = ""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> OptimizerStudy:
        """The study back from :meth:`to_dict` (without the histories)."""

        def frame(key: str) -> pd.DataFrame | None:
            return None if values.get(key) is None else frame_from_records(values[key])

        return cls(
            label=str(values["label"]),
            gsc=frame("gsc"),
            updates=frame("updates"),
            runs=frame("runs"),
            histories={},
            seeds=tuple(int(seed) for seed in values["seeds"]),
            layers=frame("layers"),
            tuning=frame("tuning"),
            data_name=str(values.get("data_name", "")),
        )

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
        (k = L), their ratio (first layer over k = 2, three significant digits: at depth 50 it is
        a few hundredths), and GSC(L, 0) at the end, each as the median [min, max] over seeds."""
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
            {
                "near": "k = 2",
                "first": f"k = {last}",
                "ratio": f"ratio k = {last} / k = 2",
                "end": "GSC(L, 0) at end",
            },
            {"ratio": ".3g"},
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
    stack_seeds: bool = False,
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
        stack_seeds: train each optimizer's seeds together (:func:`~explodegrad.training.loop.train_several`:
            one batched loop per optimizer instead of one per run, what a GPU needs at the
            paper scale). Every seed then trains on the first seed's minibatches and is
            measured on its batch (its weights stay its own), so the numbers differ from the
            default.
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
    stack_seeds = check_bool("stack_seeds", stack_seeds)
    batch_size = min(scale.batch_size, int(dataset.x_train.shape[0]))
    base = TrainSettings(
        steps=steps,
        batch_size=batch_size,
        record_every=every,
        measure_every=every,
        measure_size=min(256, len(dataset.x_train)),
        eval_size=1024,
    )
    gsc_rows, update_rows, run_rows, layer_rows, histories = [], [], [], [], {}
    for name in optimizers:
        trained = train_per_seed(
            [config.with_(seed=seed) for seed in seeds],
            seeds,
            dataset,
            base.with_(optimizer=name, lr=rates[name]),
            together=stack_seeds,
            progress=progress,
        )
        histories.update({(name, seed): history for seed, history in zip(seeds, trained)})
    for seed in seeds:
        for name in optimizers:
            history = histories[(name, seed)]
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
            record = {int(step): row for row, step in enumerate(history.steps.tolist())}
            for measurement in history.measurements:
                profile = measurement.gsc
                row = record.get(measurement.step)
                for k in history.layers:
                    layer_rows.append(
                        {
                            "optimizer": name,
                            "seed": seed,
                            "step": measurement.step,
                            "layer": int(k),
                            "gsc": profile.gsc_at(int(k)) if k > profile.reference else math.nan,
                            "update_size": math.nan
                            if row is None or measurement.step == 0
                            else float(history.update_ratio[row, k - 1]),
                        }
                    )
            sizes = relative_update_sizes(history)
            start, end = history.measurements[0].gsc, history.measurements[-1].gsc
            if history.diverged:  # its last measurement is of a network before it diverged
                end = None
            for k in history.layers:
                update_rows.append(
                    {
                        "optimizer": name,
                        "seed": seed,
                        "layer": int(k),
                        "update_size": float(sizes[k - 1]),
                        "gsc_start": start.gsc_at(int(k)) if k > start.reference else math.nan,
                        "gsc_end": end.gsc_at(int(k)) if end is not None and k > end.reference else math.nan,
                    }
                )
            near = float(sizes[1]) if len(sizes) > 1 else math.nan
            run_rows.append(
                {
                    "optimizer": name,
                    "seed": seed,
                    "lr": rates[name],
                    "gsc_start": start.first_layer_gsc,
                    "gsc_end": end.first_layer_gsc if end is not None else math.nan,
                    "rate_start": start.fit.rate,
                    "rate_end": end.fit.rate if end is not None else math.nan,
                    "r_squared_start": start.fit.r_squared,
                    "r_squared_end": end.fit.r_squared if end is not None else math.nan,
                    "final_train_error": history.final_train_error if not history.diverged else math.nan,
                    "diverged": bool(history.diverged),
                    "update_ratio": float(sizes[-1]) / near
                    if near > 0 and not history.diverged
                    else math.nan,
                }
            )
    return OptimizerStudy(
        label=config.label(),
        gsc=pd.DataFrame(gsc_rows),
        updates=pd.DataFrame(update_rows),
        runs=pd.DataFrame(run_rows),
        histories=histories,
        seeds=seeds,
        layers=pd.DataFrame(layer_rows),
        data_name=dataset.name,
    )


def tune_rates(
    config: NetConfig,
    data: Dataset,
    grids: dict[str, Sequence[float]],
    *,
    seeds: Sequence[int],
    steps: int,
    batch_size: int,
    eval_size: int = 1024,
    widen: int = 0,
    progress: bool = False,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Each optimizer's own learning rate: the rate with the lowest median final training error
    over the seeds (diverged runs count as error 1; ties go to the smaller rate).

    One batched sweep per optimizer over its grid (every seed's weights, the first seed's
    minibatch order). When the chosen rate sits at an edge of a log-spaced grid, the grid grows
    by one rate beyond that edge and the choice is made again, up to ``widen`` times
    (:func:`explodegrad.studies.depth_limit.widened_rate`).

    Returns:
        optimizer -> chosen rate, and one row per (optimizer, lr, seed): final_train_error,
        diverged, chosen, at_edge (the chosen rate is still the grid's smallest or largest).
    """
    from explodegrad.studies.depth_limit import widened_rate

    if not isinstance(grids, dict) or not grids:
        raise TypeError(f"grids={grids!r} is not allowed: give a dict optimizer -> learning rates")
    seeds = tuple(seeds)
    widen = check_int("widen", widen, 0)
    chosen, frames = {}, []
    for name, grid in grids.items():
        name = check_choice("grids", name, OPTIMIZERS)
        grid = sorted(check_positive(f"grids[{name!r}]", rate) for rate in grid)
        if not grid:
            raise ValueError(f"grids[{name!r}]=() is not allowed: give at least one learning rate")
        settings = TrainSettings(
            optimizer=name,
            steps=steps,
            batch_size=batch_size,
            record_every=steps,
            eval_size=eval_size,
            seed=seeds[0],
        )
        configs = [config.with_(seed=seed) for seed in seeds]
        tables, rates = [], list(grid)
        for round_ in range(widen + 1):
            search = lr_search(configs, data, rates, settings, device=data.device, progress=progress)
            tables.append(search.table[["arch", "lr", "final_train_error", "diverged"]])
            table = pd.concat(tables, ignore_index=True)
            errors = table["final_train_error"].where(~table["diverged"].astype(bool), 1.0).fillna(1.0)
            median = errors.groupby(table["lr"]).median()
            best = float(median.index[int(np.argmin(median.to_numpy()))])  # ties: the smaller rate
            rates = [rate for rate in widened_rate(grid, [best]) if rate not in grid]
            if not rates or round_ == widen:
                break
            grid = sorted(grid + rates)
        table = table.copy()
        table.insert(0, "optimizer", name)
        table["seed"] = [seeds[int(i)] for i in table["arch"]]
        chosen[name] = best
        table["chosen"] = np.isclose(table["lr"], best)
        table["at_edge"] = bool(len(grid) > 1 and best in (grid[0], grid[-1]))
        frames.append(table.drop(columns="arch").sort_values(["lr", "seed"], ignore_index=True))
    return chosen, pd.concat(frames, ignore_index=True)


def optimizer_evidence(
    *,
    architecture: str = "relu-batch",
    data: Dataset | str = "cifar10",
    device: Any = None,
    seeds: int | Sequence[int] | None = None,
    grids: dict[str, Sequence[float]] | None = None,
    progress: bool = False,
) -> OptimizerStudy:
    """The optimizer study of the stored evidence: depth 50, width 100, 200 steps, float32.

    Every optimizer of :data:`EVIDENCE_GRIDS` gets its own rate (:func:`tune_rates`, the grid
    widened up to :data:`EVIDENCE_WIDEN` times at an edge), then
    trains ``architecture`` (a key of :data:`EVIDENCE_ARCHITECTURES`) from each seed's weights
    with :func:`optimizer_study`, measuring the GSC and the per-layer update sizes every
    :data:`EVIDENCE_MEASURE_EVERY` steps. ``data`` is ``"cifar10"`` (the evidence scale's 500
    training examples), ``"digits"`` or a Dataset.
    """
    key = check_choice("architecture", architecture, tuple(EVIDENCE_ARCHITECTURES))
    scale = EVIDENCE.with_(dataset="digits") if isinstance(data, str) and data == "digits" else EVIDENCE
    seeds = resolve_seeds(seeds, scale.num_seeds)
    device = resolve_device(device, data if isinstance(data, Dataset) else None)
    dataset = resolve_data(
        None if isinstance(data, str) else data,
        scale=scale,
        seed=seeds[0],
        device=device,
        dtype=torch.float32,
    )
    config = EVIDENCE_ARCHITECTURES[key].config(
        scale.depth, scale.width, dataset.in_features, dataset.num_classes, seeds[0]
    )
    batch_size = min(scale.batch_size, int(dataset.x_train.shape[0]))
    rates, tuning = tune_rates(
        config,
        dataset,
        dict(EVIDENCE_GRIDS if grids is None else grids),
        seeds=seeds,
        steps=scale.train_steps,
        batch_size=batch_size,
        widen=EVIDENCE_WIDEN,
        progress=progress,
    )
    study = optimizer_study(
        config,
        tuple(rates),
        rates,
        scale=scale,
        data=dataset,
        seeds=seeds,
        measure_every=EVIDENCE_MEASURE_EVERY,
        dtype=torch.float32,
        progress=progress,
    )
    return dataclasses.replace(study, tuning=tuning)
