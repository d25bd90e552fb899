"""Functional optimizers, gradient clipping and learning-rate schedules on stacked models.

One home for the update rule, applied by :func:`explodegrad.training.loop.train_stack`, the
loop that trains one network (:func:`~explodegrad.training.loop.train`) and many at once
(:func:`~explodegrad.training.sweep.sweep`).

Parameters, gradients and optimizer buffers are *flat matrices*: one row per model, one
column per scalar parameter. Every reduction (the global gradient norm, ...) runs along a
row, so models never mix. Hyperparameters are per-model column vectors of shape
``(models, 1)``: a learning-rate search is one batched run. The formulas follow
``torch.optim`` (SGD with heavy-ball momentum, Adam with bias correction, RMSprop), with
weight decay added to the gradient after clipping, as ``torch.optim`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from explodegrad.core.checks import check_choice, check_int

OPTIMIZERS = ("sgd", "adam", "rmsprop")
SCHEDULES = ("constant", "step", "cosine")
#: Added to the gradient norm before dividing, as ``torch.nn.utils.clip_grad_norm_`` does.
CLIP_EPS = 1e-6


@dataclass
class Hyperparameters:
    """Per-model hyperparameters as ``(models, 1)`` columns.

    A field is None when it is zero (or off) for every model, so its work is skipped.

    Attributes:
        lr: base learning rates (before the schedule).
        momentum: SGD momentum.
        beta1, beta2: Adam's decay rates of the first and second moments.
        alpha: RMSprop's decay rate of the squared-gradient average.
        eps: the denominator guard of Adam and RMSprop (one value for all models).
        weight_decay: L2 penalty added to the gradient.
        clip_norm: bound on each model's global gradient norm.
        clip_value: bound on every gradient entry's magnitude.
    """

    lr: Tensor
    momentum: Tensor | None = None
    beta1: Tensor | None = None
    beta2: Tensor | None = None
    alpha: Tensor | None = None
    eps: float = 1e-8
    weight_decay: Tensor | None = None
    clip_norm: Tensor | None = None
    clip_value: Tensor | None = None


def column(
    values: Sequence[float | None],
    device: torch.device | str | None,
    dtype: torch.dtype,
    zero_is_off: bool = True,
) -> Tensor | None:
    """A ``(models, 1)`` column of ``values``; None when all are None (or all zero and
    ``zero_is_off``, for terms such as weight decay that zero switches off)."""
    if all(v is None or (zero_is_off and v == 0) for v in values):
        return None
    if any(v is None for v in values):
        raise ValueError(f"values: {list(values)} mixes None with numbers; one group needs all or none")
    return torch.tensor([float(v) for v in values], device=device, dtype=dtype).unsqueeze(1)


@dataclass
class OptimizerState:
    """The buffers an optimizer carries between steps (flat, one row per model).

    Attributes:
        kind: ``"sgd"``, ``"adam"`` or ``"rmsprop"``.
        step: updates taken (counted on the host).
        buffers: the flat moment buffers.
        bias_corrections: Adam only, for a step number held on the device (a CUDA graph's
            step): :func:`adam_bias_corrections`, looked up by that number instead of computed
            from the host's count. None: computed from the host's count.
    """

    kind: str
    step: int = 0
    buffers: dict[str, Tensor] = field(default_factory=dict)
    bias_corrections: Tensor | None = None


def adam_bias_corrections(hyper: Hyperparameters, total_steps: int) -> Tensor:
    """Adam's bias corrections of every update, ``(2, total_steps + 1, models, 1)``, on the device.

    Row ``[0, t]`` is ``1 - beta1 ** t`` and row ``[1, t]`` is ``sqrt(1 - beta2 ** t)`` (index 0
    is 1, unused), each computed by the one function :func:`apply_update` calls for a host step
    count, so looking them up with a device step number gives the same bits. A CUDA graph
    replays one captured step, so the step number must be data, not a constant of the graph.
    Costs a few operations per step once (about 0.5 M numbers for 10,000 steps of 20 models).
    """
    if hyper.beta1 is None or hyper.beta2 is None:
        raise ValueError("hyper: Adam's bias corrections need beta1 and beta2 (Adam's hyperparameters)")
    total_steps = check_int("total_steps", total_steps, 1)
    ones = (torch.ones_like(hyper.beta1), torch.ones_like(hyper.beta2))
    rows = [ones] + [_bias_corrections(hyper, t) for t in range(1, total_steps + 1)]
    return torch.stack([torch.stack([row[k] for row in rows]) for k in (0, 1)])


def _bias_corrections(hyper: Hyperparameters, step: int) -> tuple[Tensor, Tensor]:
    """Adam's ``1 - beta1 ** step`` and ``sqrt(1 - beta2 ** step)`` for a host step count: the
    one expression both the update and :func:`adam_bias_corrections`'s table evaluate."""
    return 1 - hyper.beta1**step, (1 - hyper.beta2**step).sqrt()


def _check_tensor(argument: str, value: object) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{argument}: expected a torch.Tensor, got {type(value).__name__}")


