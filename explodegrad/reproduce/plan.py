"""What a report runs: the scales, the searched learning rates, the table's architectures.

A :class:`ReportPlan` fixes the scale, the seed and the learning rates of every batched
search; :func:`make_plan` builds one from a scale name. The constants here are shared by the
parts, the claim checks and the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from explodegrad.claims.evidence import STACKED_SEED_STUDIES, setting
from explodegrad.core.checks import check_choice, check_int, check_positive
from explodegrad.core.scales import Scale, pick_scale
from explodegrad.studies.common import Architecture

#: Bumped whenever what a part stores changes; parts written under another format are recomputed
#: (2: each part carries the SHA-256 of its pickle and of its record).
FORMAT_VERSION = 2
#: The scales :func:`reproduce` knows. ``tiny`` is a seconds-long smoke test of the pipeline.
REPORT_SCALES = ("tiny", "quick", "paper")
#: A smoke-test size: every part runs in well under a second on a CPU; the numbers mean little.
TINY = Scale(
    name="tiny", depth=6, width=16, batch_size=32, train_steps=10, dataset="digits", n_train=256, n_test=128
)
#: Learning rates the batched searches try (SGD with momentum 0.9) at the CPU scales. 0.003 is
#: in because ReLU ResNets without normalization diverge at 0.01 and above (their residual
#: stream doubles its variance per block at initialization).
SEARCH_LRS = (0.003, 0.01, 0.03, 0.1)
#: The paper scale's grid: on a GPU the stacked sweep trains five rates for little more than one.
PAPER_LRS = (0.001, 0.003, 0.01, 0.03, 0.1)
#: The paper's network size, (depth, width).
PAPER_SIZE = (50, 100)
#: The rows of the architecture table: ReLU, tanh and SELU (each with its usual initializer)
#: times no, batch and layer normalization times plain and residual, and the looks-linear
#: ReLU network (the orthogonal initial state).
TABLE_ARCHITECTURES = tuple(
    Architecture(activation, norm, residual)
    for activation in ("relu", "tanh", "selu")
    for norm in ("none", "batch", "layer")
    for residual in (False, True)
) + (Architecture("relu", "none", init="looks_linear"),)
#: Residual architectures whose dilution is measured (chapter 06).
DILUTION_ARCHITECTURES = (
    Architecture("relu", "batch", True),
    Architecture("relu", "layer", True),
    Architecture("tanh", "none", True),
    Architecture("selu", "none", True),
)

Log = Callable[[str], Any]


@dataclass(frozen=True)
class ReportPlan:
    """What a report runs: the scale, the seed and the searched learning rates.

    Attributes:
        scale: the sizes (network, data set, training steps and batch).
        lrs: learning rates every batched search tries.
        seed: seed of every weight draw, minibatch order, measurement batch and probe.
        data_root: where CIFAR-10 is looked for (None: ``$EXPLODEGRAD_DATA``, then the cache).
            A plan with a ``data_root`` gives it to its scale too (``Scale.data_root``), so the
            claims' studies, which load the scale's data themselves, look there as well.
        paper_size_survey: also measure the survey at initialization at the paper's depth 50
            and width 100 (cheap; used when the scale's own networks are smaller).
        measure_search_models: measure each table row's effective depth and Taylor curve on
            the rate search's own networks at the chosen rate (kept at every record), instead
            of training that network again (True at the paper scale only, so the quick and
            tiny numbers, and the notebooks', stay as they are; see
            :func:`explodegrad.reproduce.parts.run_architecture`). Memory, estimated by
            :func:`explodegrad.reproduce.parts.search_checkpoint_bytes`: at the paper scale a
            row (CIFAR-10, depth 50, width 100) keeps 6 records (steps 0, 2,000, ..., 10,000)
            x 5 rates x about 0.8 M float32 numbers (793,110 parameters; normalized rows 9,800
            more, batch norm 9,800 running statistics and 49 counters on top): 90.8 MiB per row without
            normalization, 91.9 MiB with layer norm, 93.0 MiB with batch norm (1.7 GiB summed
            over the 19 rows, but only one part's rows are held at a time per process: at
            most 4 rows, about 363 MiB, with ``stack_table_rows``), on the device while they are
            measured, then dropped (not stored with the part). A search is refused with a
            ValueError when that plus its own training estimate (167-241 MiB per row at the
            paper scale) exceeds the memory limit sweeps use
            (:func:`explodegrad.training.sweep.memory_limit`).
        stack_table_rows: search the table rows that differ only in their activation (and
            initializer) in one sweep each, so that they train as one stacked group
            (:meth:`NetConfig.stack_key`): the 19 rows become 6 parts of 15-20 models instead of
            19 parts of 5 (True at the paper scale only; see
            :func:`explodegrad.reproduce.parts.run_table_rows`).
    """

    scale: Scale
    lrs: tuple[float, ...] = SEARCH_LRS
    seed: int = 0
    data_root: str | None = None
    paper_size_survey: bool = False
    measure_search_models: bool = False
    stack_table_rows: bool = False

    def __post_init__(self) -> None:
        root = None if self.data_root is None else str(self.data_root)
        if self.scale.dataset == "cifar10" and self.scale.data_root != root:
            object.__setattr__(self, "scale", self.scale.with_(data_root=root))

    @property
    def claim_seeds(self) -> tuple[int, ...]:
        """The seeds the claims are judged over: the scale's ``num_seeds`` from ``seed`` on."""
        return tuple(range(self.seed, self.seed + self.scale.num_seeds))

    def describe(self) -> str:
        """One line: the scale and the searched learning rates (and, when set, the measuring route)."""
        rates = ", ".join(f"{lr:g}" for lr in self.lrs)
        route = "; effective depth measured on the search's own models" if self.measure_search_models else ""
        if self.stack_table_rows:
            route += "; table rows of one shape searched together"
        if setting(self.scale).stack_seeds:
            studies = ", ".join(STACKED_SEED_STUDIES[:-1]) + f" and {STACKED_SEED_STUDIES[-1]}"
            route += f"; the claims' {studies} studies train their seeds together on one minibatch order"
        return (
            f"{self.scale.describe()}; learning rates searched: {rates}; seed {self.seed} (claims: "
            f"{len(self.claim_seeds)} seeds){route}"
        )


def report_scale(name: str, data_root: str | os.PathLike | None = None, steps: int | None = None) -> Scale:
    """The :class:`Scale` of a report: ``tiny``, ``quick`` or ``paper`` (optionally fewer/more steps).

    ``paper`` falls back to the bundled digits when CIFAR-10 is not found (its ``reason``
    says so), as :func:`explodegrad.core.scales.pick_scale` does.
    """
    name = check_choice("scale", name, REPORT_SCALES)
    if name == "tiny":
        scale = TINY.with_(reason="a smoke test of the pipeline; the numbers mean little")
    else:
        scale = pick_scale(override=name, data_root=data_root)
    if steps is not None:
        steps = check_int("steps", steps, 1)
        scale = scale.with_(train_steps=steps, reason=f"{scale.reason}; training steps set to {steps}")
    return scale


def make_plan(
    scale: str | Scale = "quick",
    *,
    steps: int | None = None,
    seed: int = 0,
    data_root: str | os.PathLike | None = None,
    lrs: Sequence[float] | None = None,
) -> ReportPlan:
    """A :class:`ReportPlan` for a scale name (or a :class:`Scale` of your own).

    Args:
        scale: ``"tiny"``, ``"quick"``, ``"paper"`` or a :class:`Scale`.
        steps: training steps of every training run (default: the scale's).
        seed: the seed of everything.
        data_root: where CIFAR-10 is looked for.
        lrs: learning rates to search (default :data:`PAPER_LRS` at the paper scale,
            :data:`SEARCH_LRS` otherwise).
    """
    if isinstance(scale, Scale):
        chosen = scale if steps is None else scale.with_(train_steps=check_int("steps", steps, 1))
    else:
        chosen = report_scale(scale, data_root, steps)
    if lrs is None:
        lrs = PAPER_LRS if chosen.name == "paper" else SEARCH_LRS
    rates = tuple(check_positive("lrs", lr) for lr in lrs)
    if not rates:
        raise ValueError("lrs=() is not allowed: give at least one learning rate to search")
    paper_size = (chosen.depth, chosen.width) != PAPER_SIZE and chosen.name != "tiny"
    return ReportPlan(
        scale=chosen,
        lrs=rates,
        seed=check_int("seed", seed, 0),
        data_root=None if data_root is None else str(data_root),
        paper_size_survey=paper_size,
        measure_search_models=chosen.name == "paper",
        stack_table_rows=chosen.name == "paper",
    )
