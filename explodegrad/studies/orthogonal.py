"""Chapter 8: the orthogonal initial state (looks-linear initialization) against its baseline,
trained over several seeds (:func:`orthogonal_initial_state`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from explodegrad.core.checks import check_bool, check_fraction, check_int
from explodegrad.core.data import Dataset
from explodegrad.core.nets import build_from_config
from explodegrad.core.scales import Scale
from explodegrad.core.seeds import resolve_seeds, seed_table, seed_values
from explodegrad.measures.gsc import gsc_profile
from explodegrad.studies.common import (
    Architecture,
    StudyResult,
    resolve_data,
    resolve_scale,
    study_settings,
)
from explodegrad.studies.effective_depth import train_together
from explodegrad.training.loop import TrainHistory, TrainSettings, train

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = (
    "08/looks-linear-starts-at-one",
    "08/orthogonal-trains-faster",
    "08/orthogonal-state-is-left",
)

#: The orthogonal-initial-state study's default architectures: the usual He-initialized ReLU
#: network, the same network in the looks-linear orthogonal initial state, and tanh with
#: orthogonal weights (tanh is nearly the identity near 0, so that start is nearly orthogonal).
ORTHOGONAL_ARCHITECTURES = (
    Architecture("relu", "none", init="he"),
    Architecture("relu", "none", init="looks_linear"),
    Architecture("tanh", "none", init="orthogonal"),
)


#: Training error that counts as "trained" for :func:`steps_to_error`.
DEFAULT_TARGET_ERROR = 0.1


def steps_to_error(history: TrainHistory, target: float = DEFAULT_TARGET_ERROR) -> int | None:
    """The first recorded step whose training error is at most ``target`` (None: never)."""
    target = check_fraction("target", target)
    reached = np.flatnonzero(np.asarray(history.train_error) <= target)
    return int(history.steps[reached[0]]) if reached.size else None


@dataclass(frozen=True, eq=False)  # holds arrays and a DataFrame: compare fields, not results
class OrthogonalStateResult(StudyResult):
    """GSC and training error of several initial states, at every checkpoint.

    Attributes:
        names: the architectures (:attr:`~explodegrad.studies.common.Architecture.name`), in the order given.
        steps: name -> the checkpoints (0 = initialization).
        hidden_gsc: name -> GSC(L, 2), first layer to last hidden layer, per checkpoint.
        rate: name -> the fitted explosion rate r of GSC(k, 0), per checkpoint.
        train_error: name -> the recorded training error, per checkpoint.
        histories: name -> its :class:`~explodegrad.training.loop.TrainHistory`.
            ``steps``, ``hidden_gsc``, ``rate``, ``train_error`` and ``histories`` hold the
            first seed's runs (what the plots draw); ``table`` holds every seed's numbers.
        table: one row per (architecture, seed): name, seed, activation, init, depth,
            hidden_gsc_init, rate_init, hidden_gsc_final, rate_final, steps_to_target
            (nullable: never reached), final_train_error, final_test_error.
        target_error: the error :func:`steps_to_error` waits for.
        seeds: the seeds.
    """

    names: list[str]
    steps: dict[str, np.ndarray]
    hidden_gsc: dict[str, np.ndarray]
    rate: dict[str, np.ndarray]
    train_error: dict[str, np.ndarray]
    histories: dict[str, TrainHistory]
    table: pd.DataFrame
    target_error: float
    seeds: tuple[int, ...] = (0,)

    def values(self, name: str, column: str) -> np.ndarray:
        """One value of ``table[column]`` per seed for the initial state ``name`` (NaN: never reached)."""
        return seed_values(self.table, column, name=name)

    def summary(self) -> str:
        """Per initial state: GSC(L, 2) and the rate at the start and the end, the steps to the
        target error and the final error, each as the median [min, max] over the seeds."""
        frame = self.table.copy()
        frame["steps_to_target"] = frame["steps_to_target"].astype("Float64").astype(float)
        table = seed_table(
            frame,
            ["name"],
            {
                "hidden_gsc_init": "GSC(L,2) init",
                "rate_init": "r init",
                "hidden_gsc_final": "GSC(L,2) end",
                "rate_final": "r end",
                "steps_to_target": f"steps to err<={self.target_error:g}",
                "final_train_error": "train err",
            },
            {"hidden_gsc_init": ".3f", "rate_init": ".3f", "rate_final": ".3f", "final_train_error": ".3f"},
        )
        return (
            f"median [min, max] over {len(self.seeds)} seeds (n/a: never reached)\n"
            f"{table.rename(columns={'name': 'initial state'}).to_string(index=False)}"
        )


def orthogonal_initial_state(
    architectures: Sequence[Architecture] | None = None,
    *,
    scale: Scale | None = None,
    device: Any = None,
    data: Dataset | str | None = None,
    seeds: int | Sequence[int] | None = None,
    settings: TrainSettings | None = None,
    depth: int | None = None,
    width: int | None = None,
    measure_size: int = 256,
    target_error: float = DEFAULT_TARGET_ERROR,
    progress: bool = False,
    stack_seeds: bool = False,
) -> OrthogonalStateResult:
    """Train each initial state and measure its GSC at every checkpoint.

    Args:
        architectures: :class:`~explodegrad.studies.common.Architecture` s with their ``init``
            (default :data:`ORTHOGONAL_ARCHITECTURES`; ``looks_linear`` needs ReLU, no norm,
            an even width).
        scale: sizes of :mod:`explodegrad.core.scales` (default QUICK).
        device: where to run (:func:`~explodegrad.core.device.resolve_device`; default the
            data's, else the setup's choice).
        data: a Dataset, a data set name or None (:func:`~explodegrad.studies.common.resolve_data`:
            the scale's, float64 on the CPU; a given Dataset is used in its own dtype).
        seeds: a count or the seeds themselves (default: the scale's ``num_seeds``); each
            seeds the weights, the minibatches (the first seed's for all with ``stack_seeds``),
            the measurement batch and the probes.
        settings: training settings (default :func:`~explodegrad.studies.common.study_settings`).
        depth, width: override the scale's network size.
        measure_size: examples of the fixed training batch the GSC is measured on.
        target_error: the training error :func:`steps_to_error` waits for.
        progress: show progress bars.
        stack_seeds: train every (initial state, seed) in one sweep
            (:func:`~explodegrad.studies.effective_depth.train_together`) and measure the kept
            networks at each record: a few batched loops instead of one per network (what a
            GPU needs at the paper scale). Every seed then trains on the first seed's minibatch
            order (its weights stay its own), so the numbers differ from the default.
    """
    scale = resolve_scale(scale)
    seeds = resolve_seeds(seeds, scale.num_seeds)
    data = resolve_data(data, scale=scale, seed=seeds[0], device=device)
    chosen = list(ORTHOGONAL_ARCHITECTURES if architectures is None else architectures)
    if not chosen:
        raise ValueError("architectures=[] is not allowed: give at least one Architecture")
    if not all(isinstance(a, Architecture) for a in chosen):
        raise TypeError(
            f"architectures={architectures!r} is not allowed: give Architecture s, e.g. "
            "Architecture('relu', 'none', init='looks_linear')"
        )
    target_error = check_fraction("target_error", target_error)
    settings = study_settings(scale) if settings is None else settings
    depth = check_int("depth", scale.depth if depth is None else depth, 4)
    width = check_int("width", scale.width if width is None else width, 2)
    measure_size = check_int("measure_size", min(measure_size, len(data.x_train)), 2)
    names = [a.name for a in chosen]
    if len(set(names)) != len(names):
        raise ValueError(f"architectures: the names {names} repeat; give each architecture once")
    stack_seeds = check_bool("stack_seeds", stack_seeds)
    trained = None
    if stack_seeds:
        configs = {
            (name, seed): a.config(depth, width, data.in_features, data.num_classes, seed)
            for seed in seeds
            for a, name in zip(chosen, names)
        }
        trained = train_together(configs, data, settings.with_(seed=seeds[0]), progress=progress)
    steps, hidden, rates, errors, histories, rows = {}, {}, {}, {}, {}, []
    for seed in seeds:
        inputs, targets = data.batch(measure_size, seed=seed)
        for architecture, name in zip(chosen, names):
            config = architecture.config(depth, width, data.in_features, data.num_classes, seed)
            records: list[tuple[int, float, float]] = []

            def measure(
                step: int,
                net: Any,
                records: list = records,
                inputs: Any = inputs,
                targets: Any = targets,
                seed: int = seed,
            ) -> None:
                between_hidden = gsc_profile(net, inputs, targets, reference=2, seed=seed)
                to_loss = gsc_profile(net, inputs, targets, reference=0, seed=seed)
                records.append((step, between_hidden.first_layer_gsc, to_loss.fit.rate))

            if trained is None:
                net = build_from_config(config, device=data.device, dtype=data.x_train.dtype)
                history = train(
                    net,
                    data,
                    settings.with_(seed=seed),
                    progress=progress,
                    callback=lambda step, _history, net=net, measure=measure: measure(step, net),
                )
            else:
                kept = trained[(name, seed)]
                for step, net in kept.networks:
                    measure(step, net)
                history = kept.history
            recorded = dict(zip(history.steps.tolist(), history.train_error.tolist()))
            run_steps = np.array([r[0] for r in records], dtype=int)
            run_hidden = np.array([r[1] for r in records], dtype=float)
            run_rates = np.array([r[2] for r in records], dtype=float)
            if seed == seeds[0]:
                steps[name], hidden[name], rates[name] = run_steps, run_hidden, run_rates
                errors[name] = np.array([recorded[s] for s in run_steps], dtype=float)
                histories[name] = history
            rows.append(
                {
                    "name": name,
                    "seed": seed,
                    "activation": config.activation,
                    "init": config.init,
                    "depth": config.depth,
                    "hidden_gsc_init": run_hidden[0],
                    "rate_init": run_rates[0],
                    # a diverged run's last measurement is of the network before it diverged
                    "hidden_gsc_final": math.nan if history.diverged else run_hidden[-1],
                    "rate_final": math.nan if history.diverged else run_rates[-1],
                    "steps_to_target": steps_to_error(history, target_error),
                    "final_train_error": history.final_train_error,
                    "final_test_error": history.final_test_error,
                }
            )
    table = pd.DataFrame(rows)
    table["steps_to_target"] = table["steps_to_target"].astype("Int64")
    return OrthogonalStateResult(
        names=names,
        steps=steps,
        hidden_gsc=hidden,
        rate=rates,
        train_error=errors,
        histories=histories,
        table=table,
        target_error=target_error,
        seeds=seeds,
    )