def init_state(kind: str, params: Tensor, hyper: Hyperparameters) -> OptimizerState:
    """Fresh optimizer state for the flat parameter matrix ``params``."""
    kind = check_choice("optimizer", kind, OPTIMIZERS)
    _check_tensor("params", params)
    if not isinstance(hyper, Hyperparameters):
        raise TypeError(f"hyper: expected Hyperparameters, got {type(hyper).__name__}")
    zeros = lambda: torch.zeros_like(params)  # noqa: E731 - tiny local helper
    if kind == "sgd":
        buffers = {"momentum": zeros()} if hyper.momentum is not None else {}
    elif kind == "adam":
        buffers = {"exp_avg": zeros(), "exp_avg_sq": zeros()}
    else:
        buffers = {"square_avg": zeros()}
    return OptimizerState(kind, 0, buffers)


def clip_gradients(
    grads: Tensor, clip_norm: Tensor | float | None = None, clip_value: Tensor | float | None = None
) -> Tensor:
    """Clip each row of ``grads`` (one model's gradient) and return the clipped copy.

    Args:
        grads: flat gradients, one row per model (a 1-d vector is one model).
        clip_norm: scale a row down so that its Euclidean (global) norm is at most this,
            as ``torch.nn.utils.clip_grad_norm_`` does; a ``(models, 1)`` column or a float.
        clip_value: then clamp every entry to ``[-clip_value, clip_value]``.
    """
    _check_tensor("grads", grads)
    squeeze = grads.ndim == 1
    out = grads.unsqueeze(0) if squeeze else grads
    if clip_norm is not None:
        norms = torch.linalg.vector_norm(out, dim=1, keepdim=True)
        out = out * (clip_norm / (norms + CLIP_EPS)).clamp(max=1.0)
    if clip_value is not None:
        bound = clip_value if isinstance(clip_value, Tensor) else torch.tensor(float(clip_value))
        bound = bound.to(out)
        out = torch.clamp(out, min=-bound, max=bound)
    return out.squeeze(0) if squeeze else out


@torch.no_grad()
def apply_update(
    params: Tensor,
    grads: Tensor,
    state: OptimizerState,
    hyper: Hyperparameters,
    lr: Tensor,
    step: int | Tensor | None = None,
) -> None:
    """One optimizer step, in place on ``params`` and the state's buffers.

    Args:
        params: flat parameters (models x scalars); updated in place.
        grads: the (already clipped) gradients, same shape.
        state: buffers from :func:`init_state`; its step count is advanced.
        hyper: the per-model hyperparameters.
        lr: the learning rate of this step per model, ``(models, 1)``: the base rate times
            the schedule, and 0 for a model whose training stopped.
        step: this update's number (1-based; Adam's bias correction reads it): an int, or a
            0-d int64 device tensor (a CUDA graph's), which needs ``state.bias_corrections``.
            None: the state's count after this update.
    """
    if not isinstance(state, OptimizerState):
        raise TypeError(f"state: expected an OptimizerState from init_state, got {type(state).__name__}")
    state.step += 1
    number = state.step if step is None else step
    if hyper.weight_decay is not None:
        grads = grads + hyper.weight_decay * params
    buffers = state.buffers
    if state.kind == "sgd":
        if "momentum" in buffers:
            buffers["momentum"].mul_(hyper.momentum).add_(grads)
            grads = buffers["momentum"]
        params.sub_(lr * grads)
    elif state.kind == "adam":
        exp_avg, exp_avg_sq = buffers["exp_avg"], buffers["exp_avg_sq"]
        exp_avg.mul_(hyper.beta1).add_((1 - hyper.beta1) * grads)
        exp_avg_sq.mul_(hyper.beta2).add_((1 - hyper.beta2) * grads * grads)
        if isinstance(number, Tensor):
            if state.bias_corrections is None:
                raise ValueError(
                    "step: a step number on the device needs state.bias_corrections "
                    "(adam_bias_corrections(hyper, total_steps)) for Adam"
                )
            looked_up = state.bias_corrections.index_select(1, number.reshape(1)).squeeze(1)
            correction1, correction2_sqrt = looked_up[0], looked_up[1]
        else:
            correction1, correction2_sqrt = _bias_corrections(hyper, number)
        denominator = (exp_avg_sq.sqrt() / correction2_sqrt).add_(hyper.eps)
        params.sub_((lr / correction1) * exp_avg / denominator)
    else:
        square_avg = buffers["square_avg"]
        square_avg.mul_(hyper.alpha).add_((1 - hyper.alpha) * grads * grads)
        params.sub_(lr * grads / square_avg.sqrt().add_(hyper.eps))


def schedule_factor(
    schedule: str, step: int, total_steps: int, gamma: float = 0.1, milestones: Sequence[float] = (0.5, 0.75)
) -> float:
    """The multiplier of the base learning rate for update ``step`` (1-based) of ``total_steps``.

    ``constant``: 1. ``step``: ``gamma`` to the number of milestones (fractions of the run)
    already passed. ``cosine``: ``(1 + cos(pi * (step - 1) / total_steps)) / 2``, from 1
    down towards 0.
    """
    schedule = check_choice("schedule", schedule, SCHEDULES)
    total_steps = check_int("total_steps", total_steps, 1)
    step = check_int("step", step, 1, total_steps)
    if schedule == "constant":
        return 1.0
    if schedule == "step":
        passed = sum(step - 1 >= round(m * total_steps) for m in milestones)
        return float(gamma) ** passed
    return 0.5 * (1.0 + math.cos(math.pi * (step - 1) / total_steps))
