"""The impact of exploding gradients on training (chapter 3).

Three studies, each returning numbers only (tables and arrays; :mod:`explodegrad.plots`
draws them):

* :func:`optimizer_study`: train one architecture with SGD, Adam and RMSprop and measure its
  GSC every few steps. Adam and RMSprop rescale each parameter's step, but the GSC does not
  depend on the scale of the weights, so adaptive optimizers do not remove the explosion.
* :func:`depth_study`: training error against depth for an exploding and a non-exploding
  architecture, each depth with its own best learning rate, all runs in one batched sweep
  (:func:`explodegrad.sweep.lr_search`), as the paper picks a rate per architecture.
* :func:`relative_update_sizes`: the relative size of the updates per layer,
  ``||delta theta_k|| / ||theta_k||``, from a training history. A relative change of layer
  k's output moves the loss about GSC(k, 0) times as much, relatively; so when the GSC
  explodes, the layers near the input take steps whose effect on the loss is magnified.

Layers are numbered from the output as in the paper (k = 1 the readout, k = L the first
layer). Sizes come from a :class:`~explodegrad.scale.Scale`; divergence is a result, never an
error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from explodegrad._checks import check_choice, check_int, check_positive
from explodegrad.config import INITS, NORMS, NetConfig
from explodegrad.data import Dataset, load_dataset
from explodegrad.device import DeviceChoice, pick_device
from explodegrad.gsc import gsc_profile
from explodegrad.nets import build_from_config
from explodegrad.optim import OPTIMIZERS
from explodegrad.scale import QUICK, Scale, load_scale_data
from explodegrad.seeds import chosen_rates, resolve_seeds, seed_table
from explodegrad.survey import DEFAULT_INITS
from explodegrad.sweep import LRSearchResult, lr_search
from explodegrad.train import TrainHistory, TrainSettings, train

#: Learning rates used when none are given: the usual starting points of each optimizer.
DEFAULT_LRS = {"sgd": 0.01, "adam": 1e-3, "rmsprop": 1e-3}
#: Learning rates a depth study searches by default (SGD with momentum 0.9): two, so that the
#: quick scale stays within a CPU's time budget; the best of the two is kept per depth.
DEFAULT_SEARCH_LRS = (0.01, 0.1)
#: The default architectures of :func:`depth_study`: batch-normalized ReLU and layer-normalized
#: tanh explode (rates about 1.21 and 1.09 per layer at initialization), tanh without
#: normalization does not (rate about 1).
DEFAULT_ARCHITECTURES = (("relu", "batch"), ("tanh", "layer"), ("tanh", "none"))


def _check_scale(scale: Scale | None) -> Scale:
    if scale is None:
        return QUICK
    if not isinstance(scale, Scale):
        raise ValueError(f"scale={scale!r} is not allowed: scale must be a Scale (QUICK, PAPER, ...) or None")
    return scale


def _resolve_data(data: Dataset | str | None, scale: Scale, seed: int, device: Any,
                  dtype: torch.dtype | None) -> Dataset:
    """The study's data on ``device`` in ``dtype`` (default: float64 on a CPU, float32 elsewhere).

    ``device`` may be a torch device or its name, ``"auto"`` (a GPU when there is one), a
    :class:`~explodegrad.device.DeviceChoice`, or None (where the data already is).
    """
    if isinstance(device, DeviceChoice):
        device = device.device
    elif isinstance(device, str) and device == "auto":
        device = pick_device().device
    if data is not None and not isinstance(data, (str, Dataset)):
        raise ValueError(f"data={data!r} is not allowed: give a Dataset, a data set name "
                         "('digits', 'gaussian', 'cifar10') or None (the scale's data)")
    if dtype is None:
        where = data.device if isinstance(data, Dataset) and device is None else torch.device(device or "cpu")
        dtype = torch.float64 if where.type == "cpu" else torch.float32
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype={dtype!r} is not allowed: dtype must be torch.float32, torch.float64 "
                         "or None")
    if data is None:
        return load_scale_data(scale, device=device, seed=seed, dtype=dtype)
    if isinstance(data, str):
        return load_dataset(data, device=device, seed=seed, dtype=dtype)
    dataset = data if device is None else data.to(device)
    if dataset.x_train.dtype == dtype:
        return dataset
    return Dataset(dataset.name, dataset.x_train.to(dtype), dataset.y_train, dataset.x_test.to(dtype),
                   dataset.y_test, dataset.num_classes, dataset.class_names, dataset.source)


def _config_for(activation: str, norm: str, depth: int, width: int, data: Dataset, seed: int,
                init: str | None = None) -> NetConfig:
    return NetConfig(depth=depth, width=width, activation=activation, norm=norm,
                     init=init or DEFAULT_INITS.get(activation, "he"), in_features=data.in_features,
                     out_features=data.num_classes, seed=seed)


# ----------------------------------------------------------------------------- update sizes

def relative_update_sizes(history: TrainHistory, statistic: str = "median") -> np.ndarray:
    """Per layer k = 1 ... L, the typical ``||delta theta_k|| / ||theta_k||`` of a run's updates.

    Args:
        history: a run from :func:`explodegrad.train.train` (its recorded updates are used;
            step 0, the initial network, has none).
        statistic: ``"median"`` or ``"mean"`` over the recorded updates.

    Returns:
        ``sizes[k - 1]`` for layer k; NaN for every layer when no update was recorded.
    """
    if not isinstance(history, TrainHistory):
        raise ValueError(f"history: expected a TrainHistory from explodegrad.train, got "
                         f"{type(history).__name__}")
    statistic = check_choice("statistic", statistic, ("median", "mean"))
    ratios = np.asarray(history.update_ratio, dtype=float)
    rows = ratios[(history.steps > 0) & np.isfinite(ratios).all(axis=1)]
    if rows.shape[0] == 0:
        return np.full(ratios.shape[1], np.nan)
    return np.median(rows, axis=0) if statistic == "median" else rows.mean(axis=0)


# ----------------------------------------------------------------------------- optimizers vs GSC

@dataclass(frozen=True, eq=False)  # holds DataFrames: compare fields, not results
class OptimizerStudy:
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
        histories: (optimizer, seed) -> its :class:`~explodegrad.train.TrainHistory`.
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
        if optimizer not in self.optimizers:
            raise ValueError(f"optimizer={optimizer!r} is not allowed: the study trained {self.optimizers}")
        return self.runs.loc[self.runs["optimizer"] == optimizer, column].to_numpy(dtype=float)

    def summary(self) -> str:
        """Per optimizer the GSC and rate at the start and the end (with the R^2 of the final fit),
        and the training error, each as the median [min, max] over the seeds."""
        table = seed_table(self.runs, ["optimizer", "lr"],
                           {"gsc_start": "GSC start", "gsc_end": "GSC end", "rate_start": "r start",
                            "rate_end": "r end", "r_squared_end": "R^2 end",
                            "final_train_error": "train error"},
                           {"rate_start": ".3f", "rate_end": ".3f", "r_squared_end": ".2f",
                            "final_train_error": ".3f"})
        diverged = int(self.runs["diverged"].sum())
        note = f"\n{diverged} run(s) diverged (their numbers are left out)" if diverged else ""
        return (f"{self.label}: GSC(L, 0) from the first layer to the loss, median [min, max] over "
                f"{len(self.seeds)} seeds\n{table.to_string(index=False)}{note}")

    def update_summary(self) -> str:
        """Per optimizer the relative update size near the output (k = 2) and at the first layer
        (k = L), their ratio, and GSC(L, 0) at the end, each as the median [min, max] over seeds."""
        last = int(self.updates["layer"].max())
        rows = []
        for (optimizer, seed), group in self.updates.groupby(["optimizer", "seed"], sort=False):
            sizes = group.set_index("layer")
            rows.append({"optimizer": optimizer, "seed": seed,
                         "near": float(sizes["update_size"].get(2, math.nan)),
                         "first": float(sizes["update_size"][last]),
                         "end": float(sizes["gsc_end"][last])})
        frame = pd.DataFrame(rows)
        frame["ratio"] = frame["first"] / frame["near"]
        table = seed_table(frame, ["optimizer"], {"near": "k = 2", "first": f"k = {last}", "ratio": "ratio",
                                                  "end": "GSC(L, 0) at end"},
                           {"ratio": ".2f"})
        return ("relative update size ||delta theta_k|| / ||theta_k|| (median over the run), "
                f"median [min, max] over {len(self.seeds)} seeds\n{table.to_string(index=False)}")


def optimizer_study(config: NetConfig | None = None, data: Dataset | str | None = None,
                    optimizers: Sequence[str] = ("sgd", "adam", "rmsprop"),
                    lrs: dict[str, float] | None = None, *, scale: Scale | None = None,
                    steps: int | None = None, measure_every: int | None = None,
                    seeds: int | Sequence[int] | None = None, device: Any = None,
                    dtype: torch.dtype | None = None, progress: bool = False) -> OptimizerStudy:
    """Train one architecture with each optimizer, over several seeds, measuring its GSC during training.

    Args:
        config: the architecture (default: a batch-normalized ReLU network of the scale's
            depth and width, He init, which explodes at initialization); its input and
            output sizes are set from the data, its weight seed from each seed.
        data: a Dataset, a data set name, or None for the scale's data.
        optimizers: names from :data:`explodegrad.optim.OPTIMIZERS`.
        lrs: optimizer -> learning rate (missing ones from :data:`DEFAULT_LRS`).
        scale: sizes (default :data:`explodegrad.scale.QUICK`).
        steps: updates per run (default: the scale's ``train_steps``).
        measure_every: updates between GSC measurements (default: a tenth of the run).
        seeds: a count or the seeds themselves (default: the scale's ``num_seeds``). Each seed
            draws the weights and the minibatch order; within a seed every optimizer starts
            from the same weights and sees the same minibatches.
        device: where to train (``"auto"`` picks a GPU when there is one; default the data's).
        dtype: float64 or float32; default float64 on a CPU and float32 on a GPU. Training is
            chaotic: the digits of one run change with the CPU's rounding, hence the seeds.
        progress: show progress bars.
    """
    scale = _check_scale(scale)
    seeds = resolve_seeds(seeds, scale.num_seeds)
    if isinstance(optimizers, str):
        optimizers = (optimizers,)
    optimizers = tuple(check_choice("optimizers", name, OPTIMIZERS) for name in optimizers)
    if not optimizers:
        raise ValueError(f"optimizers=() is not allowed: give at least one of {OPTIMIZERS}")
    if lrs is not None and not isinstance(lrs, dict):
        raise ValueError(f"lrs={lrs!r} is not allowed: lrs must be a dict optimizer -> learning rate")
    rates = {name: check_positive(f"lrs[{name!r}]", (lrs or {}).get(name, DEFAULT_LRS[name]))
             for name in optimizers}
    steps = check_int("steps", scale.train_steps if steps is None else steps, 1)
    every = check_int("measure_every", max(1, steps // 10) if measure_every is None else measure_every, 1)
    dataset = _resolve_data(data, scale, seeds[0], device, dtype)
    if config is None:
        config = _config_for("relu", "batch", scale.depth, scale.width, dataset, seeds[0])
    if not isinstance(config, NetConfig):
        raise ValueError(f"config={config!r} is not allowed: config must be a NetConfig or None")
    config = config.with_(in_features=dataset.in_features, out_features=dataset.num_classes)
    batch_size = min(scale.batch_size, int(dataset.x_train.shape[0]))
    gsc_rows, update_rows, run_rows, histories = [], [], [], {}
    for seed in seeds:
        settings = TrainSettings(steps=steps, batch_size=batch_size, record_every=every,
                                 measure_every=every, measure_size=min(256, len(dataset.x_train)),
                                 eval_size=1024, seed=seed)
        for name in optimizers:
            history = train(config.with_(seed=seed), dataset, settings.with_(optimizer=name, lr=rates[name]),
                            progress=progress)
            histories[(name, seed)] = history
            errors = dict(zip(history.steps.tolist(), history.train_error.tolist()))
            for measurement in history.measurements:
                profile = measurement.gsc
                gsc_rows.append({"optimizer": name, "seed": seed, "lr": rates[name], "step": measurement.step,
                                 "gsc_first_layer": profile.first_layer_gsc, "gsc_input": profile.input_gsc,
                                 "rate": profile.fit.rate,
                                 "train_error": errors.get(measurement.step, math.nan)})
            sizes = relative_update_sizes(history)
            start, end = history.measurements[0].gsc, history.measurements[-1].gsc
            for k in history.layers:
                update_rows.append({"optimizer": name, "seed": seed, "layer": int(k),
                                    "update_size": float(sizes[k - 1]),
                                    "gsc_start": start.gsc_at(int(k)) if k > start.reference else math.nan,
                                    "gsc_end": end.gsc_at(int(k)) if k > end.reference else math.nan})
            near = float(sizes[1]) if len(sizes) > 1 else math.nan
            run_rows.append({"optimizer": name, "seed": seed, "lr": rates[name],
                             "gsc_start": start.first_layer_gsc, "gsc_end": end.first_layer_gsc,
                             "rate_start": start.fit.rate, "rate_end": end.fit.rate,
                             "r_squared_start": start.fit.r_squared, "r_squared_end": end.fit.r_squared,
                             "final_train_error": history.final_train_error if not history.diverged
                             else math.nan,
                             "diverged": bool(history.diverged),
                             "update_ratio": float(sizes[-1]) / near if near > 0 else math.nan})
    return OptimizerStudy(label=config.label(), gsc=pd.DataFrame(gsc_rows), updates=pd.DataFrame(update_rows),
                          runs=pd.DataFrame(run_rows), histories=histories, seeds=seeds)


# ----------------------------------------------------------------------------- error vs depth

@dataclass(frozen=True, eq=False)  # holds DataFrames: compare fields, not results
class DepthStudy:
    """Training error against depth, each (architecture, depth, seed) at its best learning rate.

    Attributes:
        table: one row per (architecture, depth, seed): architecture (e.g. ``relu/batch``; the
            initializer is appended when it is not the activation's default), activation,
            norm, init, depth, seed, label, gsc_init (GSC(L, 0) of the initial network on a
            measurement batch), rate_init (its fitted r), best_lr (NaN when every rate
            diverged), final_train_error, final_test_error.
        search: the underlying :class:`~explodegrad.sweep.LRSearchResult` (every rate's run).
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
        rows = self.table[(self.table["architecture"] == architecture) & (self.table["depth"] == depth)]
        if not len(rows):
            raise ValueError(f"(architecture, depth)=({architecture!r}, {depth!r}) is not allowed: the study "
                             f"trained {sorted(set(self.table['architecture']))} at depths "
                             f"{sorted(set(self.table['depth']))}")
        return rows[column].to_numpy(dtype=float)

    def summary(self) -> str:
        """Per architecture and depth: GSC(L, 0) at init, the chosen rates and the training error,
        as the median [min, max] over the seeds."""
        table = seed_table(self.table, ["architecture", "depth"],
                           {"gsc_init": "GSC(L, 0) at init", "final_train_error": "train error"},
                           {"gsc_init": ".4g", "final_train_error": ".3f"})
        table.insert(3, "best lr", chosen_rates(self.table, ["architecture", "depth"]))
        rates = ", ".join(f"{rate:g}" for rate in self.lrs)
        return (f"{self.optimizer}, {self.steps} steps, best of the rates {{{rates}}} per run; median "
                f"[min, max] over {len(self.seeds)} seeds\n{table.to_string(index=False)}")


def default_depths(scale: Scale) -> tuple[int, ...]:
    """The depths a depth study trains by default: 2, half the scale's depth, it, and twice it."""
    depth = _check_scale(scale).depth
    return tuple(sorted({2, max(2, depth // 2), max(2, depth), 2 * depth}))


def _check_architectures(architectures: Any) -> list[tuple[str, str, str]]:
    """(activation, norm, init) triples; a missing init is the activation's default."""
    try:
        items = [tuple(item) for item in architectures]
    except TypeError:
        items = []
    if not items or any(len(item) not in (2, 3) for item in items):
        raise ValueError(f"architectures={architectures!r} is not allowed: give a sequence of "
                         "(activation, norm) or (activation, norm, init) tuples, e.g. "
                         "(('relu', 'batch'), ('tanh', 'none'))")
    triples = []
    for item in items:
        activation = check_choice("architectures", item[0], tuple(DEFAULT_INITS))
        norm = check_choice("architectures", item[1], NORMS)
        init = check_choice("architectures", item[2], INITS) if len(item) == 3 else DEFAULT_INITS[activation]
        triples.append((activation, norm, init))
    return triples


def depth_study(architectures: Sequence[tuple[str, str]] = DEFAULT_ARCHITECTURES,
                depths: Sequence[int] | None = None, lrs: Sequence[float] = DEFAULT_SEARCH_LRS, *,
                data: Dataset | str | None = None, scale: Scale | None = None,
                width: int | None = None, steps: int | None = None, optimizer: str = "sgd",
                momentum: float = 0.9, seeds: int | Sequence[int] | None = None, device: Any = None,
                dtype: torch.dtype | None = None, progress: bool = False) -> DepthStudy:
    """Train each architecture at each depth with each learning rate and seed (one batched sweep).

    Args:
        architectures: (activation, norm) pairs, each with its activation's default
            initializer (:data:`explodegrad.survey.DEFAULT_INITS`), or (activation, norm,
            init) triples.
        depths: the depths (default :func:`default_depths` of the scale).
        lrs: learning rates searched for every (architecture, depth).
        data: a Dataset, a data set name, or None for the scale's data.
        scale: sizes (default :data:`explodegrad.scale.QUICK`).
        width: neurons per hidden layer (default: the scale's).
        steps: updates per run (default: the scale's ``train_steps``).
        optimizer: the optimizer of every run.
        momentum: SGD's momentum.
        seeds: a count or the seeds themselves (default: the scale's ``num_seeds``); each seed
            draws the weights, and every seed picks its own best rate. The minibatch order is
            the first seed's for every run, so that all runs share one sweep.
        device: where to train (``"auto"`` picks a GPU when there is one; default the data's).
        dtype: float64 or float32; default float64 on a CPU, float32 on a GPU (see
            :func:`optimizer_study`).
        progress: show a progress bar.
    """
    scale = _check_scale(scale)
    seeds = resolve_seeds(seeds, scale.num_seeds)
    triples = _check_architectures(architectures)
    depths = default_depths(scale) if depths is None else depths
    if isinstance(depths, (str, bytes)) or not list(depths):
        raise ValueError(f"depths={depths!r} is not allowed: give a sequence of integers >= 1")
    depths = [check_int("depths", d, 1) for d in depths]
    width = check_int("width", scale.width if width is None else width, 1)
    steps = check_int("steps", scale.train_steps if steps is None else steps, 1)
    lrs = tuple(check_positive("lrs", lr) for lr in lrs)
    dataset = _resolve_data(data, scale, seeds[0], device, dtype)
    configs = [_config_for(activation, norm, depth, width, dataset, seed, init)
               for activation, norm, init in triples for depth in depths for seed in seeds]
    batch_size = min(scale.batch_size, int(dataset.x_train.shape[0]))
    settings = TrainSettings(optimizer=optimizer, momentum=momentum, steps=steps, batch_size=batch_size,
                             record_every=steps, eval_size=1024, seed=seeds[0])
    search = lr_search(configs, dataset, list(lrs), settings, device=dataset.device, progress=progress)
    inputs, targets = dataset.batch(min(256, len(dataset.x_train)), seed=seeds[0])
    rows = []
    for arch, config in enumerate(configs):
        net = build_from_config(config, dtype=torch.float64)
        profile = gsc_profile(net, inputs.cpu().double(), targets.cpu(), seed=config.seed)
        best = search.best.iloc[arch]
        default_init = config.init == DEFAULT_INITS[config.activation]
        rows.append({"architecture": f"{config.activation}/{config.norm}"
                                     + ("" if default_init else f"/{config.init}"),
                     "activation": config.activation, "norm": config.norm, "init": config.init,
                     "depth": config.depth, "seed": config.seed, "label": config.label(),
                     "gsc_init": profile.first_layer_gsc, "rate_init": profile.fit.rate,
                     "best_lr": float(best["best_lr"]),
                     "final_train_error": float(best["final_train_error"]),
                     "final_test_error": float(best["final_test_error"])})
    return DepthStudy(table=pd.DataFrame(rows), search=search, steps=steps, optimizer=settings.optimizer,
                      lrs=lrs, seeds=seeds)
