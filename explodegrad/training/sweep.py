"""Train many configurations at once on one device: the GPU-backed experiments.

Runs whose networks share shapes (:meth:`NetConfig.shape_key`; on a GPU
:meth:`NetConfig.stack_key`, the architecture but for the activation, see ``stack_activations``)
and whose settings agree on everything but per-model numbers (:meth:`TrainSettings.group_key`)
form a *group*. A group trains as one
:class:`~explodegrad.training.stacked.NetStack`: the same :class:`~explodegrad.core.nets.DeepMLP`
for every model, run together as one (batched matrix products ``(models x batch x width) @
(models x width x width)``), so many small networks cost little more than a few. Each model
keeps its own activation, initialization (its configuration's seed and initializer), residual
scale and optimizer numbers (learning rate, momentum, ...), so a learning-rate search is one
batched run, and on a GPU a search over ReLU, tanh and SELU networks of one shape too. Within a
group the models are ordered by activation (in the order the activations first appear), so each
activation is one segment of the stack; results are returned in the order the runs were given.
Stacking activations changes no number (tested to rounding; bit-identical on the CPUs measured),
only the cost: a GPU launches each operation once for more models, while a CPU is slower per
model in wider stacks (the update's passes over the flat parameter matrix leave the cache; 1.7x
per model-step at 20 models of depth 50 against 4 stacks of 5, ``benchmarks/README.md``), so it
is on by default only on CUDA devices.

A group trains with :func:`explodegrad.training.loop.train_stack`, the loop
:func:`explodegrad.training.loop.train` runs for one network: every model sees the same
minibatches as ``train()`` with the same seed, so a sweep of one configuration reproduces
``train()`` step for step. A model whose loss or gradient stops being finite is masked from
then on (its update stopped, its gradient zeroed) and reported; its values never enter
another model's arithmetic.

Batch norm runs in training mode: each model normalizes with its own batch statistics (its
running averages are kept per model but not used); recorded losses and errors, like
``train()``'s, use the statistics of the evaluation batch (``eval_size`` examples of each
split). Results do not depend on how a group is split into chunks.

Before a group runs, its memory is estimated (parameters, gradients, optimizer state,
activations); a group that would not fit under the limit is split into chunks that do,
and refused with the estimate and the limit when not even one model fits.

On a CUDA device two switches trade exactness for speed, and the result says which were used
(:meth:`SweepResult.describe`): ``cuda_graphs`` (on by default: the GPU acceptance run,
``benchmarks/gpu_check.sh``, showed it bit-identical to eager steps on an H200) replays
the steps between records from a CUDA graph (:mod:`explodegrad.training.graphs`; the same arithmetic, fewer
launches), and ``tf32`` (off by default: only by explicit choice) runs float32 matrix
products in TF32 for the sweep's duration. Neither changes anything on the CPU.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import numbers
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from explodegrad.core.checks import check_int, check_positive
from explodegrad.core.config import NetConfig
from explodegrad.core.data import Dataset
from explodegrad.core.device import resolve_device
from explodegrad.core.nets import DeepMLP, build_from_config
from explodegrad.core.trace import first_overflow_layer
from explodegrad.measures.gsc import tf32_matmuls
from explodegrad.training.loop import (
    RunRecords,
    TrainSettings,
    check_run,
    divergence_message,
    train_stack,
)
from explodegrad.training.stacked import NetStack, unflatten_row

#: Share of the free memory a sweep may plan to use (the rest is headroom for the allocator,
#: temporaries the estimate leaves out, and other programs).
MEMORY_FRACTION = {"cuda": 0.8, "cpu": 0.5, "mps": 0.5}


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a network configuration and its training settings."""

    config: NetConfig
    settings: TrainSettings

    @property
    def label(self) -> str:
        return self.config.label()

    def group_key(self, stack_activations: bool = False) -> tuple:
        """Runs with equal keys train together in one stacked group (with
        ``stack_activations``, networks that differ only in activation too)."""
        shapes = self.config.stack_key() if stack_activations else self.config.shape_key()
        return (shapes, self.settings.group_key())


