"""The training loop, for one network or many, recording what the course plots.

:func:`train_stack` is the one loop: it trains a :class:`~explodegrad.training.stacked.NetStack`
(one or many networks run together as batched matrix products) with SGD (with momentum), Adam or
RMSprop, an optional schedule and gradient clipping. :func:`train` runs it on a stack of one
:class:`~explodegrad.core.nets.DeepMLP` and returns a :class:`TrainHistory`: train and test
loss and error, per-layer gradient norms and relative update sizes, optional GSC and domain
measurements, and where training diverged; :func:`explodegrad.training.sweep.sweep` runs it on
groups of many.

Conventions (the same for one network and a sweep, so a sweep of one configuration reproduces
``train()`` step for step):

* Update t (1-based) draws minibatch t, computes the mean cross-entropy, its gradient, and
  checks both are finite. If not, the run stops *before* applying update t and records
  ``diverged_step = t`` and ``diverged_layer``: 0 when the loss f_0 itself is not finite (the
  forward pass overflowed), otherwise the smallest k (paper numbering, 1 = readout) whose
  parameters have a non-finite gradient. Backpropagation reaches layers 1, 2, ..., L in that
  order, so this is where the backward signal first overflowed.
* Minibatches come from :func:`minibatches`: a fresh seeded permutation per epoch, cut into
  full batches (a last partial batch is dropped, so every batch has ``batch_size`` examples).
* Between *sync points* (records, measurements, the last step) nothing is read back from the
  device: the minibatch indices are slices of a per-epoch permutation already there, and the
  divergence checks update device flags (:class:`DivergenceFlags`) that a sync point reads
  in one copy. A run whose every model diverged therefore stops at the next sync point, not
  at once (the masked steps in between change nothing). The step itself is
  :func:`stack_update`; with ``train_stack(cuda_graphs=True)`` (what ``sweep(cuda_graphs=True)`` asks for) a
  CUDA device replays the steps between records from one captured graph
  (:mod:`explodegrad.training.graphs`), with the same arithmetic.
* Records are taken at step 0 (the initial network) and after every ``record_every``
  updates and after the last. Losses and errors are measured on fixed evaluation subsets of
  ``eval_size`` examples of each split, in one pass in training mode: **batch norm uses the
  statistics of the evaluation batch**, without touching the running averages. The gradient
  norms and update ratios of a record belong to the update that produced it (NaN at step 0).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from explodegrad.core.checks import check_bool, check_choice, check_fraction, check_int, check_positive
from explodegrad.core.config import NetConfig
from explodegrad.core.data import Dataset
from explodegrad.core.nets import DeepMLP, build_from_config
from explodegrad.core.trace import first_overflow_layer
from explodegrad.measures.domain import domain_stats
from explodegrad.measures.gsc import gsc_profile
from explodegrad.training.graphs import GraphedStep
from explodegrad.training.optimizers import (
    OPTIMIZERS,
    SCHEDULES,
    Hyperparameters,
    OptimizerState,
    adam_bias_corrections,
    apply_update,
    clip_gradients,
    column,
    init_state,
    schedule_factor,
)
from explodegrad.training.stacked import (  # layer_slices: re-exported, its home moved
    NetStack,
    layer_slices,
    per_layer_norms,
)

__all__ = [
    "DivergenceFlags",
    "Measurement",
    "RunRecords",
    "TrainHistory",
    "TrainSettings",
    "check_run",
    "divergence_message",
    "evaluation_sets",
    "finite_units",
    "guarded_gradients",
    "layer_slices",
    "minibatches",
    "stack_hyperparameters",
    "stack_update",
    "train",
    "train_stack",
]


def _check_rate(argument: str, value: Any) -> float:
    """A decay rate in ``[0, 1)``."""
    number = check_positive(argument, value, allow_zero=True)
    if number >= 1:
        raise ValueError(f"{argument}={value!r} is not allowed: {argument} must lie in [0, 1)")
    return number


def _optional(check: Callable[..., Any], argument: str, value: Any, *args: Any) -> Any:
    return None if value is None else check(argument, value, *args)


@dataclass(frozen=True)
class TrainSettings:
    """How to train: optimizer, learning rate, schedule, clipping, length and records.

    Attributes:
        optimizer: ``"sgd"`` (with heavy-ball momentum), ``"adam"`` or ``"rmsprop"``.
        lr: base learning rate (> 0).
        momentum: SGD momentum in [0, 1) (0: plain SGD). Ignored by Adam and RMSprop.
        betas: Adam's decay rates, each in [0, 1).
        alpha: RMSprop's decay rate in [0, 1).
        eps: Adam's and RMSprop's denominator guard.
        weight_decay: L2 penalty (>= 0) added to the gradient after clipping.
        schedule: ``"constant"``, ``"step"`` (times ``gamma`` at each milestone) or
            ``"cosine"`` (down to 0 at the end).
        gamma: the step schedule's factor, in (0, 1].
        milestones: fractions of the run, in (0, 1), where the step schedule decays.
        clip_norm: bound on the global gradient norm (None: off).
        clip_value: bound on every gradient entry (None: off); applied after ``clip_norm``.
        steps: number of updates (used when ``epochs`` is None).
        epochs: passes over the training set; when given it replaces ``steps`` (an epoch is
            ``n_train // batch_size`` updates).
        batch_size: examples per minibatch.
        record_every: updates between records of loss, error and gradient norms.
        measure_every: updates between GSC and domain measurements (None: never).
        measure_size: examples in the fixed batch the measurements use.
        eval_size: examples of each split used for the recorded loss and error (a fixed
            seeded subset; None: the whole split).
        seed: seed of the minibatch order and of the evaluation subsets (the weights are
            seeded by the network's own configuration).
    """

    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    schedule: str = "constant"
    gamma: float = 0.1
    milestones: tuple[float, ...] = (0.5, 0.75)
    clip_norm: float | None = None
    clip_value: float | None = None
    steps: int = 200
    epochs: int | None = None
    batch_size: int = 64
    record_every: int = 20
    measure_every: int | None = None
    measure_size: int = 256
    eval_size: int | None = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "optimizer", check_choice("optimizer", self.optimizer, OPTIMIZERS))
        set_(self, "lr", check_positive("lr", self.lr))
        set_(self, "momentum", _check_rate("momentum", self.momentum))
        if not isinstance(self.betas, (tuple, list)):
            raise TypeError(
                f"betas={self.betas!r} is not allowed: betas must be a pair (beta1, beta2), "
                f"got {type(self.betas).__name__}"
            )
        betas = tuple(self.betas)
        if len(betas) != 2:
            raise ValueError(f"betas={self.betas!r} is not allowed: betas must be a pair (beta1, beta2)")
        set_(self, "betas", (_check_rate("betas[0]", betas[0]), _check_rate("betas[1]", betas[1])))
        set_(self, "alpha", _check_rate("alpha", self.alpha))
        set_(self, "eps", check_positive("eps", self.eps))
        set_(self, "weight_decay", check_positive("weight_decay", self.weight_decay, allow_zero=True))
        set_(self, "schedule", check_choice("schedule", self.schedule, SCHEDULES))
        set_(self, "gamma", check_fraction("gamma", self.gamma))
        if not isinstance(self.milestones, (tuple, list)):
            raise TypeError(
                f"milestones={self.milestones!r} is not allowed: milestones must be a "
                f"tuple of fractions in (0, 1), got {type(self.milestones).__name__}"
            )
        milestones = tuple(self.milestones)
        set_(
            self,
            "milestones",
            tuple(check_fraction("milestones", m, inclusive_high=False) for m in milestones),
        )
        set_(self, "clip_norm", _optional(check_positive, "clip_norm", self.clip_norm))
        set_(self, "clip_value", _optional(check_positive, "clip_value", self.clip_value))
        set_(self, "steps", check_int("steps", self.steps, 1))
        set_(self, "epochs", _optional(check_int, "epochs", self.epochs, 1))
        set_(self, "batch_size", check_int("batch_size", self.batch_size, 1))
        set_(self, "record_every", check_int("record_every", self.record_every, 1))
        set_(self, "measure_every", _optional(check_int, "measure_every", self.measure_every, 1))
        set_(self, "measure_size", check_int("measure_size", self.measure_size, 1))
        set_(self, "eval_size", _optional(check_int, "eval_size", self.eval_size, 1))
        set_(self, "seed", check_int("seed", self.seed, 0))

    def with_(self, **changes: Any) -> TrainSettings:
        """A copy with some fields changed (validated again; unknown names are refused)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:  # a misspelt name, as Python's own unknown keyword: TypeError (NetConfig.with_ too)
            raise TypeError(
                f"{unknown[0]}={changes[unknown[0]]!r} is not a training setting: "
                f"known settings are {', '.join(sorted(known))}"
            )
        return replace(self, **changes)

    def total_steps(self, n_train: int) -> int:
        """Updates in the run for a training set of ``n_train`` examples."""
        if self.epochs is None:
            return self.steps
        return self.epochs * (n_train // self.batch_size)

    @property
    def clip_kind(self) -> str:
        """``"none"``, ``"norm"``, ``"value"`` or ``"norm+value"``."""
        kinds = [k for k, v in (("norm", self.clip_norm), ("value", self.clip_value)) if v is not None]
        return "+".join(kinds) or "none"

    def group_key(self) -> tuple:
        """What must agree for runs to train as one stacked group.

        Everything but the per-model numbers (lr, momentum, betas, alpha, weight decay and the
        clipping bounds; whether each clipping is on must agree).
        """
        per_model = {"lr", "momentum", "betas", "alpha", "weight_decay", "clip_norm", "clip_value"}
        shared = tuple((f.name, getattr(self, f.name)) for f in fields(self) if f.name not in per_model)
        return (*shared, ("clip_kind", self.clip_kind))

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, for tables and JSON."""
        return asdict(self)


def stack_hyperparameters(
    settings: Sequence[TrainSettings], device: torch.device | str | None, dtype: torch.dtype
) -> Hyperparameters:
    """The per-model hyperparameter columns of a group of runs (one row per run)."""
    col = lambda values, **kw: column(values, device, dtype, **kw)  # noqa: E731
    return Hyperparameters(
        lr=col([s.lr for s in settings], zero_is_off=False),
        momentum=col([s.momentum for s in settings]),
        beta1=col([s.betas[0] for s in settings], zero_is_off=False),
        beta2=col([s.betas[1] for s in settings], zero_is_off=False),
        alpha=col([s.alpha for s in settings], zero_is_off=False),
        eps=settings[0].eps,
        weight_decay=col([s.weight_decay for s in settings]),
        clip_norm=col([s.clip_norm for s in settings]),
        clip_value=col([s.clip_value for s in settings]),
    )


def minibatches(
    n: int, batch_size: int, seed: int, device: torch.device | str | None = None
) -> Iterator[Tensor]:
    """Endless minibatch indices: a seeded permutation per epoch, cut into full batches.

    The permutation is drawn on the CPU, so the same ``seed`` gives the same sequence on every
    device and ``train()`` and ``sweep()`` see the same minibatches; it is moved to ``device``
    (default: the CPU) once per epoch, so the batches are slices already there. On a CUDA
    device the copy is asynchronous (from pinned memory): the host does not wait for the GPU.
    """
    n = check_int("n", n, 1)
    batch_size = check_int("batch_size", batch_size, 1, n)
    generator = torch.Generator().manual_seed(seed)
    device = torch.device("cpu") if device is None else torch.device(device)
    while True:
        order = torch.randperm(n, generator=generator)
        if device.type == "cuda":
            order = order.pin_memory().to(device, non_blocking=True)
        else:
            order = order.to(device)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def evaluation_sets(data: Dataset, eval_size: int | None, seed: int) -> dict[str, tuple[Tensor, Tensor]]:
    """The fixed train and test subsets that records are measured on."""
    subsets = {}
    for split, x in (("train", data.x_train), ("test", data.x_test)):
        size = int(x.shape[0]) if eval_size is None else min(eval_size, int(x.shape[0]))
        subsets[split] = data.batch(size, seed=seed, split=split)
    return subsets


def check_run(config: NetConfig, data: Dataset, settings: TrainSettings) -> int:
    """Raise ``ValueError`` when ``config`` cannot train on ``data``; return the run's update count."""
    if config.in_features != data.in_features or config.out_features != data.num_classes:
        raise ValueError(
            f"config: in_features={config.in_features}, out_features={config.out_features} do not "
            f"match the data ({data.in_features} features, {data.num_classes} classes); use "
            f"config.with_(in_features={data.in_features}, out_features={data.num_classes})"
        )
    n_train = int(data.x_train.shape[0])
    if settings.batch_size > n_train:
        raise ValueError(
            f"batch_size={settings.batch_size} is not allowed: the training set has only {n_train} examples"
        )
    for name in ("batch_size", "eval_size", "measure_size"):
        value = getattr(settings, name)
        if config.norm == "batch" and value is not None and value < 2:
            raise ValueError(
                f"{name}={value} is not allowed with norm='batch': batch statistics need at least 2 examples"
            )
    return settings.total_steps(n_train)


def divergence_message(step: int, layer: int | None) -> str:
    """The sentence a history or sweep summary gives for a diverged run."""
    if layer == 0:
        return f"diverged at step {step}: the loss is not finite (the forward pass overflowed)"
    return f"diverged at step {step}: the gradient of layer {layer} (paper numbering) is not finite"


@dataclass
class Measurement:
    """GSC profile and domain statistics of the network at one step (on a fixed batch)."""

    step: int
    gsc: Any
    domain: Any


@dataclass
class TrainHistory:
    """What one training run recorded (numbers only; :mod:`explodegrad.plots` draws it).

    Attributes:
        label: the configuration's short name.
        config: the network's configuration.
        settings: the training settings used.
        layers: paper layer numbers 1 ... L, the columns of ``grad_norms``/``update_ratio``.
        steps: update count at each record (0 = the initial network).
        train_loss, train_error, test_loss, test_error: mean cross-entropy and error rate on
            the fixed evaluation subsets.
        learning_rate: the rate applied by the update of each record (NaN at step 0).
        grad_norms: (records x layers) Euclidean norm of each layer's gradient before
            clipping, for the update of the record (NaN at step 0).
        update_ratio: (records x layers) ``||delta theta_k|| / ||theta_k||`` of that update.
        measurements: GSC/domain measurements every ``measure_every`` updates.
        diverged, diverged_step, diverged_layer, message: where and why training stopped
            (layer 0: the loss; k >= 1: the first layer with a non-finite gradient).
        final_train_loss, final_train_error, final_test_loss, final_test_error: the last
            record, or NaN when the run diverged.
        steps_done: updates applied.
        wall_time: seconds.
        step_path: how the steps between records ran, ``"cuda-graph"`` or ``"eager"``
            (``train(cuda_graphs=True)`` on a CUDA device), and ``step_note`` why eagerly there;
            how it ran, not what it found, so neither enters the JSON.
    """

    label: str
    config: NetConfig
    settings: TrainSettings
    layers: np.ndarray
    steps: np.ndarray
    train_loss: np.ndarray
    train_error: np.ndarray
    test_loss: np.ndarray
    test_error: np.ndarray
    learning_rate: np.ndarray
    grad_norms: np.ndarray
    update_ratio: np.ndarray
    measurements: list[Measurement] = field(default_factory=list)
    diverged: bool = False
    diverged_step: int | None = None
    diverged_layer: int | None = None
    message: str = ""
    final_train_loss: float = math.nan
    final_train_error: float = math.nan
    final_test_loss: float = math.nan
    final_test_error: float = math.nan
    steps_done: int = 0
    wall_time: float = 0.0
    step_path: str = field(default="eager", metadata={"serialize": False})
    step_note: str = field(default="", metadata={"serialize": False})

    def as_frame(self) -> Any:
        """The per-record curves as a tidy pandas DataFrame (one row per record)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "label": self.label,
                "step": self.steps,
                "train_loss": self.train_loss,
                "train_error": self.train_error,
                "test_loss": self.test_loss,
                "test_error": self.test_error,
                "learning_rate": self.learning_rate,
            }
        )


@dataclass
class RunRecords:
    """What one model of a stacked run recorded; :func:`train_stack` returns one per model.

    Attributes:
        rows: one ``(step, train_loss, train_error, test_loss, test_error, lr)`` per record.
        grad_norms, update_ratios: per record, the per-layer gradient norm (before clipping)
            and relative update size of the update that produced it (NaN at step 0).
        diverged_step, diverged_layer: where the model's loss or gradient stopped being
            finite (see :mod:`explodegrad.training.loop`), or None.
        diverged_batch: the minibatch indices of that step, for a closer look.
        steps_done: updates applied to the model.
        step_path: how the steps between records ran: ``"cuda-graph"`` or ``"eager"``.
        step_note: why a step on a CUDA device ran eagerly (empty otherwise).
    """

    rows: list[tuple[int, float, float, float, float, float]] = field(default_factory=list)
    grad_norms: list[np.ndarray] = field(default_factory=list)
    update_ratios: list[np.ndarray] = field(default_factory=list)
    diverged_step: int | None = None
    diverged_layer: int | None = None
    diverged_batch: Tensor | None = None
    steps_done: int = 0
    step_path: str = "eager"
    step_note: str = ""


@dataclass
class DivergenceFlags:
    """Which models still train, and where the others stopped: device tensors, read at sync points.

    The training step updates them without a host round trip (see :func:`guarded_gradients`);
    :meth:`read` brings them to the host in one transfer.

    Attributes:
        active: ``(models, 1)`` True while the model's loss and gradient have stayed finite.
        step: ``(models,)`` the update whose loss or gradient first was not finite (0: none yet).
        where: ``(models,)`` -1 when that loss was not finite, else the smallest paper layer
            number whose gradient has a NaN or an infinity (0: none yet).
        layers: ``(layers,)`` the paper layer numbers of the network's units in forward order
            (L ... 1), on the device.
    """

    active: Tensor
    step: Tensor
    where: Tensor
    layers: Tensor

    @classmethod
    def fresh(cls, num_models: int, num_layers: int, device: torch.device) -> DivergenceFlags:
        """Every model active."""
        return cls(
            active=torch.ones(num_models, 1, dtype=torch.bool, device=device),
            step=torch.zeros(num_models, dtype=torch.int64, device=device),
            where=torch.zeros(num_models, dtype=torch.int64, device=device),
            layers=torch.arange(num_layers, 0, -1, dtype=torch.int64, device=device),
        )

    def read(self) -> np.ndarray:
        """``(2, models)`` on the host: the divergence step and place of every model (one copy)."""
        return torch.stack([self.step, self.where]).cpu().numpy()


def _finite(values: Tensor) -> Tensor:
    """``torch.isfinite`` in two kernels instead of four: ``x * 0`` is 0 exactly when x is finite."""
    return values.mul(0).eq(0)


def finite_units(grads: Tensor, unit_runs: Sequence[tuple[int, int, int]]) -> Tensor:
    """``(models, units)``: whether each unit's part of each gradient row is finite.

    No full-size write: the smallest and largest entry of each unit (``amin`` and ``amax``,
    which return NaN when a NaN is among the values) are finite exactly when every entry is,
    and summing nothing, nothing overflows. Units of equal size side by side (``unit_runs``:
    start column, units, size) are one ``(models, units, size)`` view, so a
    :class:`~explodegrad.core.nets.DeepMLP` takes six reductions (first layer, the equal middle
    ones, readout), however deep. (``aminmax`` would read once, but on the CPU it ran 13x slower
    than ``amin`` and ``amax`` together, ``benchmarks/bench_guard.py``.)
    """
    units = [grads[:, start : start + count * size].view(-1, count, size) for start, count, size in unit_runs]
    lows_then_highs = torch.cat([u.amin(dim=2) for u in units] + [u.amax(dim=2) for u in units], dim=1)
    return _finite(lows_then_highs).view(len(grads), 2, -1).all(dim=1)


def guarded_gradients(
    stack: NetStack, x: Tensor, y: Tensor, step: int | Tensor, flags: DivergenceFlags
) -> Tensor:
    """The flat gradient of every model on one batch, zero for models that stopped training.

    A model whose loss or gradient is not finite at this ``step`` (an int, or a 0-d int64 device
    tensor in a captured CUDA graph) is marked in ``flags`` (its step and place) and masked from
    now on. Everything stays on the device and ``flags`` change in place: no value is read back
    and no tensor is replaced, so a GPU runs ahead until the loop's next sync point and a CUDA
    graph of the step keeps reading and writing the same flags.
    """
    losses, _ = stack.losses(x, y)
    loss_finite = _finite(losses)
    grads = stack.gradients(torch.where(loss_finite, losses, 0.0).sum())
    unit_finite = finite_units(grads, stack.unit_runs)
    first_bad = torch.where(unit_finite, len(flags.layers) + 1, flags.layers).amin(dim=1)
    finite = loss_finite & unit_finite.all(dim=1)
    newly = flags.active.squeeze(1) & ~finite
    flags.step.copy_(torch.where(newly, step, flags.step))
    flags.where.copy_(torch.where(newly, torch.where(loss_finite, first_bad, -1), flags.where))
    flags.active.logical_and_(finite.unsqueeze(1))
    return torch.where(flags.active, grads, 0.0)


def stack_update(
    stack: NetStack,
    data: Dataset,
    index: Tensor,
    step: int | Tensor,
    factor: float | Tensor,
    flags: DivergenceFlags,
    state: OptimizerState,
    hyper: Hyperparameters,
    *,
    recording: bool = False,
) -> tuple[Tensor, Tensor] | None:
    """One update of every model of ``stack`` on minibatch ``index``: the step :func:`train_stack` takes.

    Guarded gradients (:func:`guarded_gradients`), clipping, and the optimizer's update with the
    learning rates times the schedule's ``factor`` (models that stopped get rate 0). ``step``
    and ``factor`` are numbers, or 0-d device tensors when a CUDA graph replays the step
    (:class:`~explodegrad.training.graphs.GraphedStep`). Nothing is read back to the host.

    Returns:
        With ``recording``: the per-layer gradient norms before clipping and a copy of the
        parameters before the update; otherwise None.
    """
    grads = guarded_gradients(stack, data.x_train[index], data.y_train[index], step, flags)
    if recording:
        grad_norms = per_layer_norms(grads, stack.layer_slices)
        before = stack.params.clone()
    grads = clip_gradients(grads, hyper.clip_norm, hyper.clip_value)
    apply_update(stack.params, grads, state, hyper, hyper.lr * factor * flags.active, step)
    return (grad_norms, before) if recording else None


def train_stack(
    stack: NetStack,
    data: Dataset,
    settings: Sequence[TrainSettings],
    *,
    bar: Any = None,
    on_step: Callable[[int], Any] | None = None,
    on_record: Callable[[int, list[RunRecords]], bool] | None = None,
    cuda_graphs: bool = True,
) -> list[RunRecords]:
    """The training loop: train every model of ``stack`` together, one setting per model.

    :func:`train` runs it on a stack of one network and :func:`explodegrad.training.sweep.sweep`
    on a group of many, so one network and a sweep take the same steps. A model whose loss or
    gradient stops being finite is masked from then on (its gradient zeroed, its learning
    rate 0) and its values never enter another model's arithmetic.

    Between *sync points* (the record steps, the measurement steps of ``measure_every`` and
    the last step) a step reads nothing back from the device: indices, divergence flags and
    the schedule live there or are known on the host in advance. At a sync point the
    divergence flags are read once; the loop ends there when every model has diverged (the
    steps since cost only time: masked models do not change).

    Args:
        stack: the networks, trained in place.
        data: the data set, on the stack's device and in its dtype.
        settings: one :class:`TrainSettings` per model, equal in :meth:`TrainSettings.group_key`.
        bar: a tqdm bar advanced by one per update (None: none).
        on_step: called with 0 before training and with t after update t (a model's
            divergence is known from the sync point at or after it).
        on_record: called with the step and the records after every record; True stops.
        cuda_graphs: on a CUDA device, replay the steps between records from a CUDA graph
            (:class:`~explodegrad.training.graphs.GraphedStep`; record steps run eagerly;
            Adam looks its bias corrections up by the device's step number,
            :func:`~explodegrad.training.optimizers.adam_bias_corrections`, the same bits).
            Ignored on the CPU, where every step runs eagerly. The path taken is in each record's
            ``step_path`` and ``step_note``.
    """
    if not isinstance(stack, NetStack):
        raise TypeError(f"stack: expected a NetStack, got {type(stack).__name__}")
    if len(settings) != stack.num_models:
        raise ValueError(f"settings: {len(settings)} settings given for a stack of {stack.num_models} models")
    shared = settings[0]
    if any(s.group_key() != shared.group_key() for s in settings):
        raise ValueError("settings: the models of one stack must agree on everything but per-model numbers")
    total = shared.total_steps(len(data.x_train))
    hyper = stack_hyperparameters(settings, stack.device, stack.dtype)
    state = init_state(shared.optimizer, stack.params, hyper)
    evaluation = evaluation_sets(data, shared.eval_size, shared.seed)
    slices = stack.layer_slices
    runs = [RunRecords() for _ in range(stack.num_models)]
    flags = DivergenceFlags.fresh(stack.num_models, len(slices), stack.device)
    nan_rows = np.full((stack.num_models, len(slices)), math.nan)

    def record(step: int, lrs: Sequence[float], grad_norms: np.ndarray, ratios: np.ndarray) -> bool:
        (train_loss, train_error), (test_loss, test_error) = (
            stack.evaluate(*evaluation[split]) for split in ("train", "test")
        )
        for m, run in enumerate(runs):
            if run.diverged_step is None and step == total and not math.isfinite(train_loss[m]):
                # the guard checks each minibatch before its update, so no later step sees what
                # the last update did: a network whose loss is not finite diverged here
                run.diverged_step, run.diverged_layer, run.diverged_batch = step, 0, None
                run.steps_done = step
            if run.diverged_step is None:
                run.rows.append((step, train_loss[m], train_error[m], test_loss[m], test_error[m], lrs[m]))
                run.grad_norms.append(grad_norms[m])
                run.update_ratios.append(ratios[m])
        return on_record is not None and on_record(step, runs) is True

    def sync(step: int, batches_since: list[Tensor]) -> bool:
        """Read the divergence flags; note newly diverged models; True when none is left."""
        first = step - len(batches_since) + 1
        diverged_step, where = flags.read()
        for m, run in enumerate(runs):
            if run.diverged_step is None and diverged_step[m] > 0:
                at = int(diverged_step[m])
                run.diverged_step, run.diverged_layer = at, max(int(where[m]), 0)
                run.diverged_batch, run.steps_done = batches_since[at - first], at - 1
            elif run.diverged_step is None:
                run.steps_done = step
        batches_since.clear()
        return all(run.diverged_step is not None for run in runs)

    def syncs_at(step: int) -> bool:
        measure = shared.measure_every is not None and step % shared.measure_every == 0
        return step % shared.record_every == 0 or measure or step == total

    def update(index: Tensor, step: int | Tensor, factor: float | Tensor, recording: bool = False) -> Any:
        return stack_update(stack, data, index, step, factor, flags, state, hyper, recording=recording)

    graphed = GraphedStep(update, shared.batch_size, stack.device, stack.dtype, enabled=cuda_graphs)
    if graphed.wanted and shared.optimizer == "adam":  # the replayed step reads its number on the device
        state.bias_corrections = adam_bias_corrections(hyper, total)

    if on_step is not None:
        on_step(0)
    stop = record(0, [math.nan] * len(runs), nan_rows, nan_rows)
    batches = minibatches(len(data.x_train), shared.batch_size, shared.seed, device=data.device)
    since: list[Tensor] = []
    for step in range(1, total + 1):
        if stop:
            break
        index = next(batches)
        since.append(index)
        recording = step % shared.record_every == 0 or step == total
        factor = schedule_factor(shared.schedule, step, total, shared.gamma, shared.milestones)
        if recording:
            grad_norms, before = update(index, step, factor, recording=True)
        else:
            graphed(index, step, factor)
        state.step = step  # a replayed graph does not count on the host
        if bar is not None:
            bar.update(1)
        if syncs_at(step) and sync(step, since):
            if bar is not None:
                bar.update(total - step)
            break
        if on_step is not None:
            on_step(step)
        if recording:
            ratios = per_layer_norms(stack.params - before, slices) / per_layer_norms(before, slices)
            norms_and_ratios = torch.stack([grad_norms, ratios]).cpu().numpy()
            stop = record(step, [s.lr * factor for s in settings], *norms_and_ratios)
    for run in runs:
        run.step_path, run.step_note = graphed.path, graphed.note
    return runs


def _history(
    net: DeepMLP,
    settings: TrainSettings,
    run: RunRecords,
    measurements: list[Measurement],
    message: str,
    wall_time: float,
) -> TrainHistory:
    """A :class:`TrainHistory` snapshot of one model's records."""
    cols = np.array(run.rows, dtype=np.float64).reshape(-1, 6)
    num_layers = net.num_layers
    diverged = run.diverged_step is not None
    last = cols[-1] if len(cols) and not diverged else np.full(6, math.nan)
    return TrainHistory(
        label=net.config.label(),
        config=net.config,
        settings=settings,
        layers=np.arange(1, num_layers + 1),
        steps=cols[:, 0].astype(np.int64),
        train_loss=cols[:, 1],
        train_error=cols[:, 2],
        test_loss=cols[:, 3],
        test_error=cols[:, 4],
        learning_rate=cols[:, 5],
        grad_norms=np.array(run.grad_norms, dtype=np.float64).reshape(-1, num_layers),
        update_ratio=np.array(run.update_ratios, dtype=np.float64).reshape(-1, num_layers),
        measurements=list(measurements),
        diverged=diverged,
        diverged_step=run.diverged_step,
        diverged_layer=run.diverged_layer,
        message=message,
        final_train_loss=float(last[1]),
        final_train_error=float(last[2]),
        final_test_loss=float(last[3]),
        final_test_error=float(last[4]),
        steps_done=run.steps_done,
        wall_time=wall_time,
    )


def _measure(net: DeepMLP, step: int, batch: tuple[Tensor, Tensor]) -> Measurement:
    inputs, targets = batch
    return Measurement(step, gsc_profile(net, inputs, targets), domain_stats(net, inputs))


def _prepare(net_or_config: DeepMLP | NetConfig, data: Dataset) -> tuple[DeepMLP, Dataset]:
    if not isinstance(data, Dataset):
        raise TypeError(f"data: expected a Dataset (e.g. load_digits()), got {type(data).__name__}")
    if isinstance(net_or_config, NetConfig):
        net = build_from_config(net_or_config, device=data.device, dtype=data.x_train.dtype)
        return net, data
    if not isinstance(net_or_config, DeepMLP):
        raise TypeError(
            f"net_or_config: expected a DeepMLP or a NetConfig, got {type(net_or_config).__name__}"
        )
    net = net_or_config
    reference = next(net.parameters())
    if data.device != reference.device or data.x_train.dtype != reference.dtype:
        data = Dataset(
            data.name,
            data.x_train.to(reference),
            data.y_train.to(reference.device),
            data.x_test.to(reference),
            data.y_test.to(reference.device),
            data.num_classes,
            data.class_names,
            data.source,
        )
    return net, data


def train(
    net_or_config: DeepMLP | NetConfig,
    data: Dataset,
    settings: TrainSettings | None = None,
    *,
    progress: bool = True,
    callback: Callable[[int, TrainHistory], Any] | None = None,
    cuda_graphs: bool = True,
    **overrides: Any,
) -> TrainHistory:
    """Train one network and record its history.

    The network runs as a :class:`~explodegrad.training.stacked.NetStack` of one through
    :func:`train_stack`, the loop a sweep runs too; its parameters and batch-norm running
    statistics are written back in place whenever it is observed (measurements, callbacks,
    the end of the run).

    Args:
        net_or_config: a network (trained in place) or a configuration to build one from
            (on the data's device, in the data's dtype).
        data: the data set; moved to the network's device and dtype when a network is given.
        settings: training settings (default :class:`TrainSettings`()).
        progress: show a tqdm progress bar.
        callback: called as ``callback(step, history)`` after every record; returning True
            stops training (the history then says so).
        cuda_graphs: on a CUDA device, replay the steps between records from a CUDA graph, as
            ``sweep(cuda_graphs=True)`` does (the same arithmetic; the history's ``step_path``
            says which path ran). On by default: the first H200 acceptance run (2026-11-30,
            ``benchmarks/results/h200-2026-11-30``) found it bit-identical to eager steps;
            no effect on the CPU.
        **overrides: settings fields to change, e.g. ``lr=0.1, optimizer="adam"``.

    Returns:
        The :class:`TrainHistory`. A NaN/Inf loss or gradient stops the run cleanly and is
        reported in it, never raised.
    """
    if settings is not None and not isinstance(settings, TrainSettings):
        raise TypeError(f"settings: expected a TrainSettings or None, got {type(settings).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback: expected a function (step, history) -> bool, got {type(callback).__name__}"
        )
    cuda_graphs = check_bool("cuda_graphs", cuda_graphs)
    settings = (settings if settings is not None else TrainSettings()).with_(**overrides)
    net, data = _prepare(net_or_config, data)
    total = check_run(net.config, data, settings)
    (history,) = _train_nets([net], data, settings, total, progress, callback, cuda_graphs)
    return history


def train_several(
    nets_or_configs: Sequence[DeepMLP | NetConfig],
    data: Dataset,
    settings: TrainSettings | None = None,
    *,
    progress: bool = False,
    cuda_graphs: bool = True,
) -> list[TrainHistory]:
    """Train several networks of one shape together, each recorded as :func:`train` records it.

    One :class:`~explodegrad.training.stacked.NetStack` of all of them runs the steps (a few
    batched operations instead of a loop per network: what a GPU needs), with one ``settings``
    for all: every network sees the minibatches of ``settings.seed`` and is measured
    (``measure_every``) on the same batch. Each history holds its own records, per-layer
    gradient norms, update ratios and measurements. A network alone gives :func:`train`'s
    history; in a stack of more, the products round differently (float32: about 1e-7).

    Args:
        nets_or_configs: networks (trained in place) or configurations (built on the data's
            device and dtype); they must share :meth:`NetConfig.shape_key`.
        data: the data set (moved to the first network's device and dtype).
        settings: the training settings of every network (default :class:`TrainSettings`()).
        progress: show a tqdm progress bar.
        cuda_graphs: as in :func:`train`.

    Returns:
        One :class:`TrainHistory` per network, in the given order.
    """
    if settings is not None and not isinstance(settings, TrainSettings):
        raise TypeError(f"settings: expected a TrainSettings or None, got {type(settings).__name__}")
    cuda_graphs = check_bool("cuda_graphs", cuda_graphs)
    if isinstance(nets_or_configs, (DeepMLP, NetConfig)) or not list(nets_or_configs):
        raise ValueError(
            "nets_or_configs: give a non-empty list of networks or configurations (one network: use train())"
        )
    settings = settings if settings is not None else TrainSettings()
    nets, first_data = [], None
    for item in nets_or_configs:
        net, moved = _prepare(item, data if first_data is None else first_data)
        first_data = moved if first_data is None else first_data
        nets.append(net)
    shapes = {net.config.shape_key() for net in nets}
    if len(shapes) > 1:
        raise ValueError(
            "nets_or_configs: the networks do not share one shape (NetConfig.shape_key): "
            f"{sorted({net.config.label() for net in nets})}; train each shape on its own"
        )
    totals = {check_run(net.config, first_data, settings) for net in nets}
    return _train_nets(nets, first_data, settings, totals.pop(), progress, None, cuda_graphs)


def train_per_seed(
    nets_or_configs: Sequence[DeepMLP | NetConfig],
    seeds: Sequence[int],
    data: Dataset,
    settings: TrainSettings,
    *,
    together: bool = False,
    progress: bool = False,
) -> list[TrainHistory]:
    """Train one network per seed: each alone on its own seed's minibatches, or all together.

    The two routes of every multi-seed study: one :func:`train` loop per network, each with
    ``settings.seed`` set to its seed (the minibatch orders differ, as independent runs'
    do), or, with ``together``, one :func:`train_several` stack on the first seed's
    minibatches (one loop instead of many: what a GPU needs; the seeds then differ only in
    their weights). One network gives the same history either way.

    Args:
        nets_or_configs: the networks (trained in place) or configurations, one per seed.
        seeds: the seed of each network's minibatch order (``settings.seed`` is replaced).
        data: the data set.
        settings: the training settings of every network.
        together: train them as one stack on ``seeds[0]``'s minibatches.
        progress: show a tqdm progress bar per loop.

    Returns:
        One :class:`TrainHistory` per network, in the given order.
    """
    together = check_bool("together", together)
    items, chosen = list(nets_or_configs), list(seeds)
    if len(items) != len(chosen) or not chosen:
        raise ValueError(
            f"seeds={chosen!r} is not allowed with {len(items)} networks: give one seed per network"
        )
    if together:
        return train_several(items, data, settings.with_(seed=chosen[0]), progress=progress)
    return [
        train(item, data, settings.with_(seed=seed), progress=progress) for item, seed in zip(items, chosen)
    ]


def _train_nets(
    nets: list[DeepMLP],
    data: Dataset,
    settings: TrainSettings,
    total: int,
    progress: bool,
    callback: Callable[[int, TrainHistory], Any] | None,
    cuda_graphs: bool,
) -> list[TrainHistory]:
    """The loop of :func:`train` and :func:`train_several`: one stack, measurements at
    ``measure_every``, the callback (with the first network's history) at every record, and
    the parameters written back whenever the networks are observed."""
    for net in nets:
        net.train()
    stack = NetStack(nets)
    measure_batch = (
        data.batch(min(settings.measure_size, len(data.x_train)), seed=settings.seed)
        if settings.measure_every is not None
        else None
    )
    measurements: list[list[Measurement]] = [[] for _ in nets]
    message = ""
    start = time.perf_counter()

    def on_step(step: int) -> None:
        if measure_batch is not None and (step % settings.measure_every == 0 or step == total):
            stack.copy_to(nets)
            for net, kept in zip(nets, measurements):
                kept.append(_measure(net, step, measure_batch))

    def on_record(step: int, runs: list[RunRecords]) -> bool:
        nonlocal message
        bar.set_postfix(loss=f"{runs[0].rows[-1][1]:.3g}", error=f"{runs[0].rows[-1][2]:.3f}")
        if callback is None:
            return False
        stack.copy_to(nets)
        elapsed = time.perf_counter() - start
        if callback(step, _history(nets[0], settings, runs[0], measurements[0], message, elapsed)) is True:
            message = f"stopped by the callback after step {step}"
            return True
        return False

    label = nets[0].config.label() if len(nets) == 1 else f"{len(nets)} x {nets[0].config.label()}"
    bar = tqdm(total=total, desc=label, disable=not progress)
    try:
        runs = train_stack(
            stack,
            data,
            [settings] * len(nets),
            bar=bar,
            on_step=on_step,
            on_record=on_record,
            cuda_graphs=cuda_graphs,
        )
    finally:
        stack.copy_to(nets)
        bar.close()
    histories = []
    for net, run, kept in zip(nets, runs, measurements):
        text = message
        if run.diverged_step is not None:
            text = divergence_message(run.diverged_step, run.diverged_layer)
            if run.diverged_layer == 0:
                batch = data.x_train if run.diverged_batch is None else data.x_train[run.diverged_batch]
                where = first_overflow_layer(net, batch)
                if where is not None:
                    text += f"; the first non-finite output is layer {where}'s"
        history = _history(net, settings, run, kept, text, time.perf_counter() - start)
        history.step_path, history.step_note = run.step_path, run.step_note
        histories.append(history)
    return histories
