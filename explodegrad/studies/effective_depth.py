"""How deep is a trained network really? Effective depth and the Taylor experiment.

Philipp, Song & Carbonell (2018) argue that a network can be much shallower than it looks.
This module trains a few architectures (plain and residual) and measures that in two ways:

* **Effective depth during training** (the residual trick, :mod:`explodegrad.measures.paths`).
  Every layer is split as ``f = s + r`` with a linear skip s; the network's Jacobian expands
  into paths through lambda residual Jacobians, and the effective depth is the largest
  lambda whose contribution still carries a set share (default 1 %) of the summed
  contribution norms. Two skips are tracked at every checkpoint:

  - *since initialization* (``skip="init"``, the paper's choice for trained networks): s =
    the layer as it was at initialization, so r is what training changed. At step 0 every
    r is exactly 0 and the effective depth is 0; it grows as training makes layers differ
    from their initial state.
  - the *natural* skip: the identity for residual blocks (``skip="identity"``, the ResNet
    view) and, for plain networks, each layer's best affine fit on the batch
    (``skip="linear_fit"``, so r is the part of the layer no linear map explains). This one
    is informative already at initialization.

* **The Taylor experiment** (:mod:`explodegrad.measures.taylor`): after training, replace the top k
  layers by their first-order Taylor expansion around the mean of their input and watch the
  training error as k grows. Operational choice made here: the network "breaks" at the
  smallest k whose training error exceeds the original (k = 0) error by more than
  ``tolerance`` (default 0.05). Taylor curves are evaluated in eval mode (batch norm with its
  running averages, see :mod:`explodegrad.measures.taylor`), while the effective depths, like the
  training records, use the measurement batch's own statistics.

Layers are numbered from the output as in the paper: k = 1 is the readout producing the
logits f_1; for a residual network a "layer" is an addressable unit (the input layer, a
residual block, the readout), so :func:`linear_layers_in_top` converts k into the number of
weight layers replaced. Training settings are an operational choice too: SGD with momentum 0.9
and learning rate 0.01 for every architecture (as chapter 04's optimizer study; the paper tuned
the rate per architecture), the scale's step count and batch size.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from explodegrad.core.checks import check_bool, check_choice, check_fraction, check_int
from explodegrad.core.config import NetConfig, is_residual_depth, residual_depth_rule
from explodegrad.core.data import Dataset
from explodegrad.core.device import resolve_device
from explodegrad.core.jsonable import frame_from_records
from explodegrad.core.nets import DeepMLP, build_from_config
from explodegrad.core.scales import Scale
from explodegrad.core.seeds import resolve_seeds, seed_table, seed_values
from explodegrad.measures.paths import DEFAULT_THRESHOLD, PathContributions, path_contributions
from explodegrad.measures.taylor import TaylorCurve, taylor_compression
from explodegrad.studies.common import (
    Architecture,
    StudyResult,
    architecture_label,
    resolve_data,
    resolve_scale,
    study_settings,
)
from explodegrad.training.loop import TrainHistory, TrainSettings, train
from explodegrad.training.optimizers import schedule_factor
from explodegrad.training.sweep import SweepResult, sweep

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = (
    "07/resnet-short-paths",
    "07/tanh-paths-short-without-skips",
    "07/tanh-skips-matter-deeper",
    "07/trained-effective-depth-below-nominal",
    "07/bn-relu-breaks-sooner",
    "07/deeper-breaks-sooner",
    "07/trained-depth-below-nominal",
    "07/trained-depth-resnets-shallower",
    "07/trained-depth-resnets-survive-longer",
    "07/trained-depth-deeper-breaks-sooner",
)

#: Default rise of the training error that counts as "the Taylor-compressed network broke".
DEFAULT_TAYLOR_TOLERANCE = 0.05

#: The version of the trained-depth computation (:func:`trained_depth_study`), recorded in
#: stored evidence; bump it when a change alters what it computes.
STUDY_VERSION = 1


#: The study's default architectures: an exploding (ReLU + batch norm) and a milder (tanh)
#: plain network, each against its residual counterpart.
DEFAULT_ARCHITECTURES = (
    Architecture("relu", "batch"),
    Architecture("relu", "batch", True),
    Architecture("tanh", "none"),
    Architecture("tanh", "none", True),
)


def natural_skip(config: NetConfig) -> str:
    """The skip that makes sense at initialization: identity for ResNets, linear fit otherwise."""
    return "identity" if config.residual else "linear_fit"


def linear_layers_in_top(config: NetConfig, k: int) -> int:
    """How many weight (linear) layers the top k addressable layers hold.

    For a plain network that is k. For a residual one the readout (k = 1) and the input layer
    (k = L) hold one each and every residual block ``block_depth``.
    """
    k = check_int("k", k, 0, config.num_layers)
    if not config.residual:
        return k
    blocks = min(max(k - 1, 0), config.num_blocks)
    return min(k, 1) + blocks * config.block_depth + (1 if k == config.num_layers else 0)


def units_to_weight_layers(config: NetConfig, units: int) -> int:
    """A path length lambda in weight layers: a residual block's lambda counts its
    ``block_depth`` weight layers (the path goes through the whole branch), a plain layer's one.

    An operational choice for comparing plain and residual networks in one unit, and for a
    ResNet with skip = the layer at initialization an upper bound: there the lambda units may
    include the input layer and the readout, one weight layer each
    (:func:`path_weight_layers` gives the whole range). Negative values (no depth: the
    contributions overflowed) pass through unchanged.
    """
    units = check_int("units", units, -1)
    return units * config.block_depth if config.residual and units > 0 else units


def path_weight_layers(units: int, block_depth: int, blocks: int) -> tuple[int, int]:
    """The fewest and the most weight layers a path through ``units`` residual units can hold.

    A ResNet's units are its input layer and readout (one weight layer each) and ``blocks``
    blocks (``block_depth`` each); which of them a lambda-path's units are is not recorded,
    so ``units`` may mean anything from as many of the two single layers as possible to as
    many blocks as possible. A plain network (``block_depth=1``) gives ``(units, units)``;
    values below 1 (no depth) pass through as ``(units, units)``.
    """
    units = check_int("units", units, -1)
    block_depth = check_int("block_depth", block_depth, 1)
    blocks = check_int("blocks", blocks, 0)
    if units > blocks + 2:
        raise ValueError(f"units={units} is not allowed: a network of {blocks} blocks has {blocks + 2} units")
    if units < 1 or block_depth == 1:
        return units, units
    singles_first = min(units, 2)
    fewest = singles_first + (units - singles_first) * block_depth
    block_units = min(units, blocks)
    most = block_units * block_depth + (units - block_units)
    return fewest, most


def taylor_break(curve: TaylorCurve, tolerance: float = DEFAULT_TAYLOR_TOLERANCE) -> int | None:
    """The smallest k whose training error exceeds the original network's by more than ``tolerance``.

    Returns None when no k in the curve does (the network survives full linearization) or the
    curve has no k = 0 entry to compare against. An operational choice: the paper reads the
    curves by eye.
    """
    tolerance = check_fraction("tolerance", tolerance)
    ks = np.asarray(curve.ks)
    if not np.any(ks == 0):
        return None
    original = float(curve.train_error[np.flatnonzero(ks == 0)[0]])
    broken = ks[(curve.train_error > original + tolerance) & (ks > 0)]
    return int(broken.min()) if broken.size else None


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class EffectiveDepthTrajectory:
    """The effective depth of one architecture at every training checkpoint.

    Attributes:
        label: the architecture, e.g. ``relu/batch/res``.
        config: the network's configuration.
        steps: the checkpoints (0 = initialization).
        train_error: the recorded training error at each checkpoint (batch statistics).
        depth_since_init: effective depth with skip = the layer at initialization
            (0 at step 0 by construction).
        depth_natural: effective depth with the natural skip (see :func:`natural_skip`).
        fractions_since_init: (checkpoints x lambdas) share of each lambda-contribution.
        fractions_natural: the same for the natural skip.
        natural_skip: ``"identity"`` or ``"linear_fit"``.
        threshold: the share a lambda needs to count towards the effective depth.
    """

    label: str
    config: NetConfig
    steps: np.ndarray
    train_error: np.ndarray
    depth_since_init: np.ndarray
    depth_natural: np.ndarray
    fractions_since_init: np.ndarray
    fractions_natural: np.ndarray
    natural_skip: str
    threshold: float

    @property
    def num_layers(self) -> int:
        """L, the largest possible lambda."""
        return self.config.num_layers


@dataclass(frozen=True, eq=False)  # holds a DataFrame: compare fields, not results
class EffectiveDepthStudy(StudyResult):
    """Effective depth during training and the Taylor curves of several architectures.

    Attributes:
        labels: the architectures, in the order given.
        trajectories: label -> :class:`EffectiveDepthTrajectory`.
        taylor: label -> the trained network's :class:`~explodegrad.measures.taylor.TaylorCurve`.
        taylor_linear_layers: label -> weight layers replaced at each k of the Taylor curve.
        histories: label -> the :class:`~explodegrad.training.loop.TrainHistory` of its training.
            ``trajectories``, ``taylor``, ``taylor_linear_layers`` and ``histories`` hold the
            first seed's runs (what the plots draw); ``table`` holds every seed's numbers.
        table: one row per (architecture, seed): label, seed, activation, norm, residual,
            depth, num_layers, final_train_error, depth_natural_init, depth_natural_final,
            depth_since_init_final, taylor_break_k (nullable: None = never broke),
            taylor_break_linear_layers.
        tolerance: the rise of training error that counts as broken (:func:`taylor_break`).
        scale_name: the scale the study ran at.
        data_name: the data set.
    """

    labels: list[str]
    trajectories: dict[str, EffectiveDepthTrajectory]
    taylor: dict[str, TaylorCurve]
    taylor_linear_layers: dict[str, np.ndarray]
    histories: dict[str, TrainHistory]
    table: pd.DataFrame
    tolerance: float
    scale_name: str
    data_name: str
    seeds: tuple[int, ...] = (0,)

    def values(self, label: str, column: str) -> np.ndarray:
        """One value of ``table[column]`` per seed for the architecture ``label`` (NaN: never broke)."""
        return seed_values(self.table, column, label=label)

    def summary(self) -> str:
        """Per architecture: L, the training error, the effective depths (natural skip at init and
        at the end; skip = the initial layer at the end, 0 at init by construction) and the number
        of weight layers whose linearization first breaks the network, each as the median
        [min, max] over the seeds."""
        frame = self.table.copy()
        layers = frame["taylor_break_linear_layers"]
        frame["taylor_break_linear_layers"] = layers.astype("Float64").astype(float)
        table = seed_table(
            frame,
            ["label", "num_layers"],
            {
                "final_train_error": "train err",
                "depth_natural_init": "eff. depth, natural skip: init",
                "depth_natural_final": "natural skip: end",
                "depth_since_init_final": "init skip: end",
                "taylor_break_linear_layers": "Taylor breaks (weight layers)",
            },
            {"final_train_error": ".3f"},
        )
        table = table.rename(columns={"label": "architecture", "num_layers": "L"})
        return (
            f"median [min, max] over {len(self.seeds)} seeds (n/a: never broke)\n"
            f"{table.to_string(index=False)}"
        )


def measure_both_skips(
    net: DeepMLP, initial: DeepMLP, inputs: torch.Tensor, num_probes: int, threshold: float, seed: int
) -> tuple[PathContributions, PathContributions]:
    """The path contributions of ``net`` on ``inputs`` with skip = the layer at initialization
    (``initial``) and with the natural skip (:func:`natural_skip`), same probes and threshold."""
    options = dict(num_probes=num_probes, threshold=threshold, seed=seed)
    since_init = path_contributions(net, inputs, skip="init", initial_net=initial, **options)
    natural = path_contributions(net, inputs, skip=natural_skip(net.config), **options)
    return since_init, natural


def track_effective_depth(
    config: NetConfig,
    data: Dataset,
    settings: TrainSettings,
    *,
    measure_size: int = 256,
    threshold: float = DEFAULT_THRESHOLD,
    num_probes: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> tuple[EffectiveDepthTrajectory, DeepMLP, TrainHistory]:
    """Train one network and measure its effective depth at every record (step 0 included).

    Args:
        config: the network; built on the data's device and dtype.
        data: the data set (its ``in_features`` / ``num_classes`` must match ``config``).
        settings: training settings; a checkpoint is taken at every record
            (``record_every``) and after the last step.
        measure_size: examples of the fixed training batch the path contributions use (use
            more than the width, so the natural linear fit of a plain layer does not just
            interpolate the batch).
        threshold: share for the effective depth (:func:`explodegrad.measures.paths.effective_depth`).
        num_probes: random probes of the logits' Jacobian.
        seed: seed of the measurement batch and of the probes.
        progress: show a progress bar.

    Returns:
        The trajectory, the trained network and its training history.
    """
    if not isinstance(config, NetConfig):
        raise TypeError(f"config={config!r} is not allowed: config must be a NetConfig")
    n_train = int(data.x_train.shape[0])
    measure_size = check_int("measure_size", measure_size, 2, n_train)
    threshold = check_fraction("threshold", threshold)
    num_probes = check_int("num_probes", num_probes, 1)
    net = build_from_config(config, device=data.device, dtype=data.x_train.dtype)
    initial = copy.deepcopy(net)
    inputs, _ = data.batch(measure_size, seed=seed)
    rows: list[tuple[int, PathContributions, PathContributions]] = []

    def measure(step: int, _history: TrainHistory) -> None:
        rows.append((step, *measure_both_skips(net, initial, inputs, num_probes, threshold, seed)))

    history = train(net, data, settings, progress=progress, callback=measure)
    return _trajectory(config, rows, history, threshold), net, history


def _trajectory(
    config: NetConfig,
    rows: Sequence[tuple[int, PathContributions, PathContributions]],
    history: TrainHistory,
    threshold: float,
) -> EffectiveDepthTrajectory:
    """The trajectory of ``(step, since-init, natural)`` measurements, errors from ``history``."""
    steps = np.array([r[0] for r in rows], dtype=int)
    errors = dict(zip(history.steps.tolist(), history.train_error.tolist()))
    return EffectiveDepthTrajectory(
        label=architecture_label(config.activation, config.norm, config.residual),
        config=config,
        steps=steps,
        train_error=np.array([errors[s] for s in steps]),
        depth_since_init=np.array([r[1].effective_depth for r in rows], dtype=int),
        depth_natural=np.array([r[2].effective_depth for r in rows], dtype=int),
        fractions_since_init=np.array([r[1].fraction for r in rows], dtype=float),
        fractions_natural=np.array([r[2].fraction for r in rows], dtype=float),
        natural_skip=natural_skip(config),
        threshold=threshold,
    )


@dataclass(frozen=True, eq=False)  # holds networks: compare fields, not results
class TrainedNetworks:
    """One network trained elsewhere (e.g. by a learning-rate search), at each of its records.

    Attributes:
        networks: ``(step, network)`` at every record, in step order, step 0 (the initial
            network) first; e.g. ``[(s, sweep.network_at(run, s)) for s in steps]``.
        history: the training's records (:func:`sweep_run_history` for a sweep's run); every
            step of ``networks`` must be one of its ``steps``.
    """

    networks: list[tuple[int, DeepMLP]]
    history: TrainHistory


def measure_trained(
    trained: TrainedNetworks,
    data: Dataset,
    *,
    measure_size: int = 256,
    threshold: float = DEFAULT_THRESHOLD,
    num_probes: int = 2,
    seed: int = 0,
) -> EffectiveDepthTrajectory:
    """The effective depth of already-trained networks at their steps, without training.

    What :func:`track_effective_depth` measures during training, measured on given networks
    instead: at every ``(step, network)`` the path contributions with skip = the step-0
    network's layers and with the natural skip (:func:`measure_both_skips`), on the same
    measurement batch and probes. Each network is measured in training mode (batch
    statistics, as during training; it is left in that mode) and otherwise left as it is.

    Args:
        trained: the networks and their training records (:class:`TrainedNetworks`).
        data: the data set the networks were trained on.
        measure_size, threshold, num_probes, seed: as in :func:`track_effective_depth`.

    Returns:
        The :class:`EffectiveDepthTrajectory` (its training errors from ``trained.history``).
    """
    if not isinstance(trained, TrainedNetworks):
        raise TypeError(f"trained: expected TrainedNetworks, got {type(trained).__name__}")
    networks = list(trained.networks)
    if not networks or networks[0][0] != 0:
        first = networks[0][0] if networks else None
        raise ValueError(
            f"trained.networks: the first step is {first!r}; give the initial network (step 0) "
            "first, then the later records in step order"
        )
    steps = [int(step) for step, _ in networks]
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"trained.networks: steps {steps} are not allowed: give them in increasing order")
    recorded = set(trained.history.steps.tolist())
    missing = [step for step in steps if step not in recorded]
    if missing:
        raise ValueError(
            f"trained.networks: steps {missing} are not allowed: the history records steps {sorted(recorded)}"
        )
    config = networks[0][1].config
    for step, net in networks:
        if not isinstance(net, DeepMLP):
            raise TypeError(f"trained.networks: step {step} holds a {type(net).__name__}, not a DeepMLP")
        if net.config != config:
            raise ValueError(
                f"trained.networks: step {step}'s network is {net.config.label()}, step 0's "
                f"{config.label()}; give one network's records"
            )
    n_train = int(data.x_train.shape[0])
    measure_size = check_int("measure_size", measure_size, 2, n_train)
    threshold = check_fraction("threshold", threshold)
    num_probes = check_int("num_probes", num_probes, 1)
    inputs, _ = data.batch(measure_size, seed=seed)
    initial = copy.deepcopy(networks[0][1])
    rows = []
    for step, net in networks:
        net.train()
        rows.append((step, *measure_both_skips(net, initial, inputs, num_probes, threshold, seed)))
    return _trajectory(config, rows, trained.history, threshold)


def sweep_run_history(result: SweepResult, run: int, data: Dataset) -> TrainHistory:
    """A :class:`TrainHistory` of one run of a sweep, from its table and summary.

    Steps, losses, errors, divergence and the applied learning rate (the schedule's, as
    ``train()`` records it) are the sweep's own; the sweep keeps no per-layer gradient norms or
    update ratios, so ``grad_norms`` and ``update_ratio`` are NaN, and ``wall_time`` is the
    whole sweep's.

    Args:
        result: the sweep (e.g. ``lr_search(...).sweep``).
        run: the run's index (e.g. ``LRSearchResult.best_run(arch)``).
        data: the data set the sweep trained on (for the run's step count).
    """
    if not isinstance(result, SweepResult):
        raise TypeError(f"result: expected a SweepResult, got {type(result).__name__}")
    run = check_int("run", run, 0, len(result.runs) - 1)
    spec = result.runs[run]
    settings, config = spec.settings, spec.config
    rows = result.table[result.table["run"] == run]
    summary = result.summary.iloc[run]
    total = settings.total_steps(int(data.x_train.shape[0]))
    steps = rows["step"].to_numpy(dtype=np.int64)
    rates = [
        math.nan
        if step == 0
        else settings.lr
        * schedule_factor(settings.schedule, int(step), total, settings.gamma, settings.milestones)
        for step in steps
    ]
    num_layers = config.num_layers
    nan_rows = np.full((len(steps), num_layers), math.nan)
    diverged_step, diverged_layer = summary["diverged_step"], summary["diverged_layer"]
    return TrainHistory(
        label=config.label(),
        config=config,
        settings=settings,
        layers=np.arange(1, num_layers + 1),
        steps=steps,
        train_loss=rows["train_loss"].to_numpy(dtype=np.float64),
        train_error=rows["train_error"].to_numpy(dtype=np.float64),
        test_loss=rows["test_loss"].to_numpy(dtype=np.float64),
        test_error=rows["test_error"].to_numpy(dtype=np.float64),
        learning_rate=np.array(rates, dtype=np.float64),
        grad_norms=nan_rows,
        update_ratio=nan_rows.copy(),
        diverged=bool(summary["diverged"]),
        diverged_step=None if pd.isna(diverged_step) else int(diverged_step),
        diverged_layer=None if pd.isna(diverged_layer) else int(diverged_layer),
        message=str(summary["message"]),
        final_train_loss=float(summary["final_train_loss"]),
        final_train_error=float(summary["final_train_error"]),
        final_test_loss=float(summary["final_test_loss"]),
        final_test_error=float(summary["final_test_error"]),
        steps_done=int(summary["steps_done"]),
        wall_time=float(result.wall_time),
    )


def paths_at_initialization(
    depth: int = 20,
    width: int = 64,
    activation: str = "relu",
    norm: str = "none",
    residual: bool = True,
    residual_scale: float = 1.0,
    *,
    data: Dataset | None = None,
    batch_size: int = 128,
    num_probes: int = 2,
    threshold: float = DEFAULT_THRESHOLD,
    seed: int = 0,
    device: Any = None,
    dtype: torch.dtype = torch.float32,
) -> PathContributions:
    """The path-length distribution of a freshly built network, with its natural skip.

    Residual networks use the identity skip (lambda counts residual branches on a path); plain
    networks each layer's best affine fit on the batch (lambda counts layers whose nonlinear
    part is on the path). The usual initializer of the activation is used
    (:data:`explodegrad.studies.common.DEFAULT_INITS`). This is the experiment of chapter 07's explorer.

    Args:
        depth, width, activation, norm, residual, residual_scale: the network (see
            :class:`explodegrad.core.config.NetConfig`).
        data: where the batch comes from (default: the bundled digits).
        batch_size: examples in the batch (use more than ``width`` for a plain network, so the
            affine fit does not just interpolate the batch).
        num_probes, threshold, seed: see :func:`explodegrad.measures.paths.path_contributions`.
        device, dtype: where and in which precision the network runs (``device`` as in
            :func:`~explodegrad.core.device.resolve_device`; None: the data's device, or the CPU).
    """
    from explodegrad.core.data import load_digits  # the explorer passes its own data; this is the fallback

    device = resolve_device(device, data) if device is not None else None
    data = load_digits(seed=seed, device=device, dtype=dtype) if data is None else data
    inputs, _ = data.batch(check_int("batch_size", min(batch_size, len(data.x_train)), 2), seed=seed)
    inputs = inputs.to(device=device if device is not None else inputs.device, dtype=dtype)
    architecture = Architecture(activation, norm, residual, residual_scale=residual_scale)
    if residual and not is_residual_depth(depth):
        raise ValueError(
            f"depth={depth} is not allowed for a residual network: it needs {residual_depth_rule()}"
        )
    config = architecture.config(depth, width, data.in_features, data.num_classes, seed)
    net = build_from_config(config, device=inputs.device, dtype=inputs.dtype)
    return path_contributions(
        net, inputs, skip=natural_skip(config), num_probes=num_probes, threshold=threshold, seed=seed
    )


def path_shares_by_depth(
    depths: Sequence[int] = (20, 50),
    width: int = 64,
    architectures: Sequence[Architecture] | None = None,
    *,
    batch_size: int = 256,
    device: Any = None,
    dtype: torch.dtype = torch.float64,
) -> dict[int, dict[str, float]]:
    """Depth -> label -> the mean path share at initialization (``PathContributions.mean_share``).

    How the skips' effect on the path lengths changes with depth: the same architectures, each
    with its natural skip, at every depth (:func:`paths_at_initialization`). Chapter 07 uses it
    to show that plain tanh's paths are as short as its ResNet's at depth 20 but not at 50.

    Args:
        depths: network depths (each even and >= 4 when an architecture is residual).
        width: neurons per hidden layer.
        architectures: the networks (default :data:`DEFAULT_ARCHITECTURES`).
        batch_size: examples in the batch (256 here: more than the width, see
            :func:`paths_at_initialization`).
        device, dtype: where and in which precision (float64 by default: the shares are then
            the same on every machine).
    """
    chosen = _resolve_architectures(architectures)
    depths = [check_int("depths", depth, 2) for depth in depths]
    if not depths:
        raise ValueError("depths=[] is not allowed: give at least one depth")
    residual = [a.label for a in chosen if a.residual]
    refused = [depth for depth in depths if not is_residual_depth(depth)]
    if residual and refused:
        raise ValueError(
            f"depths={depths!r} is not allowed with the residual {', '.join(residual)}: a ResNet needs "
            f"{residual_depth_rule()} (not {refused})"
        )
    return {
        depth: {
            a.label: paths_at_initialization(
                depth,
                width,
                a.activation,
                a.norm,
                a.residual,
                a.residual_scale,
                batch_size=batch_size,
                device=device,
                dtype=dtype,
            ).mean_share
            for a in chosen
        }
        for depth in depths
    }


def train_together(
    configs: Mapping[Any, NetConfig], data: Dataset, settings: TrainSettings, *, progress: bool = False
) -> dict[Any, TrainedNetworks]:
    """Train every network of ``configs`` in one sweep and keep each at every record.

    What a study's seeds and architectures cost when stacked: one batched run
    (:func:`explodegrad.training.sweep.sweep`, groups by shape) instead of one loop per
    network, with every network kept at each of ``settings``' records for measuring
    afterwards. Every network sees the minibatch order of ``settings.seed``: a seed then
    draws the weights (its configuration's ``seed``), not the order of the examples.

    Args:
        configs: key (e.g. ``(label, seed)``) -> the network to train.
        data: the data set (trained on its device).
        settings: the training settings of every network.
        progress: show a progress bar.

    Returns:
        key -> :class:`TrainedNetworks` (the networks at every record, the sweep's history).
    """
    if not configs:
        raise ValueError("configs={} is not allowed: give at least one network to train")
    keys = list(configs)
    result = sweep(
        [configs[key] for key in keys],
        data,
        settings,
        device=data.device,
        progress=progress,
        keep_checkpoints=True,
    )
    trained: dict[Any, TrainedNetworks] = {}
    for run, key in enumerate(keys):
        steps = [checkpoint.step for checkpoint in result.checkpoints[run]]
        trained[key] = TrainedNetworks(
            networks=[(step, result.network_at(run, step)) for step in steps],
            history=sweep_run_history(result, run, data),
        )
    return trained


def _resolve_architectures(architectures: Sequence[Architecture] | None) -> list[Architecture]:
    chosen = list(DEFAULT_ARCHITECTURES if architectures is None else architectures)
    if not chosen:
        raise ValueError("architectures=[] is not allowed: give at least one Architecture")
    for item in chosen:
        if not isinstance(item, Architecture):
            raise TypeError(
                f"architectures: {item!r} is not an Architecture (e.g. "
                "Architecture('relu', 'batch', residual=True))"
            )
    labels = [a.label for a in chosen]
    if len(set(labels)) != len(labels):
        raise ValueError(f"architectures: the labels {labels} repeat; give each architecture once")
    return chosen


def _check_trained(
    trained: Mapping[tuple[str, int], TrainedNetworks], chosen: Sequence[Architecture], seeds: Sequence[int]
) -> None:
    """Refuse a ``trained`` mapping that lacks an (architecture, seed) or holds something else."""
    if not isinstance(trained, Mapping):
        raise TypeError(
            f"trained: expected a mapping (label, seed) -> TrainedNetworks, got {type(trained).__name__}"
        )
    for key, value in trained.items():
        if not isinstance(value, TrainedNetworks):
            raise TypeError(f"trained[{key!r}]: expected TrainedNetworks, got {type(value).__name__}")
    wanted = [(a.label, seed) for seed in seeds for a in chosen]
    missing = [key for key in wanted if key not in trained]
    if missing:
        raise ValueError(
            f"trained: {missing} are missing; give TrainedNetworks for every (label, seed) of {wanted}"
        )


def effective_depth_study(
    architectures: Sequence[Architecture] | None = None,
    *,
    scale: Scale | None = None,
    device: Any = None,
    data: Dataset | str | None = None,
    seeds: int | Sequence[int] | None = None,
    settings: TrainSettings | None = None,
    depth: int | None = None,
    width: int | None = None,
    checkpoints: int | None = None,
    measure_size: int = 256,
    taylor_size: int = 1024,
    threshold: float = DEFAULT_THRESHOLD,
    tolerance: float = DEFAULT_TAYLOR_TOLERANCE,
    num_probes: int = 2,
    progress: bool = False,
    trained: Mapping[tuple[str, int], TrainedNetworks] | None = None,
    stack_seeds: bool = False,
) -> EffectiveDepthStudy:
    """Train each architecture, track its effective depth, then run the Taylor experiment on it.

    With ``trained``, nothing is trained: each (architecture, seed)'s given networks are
    measured instead (:func:`measure_trained`), the Taylor experiment runs on the last one, and
    the histories are the given ones.

    Args:
        architectures: the :class:`Architecture` s (default :data:`DEFAULT_ARCHITECTURES`).
        scale: sizes (depth, width, steps, batch, data set) of :mod:`explodegrad.core.scales`
            (default QUICK).
        device: where to run (:func:`~explodegrad.core.device.resolve_device`; default the
            data's, else the setup's choice).
        data: a Dataset, a data set name or None (:func:`~explodegrad.studies.common.resolve_data`:
            the scale's, float64 on the CPU; a given Dataset is used in its own dtype).
        seeds: a count or the seeds themselves (default: the scale's ``num_seeds``); each seed
            draws the weights, the minibatch order (the first seed's for all with
            ``stack_seeds``), the measurement batches and the probes.
        settings: training settings (default :func:`study_settings` with ``checkpoints``).
        depth, width: override the scale's network size.
        checkpoints: records after step 0 when ``settings`` is not given (see
            :func:`study_settings`).
        measure_size: the batch the path contributions are measured on.
        taylor_size: training examples the Taylor curves are evaluated on.
        threshold: share for the effective depth.
        tolerance: rise of the training error that counts as broken (:func:`taylor_break`).
        num_probes: random probes of each path measurement.
        progress: show progress bars.
        trained: ``(label, seed) -> TrainedNetworks`` for every architecture and seed, e.g. a
            learning-rate search's own networks (``sweep(..., keep_checkpoints=True)``);
            ``settings`` and ``checkpoints`` are then unused. None (default): train them.
        stack_seeds: train every (architecture, seed) in one sweep (:func:`train_together`:
            a few batched loops instead of one per network, what a GPU needs at the paper
            scale) and measure the kept networks. Every seed then trains on the first seed's
            minibatch order (its weights stay its own), so the numbers differ from the
            default, where each seed also draws its own order.

    Returns:
        An :class:`EffectiveDepthStudy`.
    """
    scale = resolve_scale(scale)
    chosen = _resolve_architectures(architectures)
    seeds = resolve_seeds(seeds, scale.num_seeds)
    stack_seeds = check_bool("stack_seeds", stack_seeds)
    if stack_seeds and trained is not None:
        raise ValueError(
            "stack_seeds=True is not allowed with trained: the given networks are already trained"
        )
    if trained is not None:
        _check_trained(trained, chosen, seeds)
    tolerance = check_fraction("tolerance", tolerance)
    data = resolve_data(data, scale=scale, seed=seeds[0], device=device)
    base_settings = study_settings(scale, checkpoints) if settings is None else settings
    depth = check_int("depth", scale.depth if depth is None else depth, 4)
    width = check_int("width", scale.width if width is None else width, 1)
    if stack_seeds:  # trained is None: refused above
        configs = {
            (a.label, seed): a.config(depth, width, data.in_features, data.num_classes, seed)
            for seed in seeds
            for a in chosen
        }
        trained = train_together(configs, data, base_settings.with_(seed=seeds[0]), progress=progress)
    n_train = int(data.x_train.shape[0])
    taylor_size = check_int("taylor_size", min(taylor_size, n_train), 1)
    trajectories, curves, linear_layers, histories, rows = {}, {}, {}, {}, []
    for seed in seeds:
        taylor_inputs, taylor_targets = data.batch(taylor_size, seed=seed)
        for architecture in chosen:
            config = architecture.config(depth, width, data.in_features, data.num_classes, seed)
            label = architecture.label
            if trained is None:
                trajectory, net, history = track_effective_depth(
                    config,
                    data,
                    base_settings.with_(seed=seed),
                    measure_size=min(measure_size, n_train),
                    threshold=threshold,
                    num_probes=num_probes,
                    seed=seed,
                    progress=progress,
                )
            else:
                given = trained[(label, seed)]
                if given.networks[0][1].config != config:
                    raise ValueError(
                        f"trained[({label!r}, {seed})]: the networks are "
                        f"{given.networks[0][1].config!r}, the study's are {config!r}"
                    )
                net = given.networks[-1][1]  # the Taylor experiment on the last record
                trajectory = measure_trained(
                    given,
                    data,
                    measure_size=min(measure_size, n_train),
                    threshold=threshold,
                    num_probes=num_probes,
                    seed=seed,
                )
                history = given.history
            curve = taylor_compression(net, taylor_inputs, taylor_targets)
            if seed == seeds[0]:
                trajectories[label], curves[label], histories[label] = trajectory, curve, history
                linear_layers[label] = np.array([linear_layers_in_top(config, int(k)) for k in curve.ks])
            broke = taylor_break(curve, tolerance)
            rows.append(
                {
                    "label": label,
                    "seed": seed,
                    "activation": config.activation,
                    "norm": config.norm,
                    "residual": config.residual,
                    "depth": config.depth,
                    "num_layers": config.num_layers,
                    "final_train_error": history.final_train_error,
                    "depth_natural_init": int(trajectory.depth_natural[0]),
                    "depth_natural_final": int(trajectory.depth_natural[-1]),
                    "depth_since_init_final": int(trajectory.depth_since_init[-1]),
                    "taylor_break_k": broke,
                    "taylor_break_linear_layers": None
                    if broke is None
                    else linear_layers_in_top(config, broke),
                }
            )
    table = pd.DataFrame(rows)
    for column in ("taylor_break_k", "taylor_break_linear_layers"):
        table[column] = table[column].astype("Int64")
    return EffectiveDepthStudy(
        labels=[a.label for a in chosen],
        trajectories=trajectories,
        taylor=curves,
        taylor_linear_layers=linear_layers,
        histories=histories,
        table=table,
        tolerance=tolerance,
        scale_name=scale.name,
        data_name=data.name,
        seeds=seeds,
    )


@dataclass(frozen=True, eq=False)  # holds DataFrames: compare fields, not results
class TrainedDepthStudy(StudyResult):
    """Effective depth and the Taylor experiment on the trained networks of a depth-limit study.

    Attributes:
        table: one row per (architecture, seed): label, seed, activation, norm, residual, depth
            (weight layers), num_layers (addressable layers L), lr (the depth study's chosen
            rate), search_train_error (that run's training error in the depth study),
            final_train_error (this retraining's), depth_since_init (effective depth with skip =
            the layer at initialization, in lambda units) and depth_since_init_layers (in weight
            layers, :func:`units_to_weight_layers`), depth_natural / depth_natural_layers (the
            natural skip), taylor_break_k and taylor_break_linear_layers (NaN: never broke).
        taylor: one row per (label, seed, k): linear_layers (weight layers replaced), train_error.
        depth: the depth of the networks (weight layers).
        width: neurons per hidden layer.
        steps: updates per run.
        data_name: the data set.
        seeds: the seeds.
        threshold: the share for the effective depth.
        tolerance: the rise of training error that counts as broken (:func:`taylor_break`).
    """

    table: pd.DataFrame
    taylor: pd.DataFrame
    depth: int
    width: int
    steps: int
    data_name: str
    seeds: tuple[int, ...]
    threshold: float
    tolerance: float

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainedDepthStudy:
        """The study back from :meth:`to_dict`."""
        return cls(
            table=frame_from_records(values["table"]),
            taylor=frame_from_records(values["taylor"]),
            depth=int(values["depth"]),
            width=int(values["width"]),
            steps=int(values["steps"]),
            data_name=str(values["data_name"]),
            seeds=tuple(int(seed) for seed in values["seeds"]),
            threshold=float(values["threshold"]),
            tolerance=float(values["tolerance"]),
        )

    @property
    def labels(self) -> list[str]:
        """The architectures, in the study's order."""
        return list(dict.fromkeys(self.table["label"]))

    def values(self, label: str, column: str) -> np.ndarray:
        """One value of ``table[column]`` per seed for the architecture ``label`` (NaN: never broke)."""
        return seed_values(self.table, column, label=label)

    def summary(self) -> str:
        """Per architecture, in weight layers: the effective depths after training and the
        layers whose linearization first breaks the network, each as the median [min, max]
        over the seeds."""
        table = seed_table(
            self.table,
            ["label", "depth"],
            {
                "final_train_error": "train err",
                "depth_since_init_layers": "eff. depth (init skip)",
                "depth_natural_layers": "eff. depth (natural skip)",
                "taylor_break_linear_layers": "Taylor breaks at",
            },
            {"final_train_error": ".3f"},
        )
        table = table.rename(columns={"label": "architecture", "depth": "layers"})
        return (
            f"trained depth-{self.depth} networks, {self.data_name}, in weight layers; median [min, max] "
            f"over {len(self.seeds)} seeds (n/a: never broke)\n{table.to_string(index=False)}"
        )


def trained_depth_study(
    depth_study: Any,
    data: Dataset,
    *,
    depth: int | None = None,
    measure_size: int = 256,
    taylor_size: int = 1024,
    threshold: float = DEFAULT_THRESHOLD,
    tolerance: float = DEFAULT_TAYLOR_TOLERANCE,
    num_probes: int = 2,
    momentum: float = 0.9,
    labels: Sequence[str] | None = None,
    progress: bool = False,
) -> TrainedDepthStudy:
    """Retrain the depth study's networks at one depth with their chosen rates, then measure
    their effective depth and run the Taylor experiment on them.

    The depth study (:func:`explodegrad.studies.depth_limit.depth_study`, e.g. the stored
    evidence) keeps no weights; each (architecture, seed) is trained again exactly as its sweep
    did (same weights, rate, steps, minibatch order, optimizer), so ``final_train_error`` can be
    checked against ``search_train_error``: the two differ only by the rounding of one network
    trained alone instead of stacked with others. Runs whose rates all diverged are skipped.

    Args:
        depth_study: a DepthStudy (its table and settings).
        data: the data set it was trained on (same examples, e.g. the stored file's checksum).
        depth: the depth to use (default: the study's largest).
        measure_size, threshold, num_probes: the batch, share and probes of the path
            contributions (:func:`explodegrad.measures.paths.path_contributions`), measured after
            training with skip = the layer at initialization and with the natural skip.
        taylor_size: training examples the Taylor curves are evaluated on.
        tolerance: rise of the training error that counts as broken (:func:`taylor_break`).
        momentum: the depth study's SGD momentum.
        labels: only these architectures (default: every one).
        progress: show progress bars.
    """
    table = depth_study.table
    depth = int(table["depth"].max()) if depth is None else check_int("depth", depth, 1)
    rows_in = table[(table["depth"] == depth) & table["best_lr"].notna()]
    if labels is not None:
        rows_in = rows_in[rows_in["architecture"].isin(list(labels))]
    if rows_in.empty:
        raise ValueError(f"depth={depth} is not allowed: the depth study has no trained run at that depth")
    seeds = tuple(int(seed) for seed in depth_study.seeds)
    n_train = int(data.x_train.shape[0])
    settings = TrainSettings(
        optimizer=depth_study.optimizer,
        momentum=momentum,
        steps=depth_study.steps,
        batch_size=min(128, n_train),
        record_every=depth_study.steps,
        eval_size=1024,
        seed=seeds[0],
    )
    taylor_inputs, taylor_targets = data.batch(
        check_int("taylor_size", min(taylor_size, n_train), 1), seed=seeds[0]
    )
    measure_inputs, _ = data.batch(check_int("measure_size", min(measure_size, n_train), 2), seed=seeds[0])
    threshold = check_fraction("threshold", threshold)
    rows, curves = [], []
    for _, run in rows_in.iterrows():
        architecture = Architecture(
            str(run["activation"]), str(run["norm"]), bool(run["residual"]), init=str(run["init"])
        )
        config = architecture.config(
            depth, depth_study.width, data.in_features, data.num_classes, int(run["seed"])
        )
        net = build_from_config(config, device=data.device, dtype=data.x_train.dtype)
        initial = copy.deepcopy(net)
        history = train(net, data, settings.with_(lr=float(run["best_lr"])), progress=progress)
        net.train()  # measured with the batch's own statistics, as during training
        since_init, natural = measure_both_skips(
            net, initial, measure_inputs, num_probes, threshold, seeds[0]
        )
        curve = taylor_compression(net, taylor_inputs, taylor_targets)
        broke = taylor_break(curve, tolerance)
        label = str(run["architecture"])
        since_init, natural = since_init.effective_depth, natural.effective_depth
        rows.append(
            {
                "label": label,
                "seed": int(run["seed"]),
                "activation": config.activation,
                "norm": config.norm,
                "residual": config.residual,
                "depth": config.depth,
                "num_layers": config.num_layers,
                "lr": float(run["best_lr"]),
                "search_train_error": float(run["final_train_error"]),
                "final_train_error": history.final_train_error,
                "depth_since_init": since_init,
                "depth_since_init_layers": units_to_weight_layers(config, since_init),
                "depth_natural": natural,
                "depth_natural_layers": units_to_weight_layers(config, natural),
                "taylor_break_k": np.nan if broke is None else broke,
                "taylor_break_linear_layers": np.nan
                if broke is None
                else linear_layers_in_top(config, broke),
            }
        )
        for k, error in zip(curve.ks.tolist(), curve.train_error.tolist()):
            curves.append(
                {
                    "label": label,
                    "seed": int(run["seed"]),
                    "k": int(k),
                    "linear_layers": linear_layers_in_top(config, int(k)),
                    "train_error": float(error),
                }
            )
    return TrainedDepthStudy(
        table=pd.DataFrame(rows),
        taylor=pd.DataFrame(curves),
        depth=depth,
        width=int(depth_study.width),
        steps=int(depth_study.steps),
        data_name=data.name,
        seeds=seeds,
        threshold=threshold,
        tolerance=check_fraction("tolerance", tolerance),
    )


def trained_depth_evidence(
    *,
    data: str = "cifar10",
    device: Any = None,
    seeds: int | Sequence[int] | None = None,
    labels: Sequence[str] | None = None,
    progress: bool = False,
) -> TrainedDepthStudy:
    """The stored evidence's trained-depth study: the depth-50 networks of the stored depth-limit
    study on ``data`` (``"cifar10"`` or ``"digits"``), retrained in float32 and measured.

    ``seeds`` must be the stored study's (default); ``labels`` restricts the architectures (the
    integrity test recomputes one).
    """
    from explodegrad.core.scales import EVIDENCE
    from explodegrad.studies import stored

    data = check_choice("data", data, ("cifar10", "digits"))
    evidence = stored.load(f"depth-limit-{data}")
    study_seeds = tuple(evidence.result.seeds)
    if seeds is not None and tuple(resolve_seeds(seeds, len(study_seeds))) != study_seeds:
        raise ValueError(
            f"seeds={seeds!r} is not allowed: the stored depth-limit study used the seeds {study_seeds}"
        )
    scale = EVIDENCE if data == "cifar10" else EVIDENCE.with_(dataset="digits")
    dataset = resolve_data(
        scale=scale, seed=study_seeds[0], device=resolve_device(device), dtype=torch.float32
    )
    return trained_depth_study(evidence.result, dataset, labels=labels, progress=progress)