def grid(
    config: NetConfig | None = None, settings: TrainSettings | None = None, **axes: Any
) -> list[RunSpec]:
    """All combinations of the listed values, as runs for :func:`sweep`.

    Args:
        config: the base network configuration (default ``NetConfig()``).
        settings: the base training settings (default ``TrainSettings()``).
        **axes: fields of :class:`NetConfig` or :class:`TrainSettings`. A list is an axis
            to vary; any other value (a tuple too, e.g. ``betas=(0.9, 0.99)``) is fixed.
            ``seed`` sets both the weight seed and the minibatch seed; ``init_seed`` only
            the weights' (runs that differ only there share minibatches and one group).

    Example:
        ``grid(activation=["relu", "tanh"], lr=[0.01, 0.1], in_features=64)`` gives 4 runs.
    """
    config = config if config is not None else NetConfig()
    settings = settings if settings is not None else TrainSettings()
    config_names = {f.name for f in fields(NetConfig)} | {"init_seed"}
    settings_names = {f.name for f in fields(TrainSettings)}
    for name, value in axes.items():
        if name not in config_names | settings_names:
            raise ValueError(
                f"{name}={value!r} is not a grid axis: axes are fields of NetConfig "
                f"({', '.join(sorted(config_names))}) or TrainSettings "
                f"({', '.join(sorted(settings_names))})"
            )
        if isinstance(value, list) and not value:
            raise ValueError(f"{name}=[] is not allowed: an axis needs at least one value")
    names = list(axes)
    values = [v if isinstance(v, list) else [v] for v in axes.values()]
    runs = []
    for combination in itertools.product(*values):
        chosen = dict(zip(names, combination))
        net_changes = {k: v for k, v in chosen.items() if k in config_names and k != "init_seed"}
        if "init_seed" in chosen:
            net_changes["seed"] = chosen["init_seed"]
        set_changes = {k: v for k, v in chosen.items() if k in settings_names}
        runs.append(RunSpec(config.with_(**net_changes), settings.with_(**set_changes)))
    return runs


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one group needs: a shared part plus a part per stacked model.

    Attributes:
        parameters, gradients, optimizer_state, activations: bytes per model.
        shared: bytes independent of the number of models (the input batches).
    """

    parameters: int
    gradients: int
    optimizer_state: int
    activations: int
    shared: int

    @property
    def per_model(self) -> int:
        return self.parameters + self.gradients + self.optimizer_state + self.activations

    def total(self, num_models: int) -> int:
        """Bytes for ``num_models`` models stacked together."""
        return self.shared + num_models * self.per_model


def estimate_memory(
    config: NetConfig, settings: TrainSettings, n_eval: int, dtype: torch.dtype = torch.float32
) -> MemoryEstimate:
    """Estimate the memory a stacked group of ``config`` needs (see :class:`MemoryEstimate`).

    Counted per model: the parameters; the gradients (autograd's, the flat copy and the
    clipped copy); the optimizer buffers plus update temporaries; and the larger of the
    training activations (about ``2 + 3 * has_norm`` saved batch x width tensors per linear
    layer, plus as much again while backpropagating) and the evaluation pass over ``n_eval``
    examples (a few live tensors of that size at a time).
    """
    size = torch.empty((), dtype=dtype).element_size()
    linears = config.linear_shapes()
    num_params = config.num_parameters()
    buffers = {"sgd": 1 if settings.momentum else 0, "adam": 2, "rmsprop": 1}[settings.optimizer]
    saved_per_linear = 2 + (3 if config.norm != "none" else 0)
    outputs = sum(o for o, _ in linears)
    train_activations = 2 * settings.batch_size * outputs * saved_per_linear
    widest = max(max(o for o, _ in linears), config.out_features)
    eval_activations = 4 * n_eval * widest
    return MemoryEstimate(
        parameters=num_params * size,
        gradients=3 * num_params * size,
        optimizer_state=(buffers + 2) * num_params * size,
        activations=max(train_activations, eval_activations) * size,
        shared=(settings.batch_size + n_eval) * config.in_features * size,
    )


def memory_limit(device: torch.device | str) -> int:
    """Bytes a sweep may plan to use on ``device``: a fraction of the free memory."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        try:
            import psutil

            free = psutil.virtual_memory().available
        except ImportError:  # pragma: no cover - psutil is usually there
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(free * MEMORY_FRACTION.get(device.type, 0.5))


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


