"""Chapter 1: the depth at which a dtype overflows, and the SGD step at which training first
produces a NaN/inf loss (:func:`find_overflow`). Overflow is a result, never an exception.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from explodegrad.core.checks import check_choice, check_float_dtype, check_int, check_positive, dtype_name
from explodegrad.core.config import ACTIVATIONS
from explodegrad.core.data import Dataset
from explodegrad.core.nets import DeepMLP, build_mlp, per_example_loss
from explodegrad.core.trace import all_finite, trace
from explodegrad.studies.common import StudyResult, resolve_data

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = ("01/overflow-depth",)


@dataclass(frozen=True, eq=False)  # holds an array: compare fields, not results
class OverflowResult(StudyResult):
    """Where a finite-precision network first overflows, and when training it first breaks.

    Attributes:
        dtype: the floating type, e.g. ``"float32"``.
        width, sigma, activation, seed, max_depth: the networks searched (weights
            N(0, sigma^2 / fan_in), depth 1 ... max_depth).
        depth: the smallest depth whose forward or backward pass holds inf/NaN; None when
            every depth up to ``max_depth`` stayed finite.
        layer: where at that depth, in paper numbering (0 the loss, 1 the logits, L + 1 the
            input); None without overflow.
        phase: ``"forward"`` or ``"backward"`` (None without overflow).
        what: the tensor that overflowed first, in words.
        train_depth: the depth of the network trained by SGD.
        nonfinite_step: the first SGD step whose loss was inf/NaN (0 = before any update);
            None when every step stayed finite.
        train_losses: the mean loss at each SGD step, up to and including the first
            non-finite one.
        message: a one-line summary for the learner.
    """

    dtype: str
    width: int
    sigma: float
    activation: str
    seed: int
    max_depth: int
    depth: int | None
    layer: int | None
    phase: str | None
    what: str | None
    train_depth: int
    nonfinite_step: int | None
    train_losses: np.ndarray
    message: str

    @property
    def overflowed(self) -> bool:
        """True when some depth up to ``max_depth`` overflowed."""
        return self.depth is not None

    def summary(self) -> str:
        """The one-line :attr:`message`."""
        return self.message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class _Overflow:
    phase: str  # "forward" or "backward"
    layer: int  # paper numbering
    what: str  # the tensor, in words
    value: str  # "inf" or "NaN"


def _overflow_in(tensor: Tensor, phase: str, layer: int, what: str) -> _Overflow | None:
    if all_finite(tensor):
        return None
    return _Overflow(phase, layer, what, "inf" if bool(torch.isinf(tensor).any()) else "NaN")


def _first_nonfinite(net: DeepMLP, x: Tensor, y: Tensor) -> _Overflow | None:
    """The first inf/NaN of one forward and backward pass, or None.

    Tensors are checked in the order the passes compute them: forward from the first layer
    f_L to the logits f_1 and the loss f_0; backward from d loss / d f_1 (with layer 1's
    weight gradient) down to the input.
    """
    record = trace(net, x, y, keep_graph=True)
    num_layers = record.num_layers
    for k in range(num_layers, 0, -1):
        if found := _overflow_in(record.f(k), "forward", k, f"the output f_{k}"):
            return found
    loss = record.losses.mean()
    if found := _overflow_in(torch.cat([record.losses, loss.reshape(1)]), "forward", 0, "the loss f_0"):
        return found
    weights = [net.layer(k).linear.weight for k in range(1, num_layers + 1)]
    tensors = [record.f(k) for k in range(1, num_layers + 2)]
    grads = torch.autograd.grad(loss, tensors + weights)
    output_grads, weight_grads = grads[: num_layers + 1], grads[num_layers + 1 :]
    for k in range(1, num_layers + 2):
        if found := _overflow_in(output_grads[k - 1], "backward", k, f"the gradient d loss / d f_{k}"):
            return found
        if k <= num_layers and (
            found := _overflow_in(weight_grads[k - 1], "backward", k, f"the weight gradient of layer {k}")
        ):
            return found
    return None


def _sgd_until_nonfinite(net: DeepMLP, x: Tensor, y: Tensor, steps: int, lr: float) -> np.ndarray:
    """Full-batch SGD; the mean loss of every step, stopping after the first non-finite one."""
    losses = []
    for _ in range(steps):
        net.zero_grad(set_to_none=True)
        loss = per_example_loss(net(x), y).mean()
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            break
        loss.backward()
        with torch.no_grad():
            for parameter in net.parameters():
                if parameter.grad is not None:
                    parameter.add_(parameter.grad, alpha=-lr)
    return np.array(losses)


def find_overflow(
    width: int = 64,
    sigma: float = 10.0,
    dtype: Any = torch.float32,
    max_depth: int = 200,
    *,
    device: Any = None,
    data: Dataset | str = "digits",
    activation: str = "linear",
    batch: int | None = None,
    train_depth: int | None = None,
    steps: int = 20,
    lr: float = 0.01,
    seed: int = 0,
) -> OverflowResult:
    """Find the depth at which a network's numbers overflow, and train one that deep.

    Networks of depth 1 ... ``max_depth`` (weights N(0, sigma^2 / fan_in), so each layer
    multiplies signals by about sigma) are run forward and backward on one batch in
    ``dtype``. Networks built with the same seed share their first layers, so one forward
    pass of the deepest network bounds the answer, and a bisection over depth (signals grow
    with depth) finds the depth where overflow starts. Then a network of ``train_depth``
    (default: that depth, or ``max_depth`` without overflow) is trained by full-batch SGD
    for ``steps`` steps, and the first step with an inf/NaN loss is reported.

    Args:
        width: neurons per hidden layer.
        sigma: per-layer gain (``init="lecun"``, ``init_scale=sigma``).
        dtype: ``torch.float16``, ``torch.bfloat16``, ``torch.float32`` or ``torch.float64``
            (or its name).
        max_depth: deepest network tried.
        device: where to run (:func:`~explodegrad.core.device.resolve_device`; default the
            data's, else the setup's choice).
        data: a :class:`~explodegrad.core.data.Dataset` or a data set name (loaded in float32;
            the batch is then cast to ``dtype``).
        activation: hidden activation (``"linear"`` makes the growth exactly sigma per layer).
        batch: examples in the fixed batch (default: 64, or all when there are fewer).
        train_depth: depth of the network trained by SGD.
        steps, lr: the SGD run.
        seed: seed of the weights and of the batch.
    """
    width = check_int("width", width, 1)
    sigma = check_positive("sigma", sigma)
    dtype = check_float_dtype(dtype)
    max_depth = check_int("max_depth", max_depth, 1)
    activation = check_choice("activation", activation, ACTIVATIONS)
    steps = check_int("steps", steps, 1)
    lr = check_positive("lr", lr)
    seed = check_int("seed", seed, 0)
    if train_depth is not None:
        train_depth = check_int("train_depth", train_depth, 1)
    if data is None:
        raise TypeError("data=None is not allowed: data must be a Dataset or a data set name")
    data = resolve_data(data, device=device, dtype=torch.float32 if isinstance(data, str) else None)
    available = int(data.x_train.shape[0])
    batch = min(64, available) if batch is None else check_int("batch", batch, 1, available)
    x, y = data.batch(batch, seed=seed)
    x = x.to(dtype)

    def build(depth: int) -> DeepMLP:
        return build_mlp(
            depth,
            width,
            activation,
            init="lecun",
            init_scale=sigma,
            in_features=data.in_features,
            out_features=data.num_classes,
            seed=seed,
            device=x.device,
            dtype=dtype,
        )

    cache: dict[int, _Overflow | None] = {}

    def overflow_at(depth: int) -> _Overflow | None:
        if depth not in cache:
            cache[depth] = _first_nonfinite(build(depth), x, y)
        return cache[depth]

    # The first max_depth - 1 layers are shared by every depth: the deepest network's forward
    # pass shows the first hidden layer to overflow, an upper bound for the answer.
    deepest = overflow_at(max_depth)
    found: int | None = None
    if deepest is not None:
        high = max_depth
        if deepest.phase == "forward" and deepest.layer >= 2:
            # f_k is hidden layer max_depth - k + 1 from the input; one more for the readout.
            bound = max_depth - deepest.layer + 2
            high = bound if overflow_at(bound) is not None else max_depth
        low = 1
        while low < high:  # invariant: depth `high` overflows
            middle = (low + high) // 2
            if overflow_at(middle) is not None:
                high = middle
            else:
                low = middle + 1
        found = high
    where = overflow_at(found) if found is not None else None

    trained_depth = train_depth or found or max_depth
    losses = _sgd_until_nonfinite(build(trained_depth), x, y, steps, lr)
    nonfinite = int(len(losses) - 1) if not math.isfinite(losses[-1]) else None

    name = dtype_name(dtype)
    if where is None:
        message = f"{name} stayed finite up to depth {max_depth} (sigma={sigma:g} per layer)"
    else:
        place = "" if where.layer == 0 else f"layer {where.layer} from the output: "
        message = (
            f"{name} overflowed to {where.value} at depth {found} ({place}{where.what}, {where.phase} pass)"
        )
    if nonfinite is None:
        message += f"; SGD at depth {trained_depth} kept a finite loss for {len(losses)} steps"
    else:
        message += f"; SGD at depth {trained_depth} hit a non-finite loss at step {nonfinite}"
    return OverflowResult(
        dtype=name,
        width=width,
        sigma=sigma,
        activation=activation,
        seed=seed,
        max_depth=max_depth,
        depth=found,
        layer=None if where is None else where.layer,
        phase=None if where is None else where.phase,
        what=None if where is None else where.what,
        train_depth=trained_depth,
        nonfinite_step=nonfinite,
        train_losses=losses,
        message=message,
    )