@dataclass
class GroupInfo:
    """How one group of runs was executed.

    ``chunks`` and ``limit`` follow from the memory free when the sweep ran, so they stay out
    of the group's JSON (``to_jsonable``): a result written to disk does not depend on the
    machine's free memory. ``runs`` lists the group's run indices in the order they were
    stacked (by activation, see :func:`_by_activation`).
    """

    runs: list[int]
    chunks: list[list[int]] = field(metadata={"serialize": False})
    memory: MemoryEstimate
    limit: int = field(metadata={"serialize": False})


@dataclass(frozen=True)
class Checkpoint:
    """One run's parameters and buffers at one record step, kept on the device (see
    ``sweep(keep_checkpoints=True)``).

    Attributes:
        step: the record's update count (0: the initial network).
        params: the run's flat parameter row (:func:`~explodegrad.training.stacked.flat_row`).
        buffers: the run's buffers by name (batch-norm running statistics, residual scale).
        transposed: whether the row stores weight matrices ``(in x out)`` (a stack of several).
    """

    step: int
    params: torch.Tensor
    buffers: dict[str, torch.Tensor]
    transposed: bool


@dataclass
class SweepResult:
    """What a sweep recorded (numbers only).

    Attributes:
        table: tidy DataFrame, one row per run and record: the configuration's fields, its
            label and run index, the training numbers (optimizer, lr, momentum,
            weight_decay, schedule, clip_norm, clip_value, batch_size, data_seed), then step,
            train_loss, train_error, test_loss, test_error, diverged, diverged_step. Records
            stop before a run's divergence step.
        summary: one row per run: the same identifying columns plus final_train_loss,
            final_train_error, final_test_loss, final_test_error (NaN when diverged),
            diverged, diverged_step, diverged_layer, steps_done and message.
        runs: the runs, in the order given.
        groups: how runs were grouped, chunked, and the memory estimate and limit used.
        device: where it ran.
        wall_time: seconds.
        tf32: whether TF32 matmuls were asked for (``sweep(tf32=...)``).
        tf32_used: whether they were used (only on a CUDA device).
        step_path: how the steps between records ran: ``"cuda-graph"``, ``"eager"``, or
            ``"mixed"`` when some chunks were captured and others not.
        step_notes: why chunks on a CUDA device ran eagerly (distinct reasons, in order).
        checkpoints: with ``sweep(keep_checkpoints=True)``, each run's :class:`Checkpoint` at
            every record it has (run index -> checkpoints in step order); else empty.
        stack_activations: whether networks that differ only in activation were grouped
            together (``sweep(stack_activations=...)``).
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    runs: list[RunSpec]
    groups: list[GroupInfo]
    device: str
    wall_time: float
    tf32: bool = False
    tf32_used: bool = False
    step_path: str = "eager"
    step_notes: list[str] = field(default_factory=list)
    checkpoints: dict[int, list[Checkpoint]] = field(default_factory=dict, repr=False)
    stack_activations: bool = False

    def network_at(self, run: int, step: int) -> DeepMLP:
        """Run ``run``'s network as it was at record ``step``, trained by this sweep itself.

        Needs ``sweep(keep_checkpoints=True)``. The network is built from the run's
        configuration on the sweep's device and receives the kept parameters and buffers, so
        it can be measured (GSC, effective depth, Taylor) instead of trained again.
        """
        if not self.checkpoints:
            raise ValueError("run: this sweep kept no checkpoints; run sweep(..., keep_checkpoints=True)")
        kept = self.checkpoints.get(run)
        if kept is None:
            raise ValueError(f"run={run!r} is not allowed: runs are 0 ... {len(self.runs) - 1}")
        by_step = {c.step: c for c in kept}
        if step not in by_step:
            raise ValueError(
                f"step={step!r} is not allowed: run {run} has records at steps {sorted(by_step)}"
            )
        checkpoint = by_step[step]
        net = build_from_config(
            self.runs[run].config, device=checkpoint.params.device, dtype=checkpoint.params.dtype
        )
        with torch.no_grad():
            for name, tensor in unflatten_row(checkpoint.params, net, checkpoint.transposed).items():
                net.get_parameter(name).copy_(tensor)
            for name, buffer in net.named_buffers():
                buffer.copy_(checkpoint.buffers[name])
        return net

    def describe(self) -> str:
        """Where and how the sweep ran, in a few lines (device, TF32, step path, time)."""
        tf32 = "on" if self.tf32_used else "off"
        if self.tf32 and not self.tf32_used:
            tf32 += f" (tf32=True has no effect on {self.device})"
        lines = [
            f"sweep of {len(self.runs)} runs in {len(self.groups)} group(s) on {self.device}, "
            f"{self.wall_time:.1f} s"
            + (
                " (networks that differ only in activation stacked together)"
                if self.stack_activations
                else ""
            ),
            f"TF32 matmuls: {tf32}",
            f"training step: {self.step_path}"
            + (f" ({'; '.join(self.step_notes)})" if self.step_notes else ""),
        ]
        return "\n".join(lines)


def _by_activation(members: list[int], runs: Sequence[RunSpec]) -> list[int]:
    """A group's run indices with equal activations next to each other (stable; activations
    in the order they first appear), so that a stack of them has one segment per activation."""
    first_seen: dict[str, int] = {}
    for i in members:
        first_seen.setdefault(runs[i].config.activation, len(first_seen))
    return sorted(members, key=lambda i: first_seen[runs[i].config.activation])


def _describe(index: int, run: RunSpec) -> dict[str, Any]:
    s = run.settings
    return {
        "run": index,
        "label": run.label,
        **run.config.as_dict(),
        "optimizer": s.optimizer,
        "lr": s.lr,
        "momentum": s.momentum,
        "weight_decay": s.weight_decay,
        "schedule": s.schedule,
        "clip_norm": s.clip_norm,
        "clip_value": s.clip_value,
        "batch_size": s.batch_size,
        "data_seed": s.seed,
    }


def _train_chunk(
    runs: list[RunSpec],
    data: Dataset,
    bar: Any,
    cuda_graphs: bool = True,
    kept: list[list[Checkpoint]] | None = None,
) -> list[tuple[RunRecords, int | None]]:
    """Train the runs of one chunk of a group together: one stack, the one training loop.

    Returns each run's records and, for a run whose forward pass overflowed, the first layer
    whose output is not finite (as :func:`~explodegrad.training.loop.train` names it). With
    ``kept`` (one list per run), every record's parameters and buffers are appended to it
    (device copies: nothing is read back).
    """
    stack = NetStack.from_configs([r.config for r in runs], device=data.device, dtype=data.x_train.dtype)
    on_record = None
    if kept is not None:

        def on_record(step: int, records: list[RunRecords]) -> bool:
            params = stack.params.detach().clone()
            buffers = {name: b.clone() for name, b in stack.buffers.items()}
            for m, record in enumerate(records):
                if record.rows and record.rows[-1][0] == step:  # a diverged run records no more
                    row_buffers = {name: b[m] for name, b in buffers.items()}
                    kept[m].append(Checkpoint(step, params[m], row_buffers, stack.num_models > 1))
            return False

    records = train_stack(
        stack, data, [r.settings for r in runs], bar=bar, on_record=on_record, cuda_graphs=cuda_graphs
    )
    overflow: list[int | None] = [None] * len(runs)
    if any(r.diverged_layer == 0 for r in records):
        nets = [build_from_config(r.config, device=data.device, dtype=data.x_train.dtype) for r in runs]
        stack.copy_to(nets)
        for m, record in enumerate(records):
            if record.diverged_layer == 0 and record.diverged_batch is not None:
                overflow[m] = first_overflow_layer(nets[m], data.x_train[record.diverged_batch])
    return list(zip(records, overflow))


def _as_runs(
    configs: Any, settings: TrainSettings | Sequence[TrainSettings] | None, lrs: Sequence[float] | None
) -> list[RunSpec]:
    if settings is not None and not isinstance(settings, (TrainSettings, Sequence)):
        raise TypeError(
            f"settings: expected a TrainSettings, a sequence of them or None, got {type(settings).__name__}"
        )
    if isinstance(configs, (NetConfig, RunSpec)):
        configs = [configs]
    configs = list(configs) if isinstance(configs, Iterable) else None
    if not configs:
        raise ValueError(
            "configs: the grid is empty; give at least one NetConfig or RunSpec "
            "(for example grid(depth=[4, 8]))"
        )
    if settings is None or isinstance(settings, TrainSettings):
        per_config = [settings if settings is not None else TrainSettings()] * len(configs)
    else:
        per_config = list(settings)
        for item in per_config:
            if not isinstance(item, TrainSettings):
                raise TypeError(f"settings: expected TrainSettings items, got {type(item).__name__}")
        if len(per_config) != len(configs):
            raise ValueError(
                f"settings: {len(per_config)} settings given for {len(configs)} "
                "configurations; give one TrainSettings or one per configuration"
            )
    runs = []
    for item, item_settings in zip(configs, per_config):
        if isinstance(item, RunSpec):
            runs.append(item)
        elif isinstance(item, NetConfig):
            runs.append(RunSpec(item, item_settings))
        else:
            raise TypeError(f"configs: expected NetConfig or RunSpec items, got {type(item).__name__}")
    if lrs is not None:
        if not isinstance(lrs, Iterable) or isinstance(lrs, str):
            raise TypeError(f"lrs: expected a sequence of learning rates or None, got {type(lrs).__name__}")
        lrs = [check_positive("lrs", lr) for lr in lrs]
        if not lrs:
            raise ValueError("lrs=[] is not allowed: give at least one learning rate (or None)")
        runs = [RunSpec(r.config, r.settings.with_(lr=lr)) for r in runs for lr in lrs]
    return runs


def sweep(
    configs: Sequence[NetConfig | RunSpec] | NetConfig,
    data: Dataset,
    settings: TrainSettings | Sequence[TrainSettings] | None = None,
    *,
    lrs: Sequence[float] | None = None,
    device: Any = None,
    progress: bool = True,
    memory_limit_bytes: int | None = None,
    tf32: bool = False,
    cuda_graphs: bool = True,
    keep_checkpoints: bool = False,
    stack_activations: bool | None = None,
) -> SweepResult:
    """Train every run of a grid, stacking runs that share shapes into batched groups.

    Args:
        configs: network configurations or runs (from :func:`grid`).
        data: the data set (moved to ``device``).
        settings: one :class:`TrainSettings` for every configuration, or one per configuration
            (ignored for :class:`RunSpec` items, which carry their own).
        lrs: when given, every run is repeated with each of these learning rates.
        device: where to train (default: the data's device; ``"auto"`` picks a GPU if any).
        progress: show a tqdm progress bar.
        memory_limit_bytes: the memory a group may use (default: a fraction of the device's
            free memory, see :data:`MEMORY_FRACTION`); larger groups are split into chunks.
        tf32: on a CUDA device, run float32 matrix products in TF32 (faster, about 3 decimal
            digits) for the sweep's duration; torch's previous setting is restored afterwards,
            also on error. Off by default, and on the CPU it is recorded but has no effect.
            GSC measurements are never made in TF32.
        cuda_graphs: on a CUDA device, replay the steps between records from a CUDA graph
            (falls back to eager steps, with the reason in the result, where capture is not
            possible). On by default since the first H200 acceptance run found the graph path
            bit-identical to eager steps (SGD and Adam, float32). Ignored on the CPU.
        keep_checkpoints: keep every run's parameters and buffers at each of its records (on
            the device; about ``records x parameters`` numbers per run), so the trained networks
            can be measured afterwards (:meth:`SweepResult.network_at`) instead of retrained.
            Changes no number the sweep computes.
        stack_activations: train networks that differ only in their activation as one group
            (:meth:`NetConfig.stack_key`). None (default): on CUDA devices only, where fewer,
            wider groups launch fewer kernels; on a CPU wider stacks are slower per model.
            Changes no number beyond rounding.

    Returns:
        A :class:`SweepResult`; divergence is reported per run, never raised. Its
        :meth:`~SweepResult.describe` says whether TF32 and CUDA graphs were used.
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"data: expected a Dataset (e.g. load_digits()), got {type(data).__name__}")
    if memory_limit_bytes is not None and (
        not isinstance(memory_limit_bytes, numbers.Integral) or isinstance(memory_limit_bytes, bool)
    ):
        raise TypeError(
            f"memory_limit_bytes={memory_limit_bytes!r} is not allowed: memory_limit_bytes must be "
            f"an integer number of bytes or None, got {type(memory_limit_bytes).__name__}"
        )
    if memory_limit_bytes is not None:
        memory_limit_bytes = check_int("memory_limit_bytes", memory_limit_bytes, 1)
    switches = {
        "progress": progress,
        "tf32": tf32,
        "cuda_graphs": cuda_graphs,
        "keep_checkpoints": keep_checkpoints,
        "stack_activations": True if stack_activations is None else stack_activations,
    }
    for name, value in switches.items():
        if not isinstance(value, bool):
            raise TypeError(f"{name}={value!r} is not allowed: {name} must be True or False")
    runs = _as_runs(configs, settings, lrs)
    target = resolve_device(device, data)
    if data.device != target:
        data = data.to(target)
    totals = [check_run(r.config, data, r.settings) for r in runs]
    limit = int(memory_limit_bytes) if memory_limit_bytes is not None else memory_limit(target)
    grouped: dict[tuple, list[int]] = {}
    if stack_activations is None:
        stack_activations = target.type == "cuda"
    for i, run in enumerate(runs):
        grouped.setdefault(run.group_key(stack_activations), []).append(i)
    groups = []
    for members in grouped.values():
        members = _by_activation(members, runs)
        first = runs[members[0]]
        n_eval = max(len(x) for x in (data.x_train, data.x_test))
        if first.settings.eval_size is not None:
            n_eval = min(n_eval, first.settings.eval_size)
        estimate = estimate_memory(first.config, first.settings, n_eval, data.x_train.dtype)
        per_chunk = (limit - estimate.shared) // estimate.per_model
        if per_chunk < 1:
            raise ValueError(
                f"memory: one model of {first.label} needs about {_mib(estimate.total(1))} "
                f"(parameters {_mib(estimate.parameters)}, activations {_mib(estimate.activations)}), "
                f"more than the limit of {_mib(limit)} on {target}; lower batch_size, eval_size or "
                "width, or raise memory_limit_bytes"
            )
        chunks = [members[i : i + per_chunk] for i in range(0, len(members), per_chunk)]
        groups.append(GroupInfo(members, chunks, estimate, limit))
    start = time.perf_counter()
    outcomes: dict[int, tuple[RunRecords, int | None]] = {}
    steps_needed = sum(totals[g.runs[0]] * len(g.chunks) for g in groups)
    on_cuda = target.type == "cuda"
    precision = tf32_matmuls(tf32) if on_cuda else contextlib.nullcontext()
    paths, notes = [], []
    checkpoints: dict[int, list[Checkpoint]] = {}
    with precision, tqdm(total=steps_needed, desc=f"sweep of {len(runs)} runs", disable=not progress) as bar:
        for group in groups:
            for chunk in group.chunks:
                kept = [checkpoints.setdefault(i, []) for i in chunk] if keep_checkpoints else None
                results = _train_chunk([runs[i] for i in chunk], data, bar, cuda_graphs, kept)
                outcomes.update(zip(chunk, results))
                paths.append(results[0][0].step_path)
                notes.append(results[0][0].step_note)
        if on_cuda:
            torch.cuda.synchronize(target)
    wall_time = time.perf_counter() - start
    step_path = paths[0] if len(set(paths)) == 1 else "mixed"
    step_notes = list(dict.fromkeys(note for note in notes if note))
    return SweepResult(
        *_tables(runs, outcomes),
        runs,
        groups,
        str(target),
        wall_time,
        tf32,
        tf32 and on_cuda,
        step_path,
        step_notes,
        dict(sorted(checkpoints.items())),
        stack_activations,
    )


def _message(outcome: RunRecords, overflow_layer: int | None) -> str:
    """The summary's sentence for a run: empty, or where it diverged (as ``train()`` says it)."""
    if outcome.diverged_step is None:
        return ""
    message = divergence_message(outcome.diverged_step, outcome.diverged_layer)
    if overflow_layer is not None:
        message += f"; the first non-finite output is layer {overflow_layer}'s"
    return message


def _tables(
    runs: list[RunSpec], outcomes: dict[int, tuple[RunRecords, int | None]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, summaries = [], []
    for i, run in enumerate(runs):
        outcome, overflow_layer = outcomes[i]
        described = _describe(i, run)
        diverged = outcome.diverged_step is not None
        for step, train_loss, train_error, test_loss, test_error, _ in outcome.rows:
            rows.append(
                {
                    **described,
                    "step": step,
                    "train_loss": float(train_loss),
                    "train_error": float(train_error),
                    "test_loss": float(test_loss),
                    "test_error": float(test_error),
                    "diverged": diverged,
                    "diverged_step": outcome.diverged_step,
                }
            )
        last = outcome.rows[-1] if outcome.rows and not diverged else (math.nan,) * 6
        summaries.append(
            {
                **described,
                "final_train_loss": float(last[1]),
                "final_train_error": float(last[2]),
                "final_test_loss": float(last[3]),
                "final_test_error": float(last[4]),
                "diverged": diverged,
                "diverged_step": outcome.diverged_step,
                "diverged_layer": outcome.diverged_layer,
                "steps_done": outcome.steps_done,
                "message": _message(outcome, overflow_layer),
            }
        )
    table, summary = pd.DataFrame(rows), pd.DataFrame(summaries)
    for frame in (table, summary):
        frame["diverged_step"] = frame["diverged_step"].astype("Int64")
    summary["diverged_layer"] = summary["diverged_layer"].astype("Int64")
    return table, summary


@dataclass
class LRSearchResult:
    """The best learning rate per architecture, from one batched sweep.

    Attributes:
        best: one row per architecture (``arch`` = index into the configurations): label,
            the configuration's fields, best_lr, and that run's final_train_error,
            final_train_loss, final_test_error; best_lr is NaN when every rate diverged.
        table: one row per (architecture, learning rate): arch, label, lr,
            final_train_error, final_train_loss, final_test_error, diverged.
        sweep: the underlying :class:`SweepResult`.
    """

    best: pd.DataFrame
    table: pd.DataFrame
    sweep: SweepResult

    def describe(self) -> str:
        """Where and how the search's sweep ran (see :meth:`SweepResult.describe`)."""
        return self.sweep.describe()

    def best_run(self, arch: int) -> int | None:
        """The sweep's run index of architecture ``arch`` at its chosen rate (None: all diverged)."""
        best = self.best_lr(arch)
        if math.isnan(best):
            return None
        rows = self.table[(self.table["arch"] == arch) & (self.table["lr"] == best)]
        return int(rows.index[0])

    def best_lr(self, arch: int) -> float:
        """The chosen learning rate of architecture ``arch`` (its index in the configurations)."""
        return float(self.best.loc[self.best["arch"] == arch, "best_lr"].iloc[0])

    def select(self, arch: int) -> LRSearchResult:
        """Architecture ``arch``'s part of the search, as if it had been searched alone: its
        ``best`` row and ``table`` rows with ``arch`` 0. The ``sweep`` is the whole shared one
        (its run indices are the search's own)."""
        if arch not in set(self.best["arch"]):
            raise ValueError(f"arch={arch!r} is not allowed: architectures are 0 ... {len(self.best) - 1}")
        best = self.best[self.best["arch"] == arch].reset_index(drop=True).assign(arch=0)
        table = self.table[self.table["arch"] == arch].reset_index(drop=True).assign(arch=0)
        return LRSearchResult(best, table, self.sweep)


def lr_search(
    configs: Sequence[NetConfig] | NetConfig,
    data: Dataset,
    lrs: Sequence[float],
    settings: TrainSettings | None = None,
    *,
    device: Any = None,
    progress: bool = True,
    memory_limit_bytes: int | None = None,
    tf32: bool = False,
    cuda_graphs: bool = True,
    keep_checkpoints: bool = False,
    stack_activations: bool | None = None,
) -> LRSearchResult:
    """Pick, per architecture, the learning rate with the lowest final training error.

    All (architecture, rate) pairs train in ONE sweep (as the paper chose a rate per
    architecture). Diverged runs are never picked; ties in error go to the lower final
    training loss, then to the smaller rate. ``tf32`` and ``cuda_graphs`` are
    :func:`sweep`'s (TF32 off unless asked for; no effect on the CPU); the result's
    ``sweep.tf32`` and ``describe()`` record them. With ``keep_checkpoints`` the searched
    networks are kept at every record: ``result.sweep.network_at(result.best_run(arch), step)``
    is the chosen run's own network, to measure instead of retraining at the chosen rate.
    ``stack_activations`` is :func:`sweep`'s (architectures that differ only in activation
    train as one group; by default on CUDA devices only).
    """
    configs = [configs] if isinstance(configs, NetConfig) else list(configs)
    if not isinstance(lrs, Iterable) or isinstance(lrs, str):
        raise TypeError(f"lrs: expected a sequence of learning rates, got {type(lrs).__name__}")
    if not list(lrs):
        raise ValueError("lrs=[] is not allowed: give at least one learning rate to search")
    result = sweep(
        configs,
        data,
        settings,
        lrs=lrs,
        device=device,
        progress=progress,
        memory_limit_bytes=memory_limit_bytes,
        tf32=tf32,
        cuda_graphs=cuda_graphs,
        keep_checkpoints=keep_checkpoints,
        stack_activations=stack_activations,
    )
    n_lrs = len(list(lrs))
    table = result.summary[
        ["label", "lr", "final_train_error", "final_train_loss", "final_test_error", "diverged"]
    ].copy()
    table.insert(0, "arch", np.repeat(np.arange(len(configs)), n_lrs))
    best_rows = [
        {"arch": arch, "label": config.label(), **config.as_dict(), **best_rate(table[table["arch"] == arch])}
        for arch, config in enumerate(configs)
    ]
    return LRSearchResult(pd.DataFrame(best_rows), table.reset_index(drop=True), result)


def best_rate(runs: pd.DataFrame) -> dict[str, float]:
    """The best of one architecture's runs at several rates: the lowest final training error.

    ``runs`` has the columns lr, final_train_error, final_train_loss, final_test_error and
    diverged. Diverged runs are never picked; ties in error go to the lower final training loss,
    then to the smaller rate. Every value is NaN when every run diverged.
    """
    candidates = runs[~runs["diverged"].astype(bool)]
    candidates = candidates.sort_values(["final_train_error", "final_train_loss", "lr"])
    if not len(candidates):
        return dict.fromkeys(
            ("best_lr", "final_train_error", "final_train_loss", "final_test_error"), math.nan
        )
    chosen = candidates.iloc[0]
    return {
        "best_lr": float(chosen["lr"]),
        "final_train_error": float(chosen["final_train_error"]),
        "final_train_loss": float(chosen["final_train_loss"]),
        "final_test_error": float(chosen["final_test_error"]),
    }
