"""Chapter 1 experiments: why gradients multiply.

Backpropagation multiplies one Jacobian per layer (or per time step), so a gradient that
crosses L layers is a product of L factors. These toy models show what follows, each
measured with autograd rather than read off a formula:

* :func:`scalar_chain`: y = w^L x; the gradient through l multiplications is exactly w^l.
* :func:`deep_linear_gradients`: a deep linear network of per-layer gain sigma; the
  gradient norm grows like sigma per layer from the output back.
* :func:`find_overflow`: the depth at which float32 (or another dtype) reaches inf, and the
  SGD step at which training a network that deep first produces a NaN/inf loss.
* :func:`gradient_descent_path`: gradient descent on an ill-conditioned quadratic; a step
  above 2 / (largest curvature) overshoots and diverges.
* :func:`rnn_gradient_vs_time`: a vanilla RNN powers the same recurrent matrix at every step,
  so d h_T / d h_{T-t} behaves like radius^t.
* :func:`recurrent_gradients`: vanilla RNN vs LSTM vs GRU on the bundled digits read row by
  row; ||d loss / d x_t|| vs t at initialization and after a short training.
* :func:`init_scales`: the first remedy, initialization: per-layer activation and gradient
  scales for a naive Gaussian draw, Xavier and He.

Layers are numbered from the output, as in the paper (f_1 the logits, f_{L+1} the input).
Every result is a small dataclass of numbers; overflow shows up as inf/NaN in a result,
never as an exception.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explodegrad._checks import check_choice, check_int, check_positive
from explodegrad.config import ACTIVATIONS, INITS, NetConfig
from explodegrad.data import Dataset, gaussian_data, load_dataset, load_digits
from explodegrad.init import orthogonal_matrix
from explodegrad.nets import DeepMLP, build_mlp, per_example_loss
from explodegrad.trace import trace
from explodegrad.train import TrainHistory, TrainSettings, train

#: Floating-point types :func:`find_overflow` can run in, by name.
FLOAT_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16,
                "float32": torch.float32, "float64": torch.float64}
#: Recurrent cells :func:`recurrent_gradients` compares.
CELLS = ("rnn", "lstm", "gru")
#: How a recurrent network reads an 8x8 digit: one row (or column) per time step.
READINGS = ("rows", "columns")
#: Recurrent matrices of :func:`rnn_gradient_vs_time`: radius x orthogonal, or a rescaled Gaussian.
RECURRENT_MATRICES = ("orthogonal", "gaussian")
RNN_ACTIVATIONS = ("tanh", "linear")


# ----------------------------------------------------------------------------- helpers

def _check_finite(argument: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number (any sign), else raise ``ValueError``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{argument}={value!r} is not allowed: {argument} must be a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{argument}={value!r} is not allowed: {argument} must be a finite number")
    return number


def _check_dtype(dtype: Any) -> torch.dtype:
    """A floating torch dtype from a dtype or its name; ``ValueError`` otherwise."""
    if isinstance(dtype, str) and dtype.lower() in FLOAT_DTYPES:
        return FLOAT_DTYPES[dtype.lower()]
    if dtype in FLOAT_DTYPES.values():
        return dtype
    raise ValueError(f"dtype={dtype!r} is not supported: dtype must be one of "
                     f"{', '.join(f'torch.{name}' for name in FLOAT_DTYPES)}")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def growth_factor(steps: np.ndarray, values: np.ndarray) -> float:
    """Fitted factor per step: exp of the least-squares slope of log(values) against steps.

    Only finite positive values enter the fit (overflowed or vanished entries are skipped);
    NaN when fewer than two remain.
    """
    steps = np.asarray(steps, dtype=float)
    values = np.asarray(values, dtype=float)
    usable = np.isfinite(values) & (values > 0)
    if usable.sum() < 2:
        return float("nan")
    slope = np.polyfit(steps[usable], np.log(values[usable]), 1)[0]
    return float(np.exp(slope))


def _rms(tensor: Tensor) -> float:
    """Root mean square, computed in float64 so that large float32 entries do not overflow it."""
    return float(tensor.detach().double().pow(2).mean().sqrt())


def _norm(tensor: Tensor) -> float:
    return float(torch.linalg.vector_norm(tensor.detach().double()))


def _is_finite(tensor: Tensor) -> bool:
    return bool(torch.isfinite(tensor).all())


# ----------------------------------------------------------------------------- 1. scalar chain

@dataclass
class ChainResult:
    """A scalar chain y = w * w * ... * w * x (``depth`` multiplications by ``weight``).

    Attributes:
        weight: the multiplier w.
        depth: L, the number of multiplications.
        x: the input.
        output: y as computed by the chain.
        depths: 1 ... L.
        gradients: ``gradients[l - 1]`` = d y / d h_{L-l}, the gradient after flowing back
            through l multiplications (h_0 = x, so the last entry is dy/dx), by autograd.
        predicted: w^l, the chain rule's prediction for each l.
    """

    weight: float
    depth: int
    x: float
    output: float
    depths: np.ndarray
    gradients: np.ndarray
    predicted: np.ndarray

    @property
    def input_gradient(self) -> float:
        """dy/dx = w^L."""
        return float(self.gradients[-1])


def scalar_chain(weight: float = 1.1, depth: int = 30, x: float = 1.0) -> ChainResult:
    """Multiply ``x`` by ``weight`` ``depth`` times and backpropagate through the chain (float64).

    One backward pass gives the gradient of the output with respect to every intermediate
    value: the chain rule makes it a product of l copies of w, so it explodes for |w| > 1
    and vanishes for |w| < 1. Past float64's range it becomes inf (reported, not raised).
    """
    weight = _check_finite("weight", weight)
    depth = check_int("depth", depth, 1)
    x = _check_finite("x", x)
    w = torch.tensor(weight, dtype=torch.float64)
    values = [torch.tensor(x, dtype=torch.float64, requires_grad=True)]
    for _ in range(depth):
        values.append(w * values[-1])
    grads = torch.autograd.grad(values[-1], values[:-1])  # d y / d h_0 ... d y / d h_{L-1}
    gradients = np.array([float(g) for g in reversed(grads)])  # index l-1: l multiplications back
    with np.errstate(over="ignore"):
        predicted = np.cumprod(np.full(depth, weight))
    return ChainResult(weight=weight, depth=depth, x=x, output=float(values[-1].detach()),
                       depths=np.arange(1, depth + 1), gradients=gradients, predicted=predicted)


# ----------------------------------------------------------------------------- 2. deep linear net

@dataclass
class LinearGradients:
    """Gradient norms of a deep linear network with per-layer gain sigma.

    Attributes:
        depth, width, sigma, seed: the network (weights N(0, sigma^2 / fan_in)).
        layers: k = 1 ... L + 1 in paper numbering (1 the logits, L + 1 the input).
        gradient_norms: ||d loss / d f_k||_F over the batch, loss the mean cross-entropy.
        growth_factor: fitted factor by which the gradient norm grows per layer from the
            output back; the chain rule predicts sigma.
    """

    depth: int
    width: int
    sigma: float
    seed: int
    layers: np.ndarray
    gradient_norms: np.ndarray
    growth_factor: float

    @property
    def predicted_growth(self) -> float:
        """The prediction: each Gaussian layer multiplies the gradient norm by about sigma."""
        return self.sigma


def deep_linear_gradients(depth: int = 30, width: int = 100, sigma: float = 1.2, seed: int = 0,
                          batch: int = 64, num_classes: int = 10) -> LinearGradients:
    """Backpropagate a cross-entropy loss through a deep linear network (float64).

    Every layer is a Gaussian matrix with std sigma / sqrt(fan_in) (``init="lecun"``,
    ``init_scale=sigma``), which multiplies the norm of a vector passing back through it by
    about sigma; so log ||d loss / d f_k|| grows like k log(sigma).
    """
    depth = check_int("depth", depth, 1)
    width = check_int("width", width, 1)
    sigma = check_positive("sigma", sigma)
    seed = check_int("seed", seed, 0)
    batch = check_int("batch", batch, 1)
    num_classes = check_int("num_classes", num_classes, 2)
    net = build_mlp(depth, width, "linear", init="lecun", init_scale=sigma, in_features=width,
                    out_features=num_classes, seed=seed, dtype=torch.float64)
    data = gaussian_data(n_train=batch, n_test=1, in_features=width, num_classes=num_classes,
                         seed=seed, dtype=torch.float64)
    record = trace(net, data.x_train, data.y_train, keep_graph=True)
    layers = np.arange(1, record.num_layers + 2)
    grads = torch.autograd.grad(record.losses.mean(), [record.f(int(k)) for k in layers])
    norms = np.array([_norm(g) for g in grads])
    return LinearGradients(depth=depth, width=width, sigma=sigma, seed=seed, layers=layers,
                           gradient_norms=norms, growth_factor=growth_factor(layers, norms))


# ----------------------------------------------------------------------------- 3. overflow

@dataclass
class OverflowResult:
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

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class _Overflow:
    phase: str  # "forward" or "backward"
    layer: int  # paper numbering
    what: str  # the tensor, in words
    value: str  # "inf" or "NaN"


def _overflow_in(tensor: Tensor, phase: str, layer: int, what: str) -> _Overflow | None:
    if _is_finite(tensor):
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
    output_grads, weight_grads = grads[:num_layers + 1], grads[num_layers + 1:]
    for k in range(1, num_layers + 2):
        if found := _overflow_in(output_grads[k - 1], "backward", k, f"the gradient d loss / d f_{k}"):
            return found
        if k <= num_layers and (found := _overflow_in(weight_grads[k - 1], "backward", k,
                                                       f"the weight gradient of layer {k}")):
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


def find_overflow(width: int = 64, sigma: float = 10.0, dtype: Any = torch.float32,
                  max_depth: int = 200, *, activation: str = "linear", data: Dataset | str = "digits",
                  batch: int | None = None, train_depth: int | None = None, steps: int = 20,
                  lr: float = 0.01, seed: int = 0) -> OverflowResult:
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
        activation: hidden activation (``"linear"`` makes the growth exactly sigma per layer).
        data: a :class:`~explodegrad.data.Dataset` or a name for
            :func:`~explodegrad.data.load_dataset`.
        batch: examples in the fixed batch (default: 64, or all when there are fewer).
        train_depth: depth of the network trained by SGD.
        steps, lr: the SGD run.
        seed: seed of the weights and of the batch.
    """
    width = check_int("width", width, 1)
    sigma = check_positive("sigma", sigma)
    dtype = _check_dtype(dtype)
    max_depth = check_int("max_depth", max_depth, 1)
    activation = check_choice("activation", activation, ACTIVATIONS)
    steps = check_int("steps", steps, 1)
    lr = check_positive("lr", lr)
    seed = check_int("seed", seed, 0)
    if train_depth is not None:
        train_depth = check_int("train_depth", train_depth, 1)
    if isinstance(data, str):
        data = load_dataset(data)
    if not isinstance(data, Dataset):
        raise ValueError(f"data={data!r} is not allowed: data must be a Dataset or a data set name")
    available = int(data.x_train.shape[0])
    batch = min(64, available) if batch is None else check_int("batch", batch, 1, available)
    x, y = data.batch(batch, seed=seed)
    x = x.to(dtype)

    def build(depth: int) -> DeepMLP:
        return build_mlp(depth, width, activation, init="lecun", init_scale=sigma,
                         in_features=data.in_features, out_features=data.num_classes, seed=seed,
                         dtype=dtype)

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

    name = _dtype_name(dtype)
    if where is None:
        message = f"{name} stayed finite up to depth {max_depth} (sigma={sigma:g} per layer)"
    else:
        place = "" if where.layer == 0 else f"layer {where.layer} from the output: "
        message = (f"{name} overflowed to {where.value} at depth {found} ({place}{where.what}, "
                   f"{where.phase} pass)")
    if nonfinite is None:
        message += f"; SGD at depth {trained_depth} kept a finite loss for {len(losses)} steps"
    else:
        message += f"; SGD at depth {trained_depth} hit a non-finite loss at step {nonfinite}"
    return OverflowResult(dtype=name, width=width, sigma=sigma, activation=activation, seed=seed,
                          max_depth=max_depth, depth=found,
                          layer=None if where is None else where.layer,
                          phase=None if where is None else where.phase,
                          what=None if where is None else where.what,
                          train_depth=trained_depth, nonfinite_step=nonfinite, train_losses=losses,
                          message=message)


# ----------------------------------------------------------------------------- 4. overshooting

@dataclass
class PathResult:
    """Gradient descent on the quadratic loss 0.5 * sum_i c_i x_i^2.

    Attributes:
        lr: the step size.
        curvature: c_i, the loss's second derivatives along each axis.
        points: (steps + 1) x dims, the iterates from the start.
        losses: the loss at each point.
        diverged: the measured verdict: the loss ended above where it started (or overflowed).
        threshold: 2 / max(c), the largest step size that does not diverge.
    """

    lr: float
    curvature: np.ndarray
    points: np.ndarray
    losses: np.ndarray
    diverged: bool
    threshold: float

    @property
    def factors(self) -> np.ndarray:
        """|1 - lr * c_i|: the factor each coordinate is multiplied by at every step."""
        return np.abs(1.0 - self.lr * self.curvature)

    @property
    def predicted_diverges(self) -> bool:
        """The closed-form verdict: some coordinate grows, i.e. lr > 2 / max(c)."""
        return bool(self.factors.max() > 1.0)


def quadratic_loss(points: np.ndarray, curvature: Sequence[float]) -> np.ndarray:
    """0.5 * sum_i c_i x_i^2 for points stacked on the last axis (also on a plotting grid)."""
    points = np.asarray(points, dtype=float)
    curvature = np.asarray(curvature, dtype=float)
    if points.shape[-1] != curvature.shape[0]:
        raise ValueError(f"points: the last axis has {points.shape[-1]} coordinates but there are "
                         f"{curvature.shape[0]} curvatures")
    with np.errstate(over="ignore", invalid="ignore"):
        return 0.5 * (curvature * points**2).sum(axis=-1)


def gradient_descent_path(lr: float = 0.05, steps: int = 30, curvature: Sequence[float] = (1.0, 20.0),
                          start: Sequence[float] | None = None) -> PathResult:
    """Run gradient descent x <- x - lr * c * x on an ill-conditioned quadratic (float64).

    Each coordinate is multiplied by (1 - lr c_i) per step: the flat direction crawls while
    the steep one overshoots, and for lr > 2 / max(c) it overshoots further every step.

    Args:
        lr: step size (> 0).
        steps: number of steps.
        curvature: positive curvatures c_i, one per coordinate.
        start: the starting point (default: all ones).
    """
    lr = check_positive("lr", lr)
    steps = check_int("steps", steps, 1)
    if isinstance(curvature, (str, bytes)) or not isinstance(curvature, Sequence | np.ndarray):
        raise ValueError(f"curvature={curvature!r} is not allowed: curvature must be a sequence of "
                         "positive numbers, one per coordinate")
    curv = np.array([check_positive("curvature", c) for c in curvature])
    if curv.size == 0:
        raise ValueError("curvature=() is not allowed: give at least one positive curvature")
    if start is None:
        start = np.ones(curv.size)
    begin = np.array([_check_finite("start", s) for s in start])
    if begin.shape != curv.shape:
        raise ValueError(f"start={tuple(start)!r} is not allowed: start must have one coordinate per "
                         f"curvature ({curv.size})")
    points = np.empty((steps + 1, curv.size))
    points[0] = begin
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(steps):
            points[step + 1] = points[step] - lr * curv * points[step]
    losses = quadratic_loss(points, curv)
    diverged = bool(not np.isfinite(losses[-1]) or losses[-1] > losses[0])
    return PathResult(lr=lr, curvature=curv, points=points, losses=losses, diverged=diverged,
                      threshold=2.0 / float(curv.max()))


# ----------------------------------------------------------------------------- 5a. RNN vs time

@dataclass
class RNNTimeGradients:
    """How d h_T / d h_{T-t} of a vanilla RNN scales with the distance t.

    Attributes:
        spectral_radius, hidden, activation, matrix, seed: the recurrence
            h_t = act(W h_{t-1} + U x_t), W of the given spectral radius.
        steps_back: t = 0 ... steps.
        gradient_norms: ||d h_T / d h_{T-t}||_qm (Frobenius / sqrt(hidden), pooled over the
            batch), by autograd.
        predicted: radius^t, exact for a linear RNN with W = radius x orthogonal.
        growth_factor: fitted factor per step (about the radius for a linear RNN).
    """

    spectral_radius: float
    hidden: int
    activation: str
    matrix: str
    seed: int
    steps_back: np.ndarray
    gradient_norms: np.ndarray
    predicted: np.ndarray
    growth_factor: float


def recurrent_matrix(hidden: int, spectral_radius: float, matrix: str = "orthogonal",
                     seed: int = 0) -> Tensor:
    """A hidden x hidden float64 matrix whose largest |eigenvalue| is ``spectral_radius``.

    ``"orthogonal"``: radius x a random orthogonal matrix (every eigenvalue has modulus
    radius, so ||W^t||_qm = radius^t exactly). ``"gaussian"``: a Gaussian matrix rescaled
    to the radius (non-normal, so powers follow radius^t only up to a constant).
    """
    hidden = check_int("hidden", hidden, 1)
    spectral_radius = check_positive("spectral_radius", spectral_radius)
    matrix = check_choice("matrix", matrix, RECURRENT_MATRICES)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
    if matrix == "orthogonal":
        return spectral_radius * orthogonal_matrix(hidden, hidden, generator, dtype=torch.float64)
    draw = torch.randn(hidden, hidden, generator=generator, dtype=torch.float64)
    radius = torch.linalg.eigvals(draw).abs().max()
    return draw * (spectral_radius / radius)


def rnn_gradient_vs_time(spectral_radius: float = 1.1, steps: int = 30, hidden: int = 32,
                         activation: str = "tanh", seed: int = 0, *, matrix: str = "orthogonal",
                         input_size: int = 8, input_scale: float = 1.0,
                         batch: int = 4) -> RNNTimeGradients:
    """Run a vanilla RNN for ``steps`` steps and measure d h_T / d h_{T-t} for every t (float64).

    Backpropagation through time multiplies one Jacobian diag(act') W per step: a linear
    RNN powers W, so the gradient grows or shrinks like radius^t; tanh's derivative (<= 1)
    can only shrink it further. All Jacobians come from one batched backward pass.
    """
    spectral_radius = check_positive("spectral_radius", spectral_radius)
    steps = check_int("steps", steps, 1)
    hidden = check_int("hidden", hidden, 1)
    activation = check_choice("activation", activation, RNN_ACTIVATIONS)
    seed = check_int("seed", seed, 0)
    matrix = check_choice("matrix", matrix, RECURRENT_MATRICES)
    input_size = check_int("input_size", input_size, 1)
    input_scale = check_positive("input_scale", input_scale, allow_zero=True)
    batch = check_int("batch", batch, 1)
    recurrent = recurrent_matrix(hidden, spectral_radius, matrix, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    input_weights = torch.randn(hidden, input_size, generator=generator, dtype=torch.float64)
    input_weights /= math.sqrt(input_size)
    inputs = input_scale * torch.randn(steps, batch, input_size, generator=generator, dtype=torch.float64)
    act = torch.tanh if activation == "tanh" else (lambda u: u)
    states = [torch.zeros(batch, hidden, dtype=torch.float64, requires_grad=True)]
    for t in range(steps):
        states.append(act(states[-1] @ recurrent.T + inputs[t] @ input_weights.T))
    # One probe per hidden unit: row i of every example's Jacobian at once.
    probes = torch.eye(hidden, dtype=torch.float64).unsqueeze(1).expand(hidden, batch, hidden)
    grads = torch.autograd.grad(states[-1], states[:-1], grad_outputs=probes, is_grads_batched=True)
    norms = [1.0] + [_norm(g) / math.sqrt(batch * hidden) for g in reversed(grads)]
    steps_back = np.arange(steps + 1)
    gradient_norms = np.array(norms)
    with np.errstate(over="ignore"):
        predicted = spectral_radius ** steps_back.astype(float)
    return RNNTimeGradients(spectral_radius=spectral_radius, hidden=hidden, activation=activation,
                            matrix=matrix, seed=seed, steps_back=steps_back,
                            gradient_norms=gradient_norms, predicted=predicted,
                            growth_factor=growth_factor(steps_back, gradient_norms))


# ----------------------------------------------------------------------------- 5b. RNN/LSTM/GRU

@dataclass
class RecurrentGradients:
    """Input gradients of a recurrent digit classifier over time, before and after training.

    Attributes:
        cell: ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``.
        hidden, reading, seed: the model and how it reads a digit (8 rows or 8 columns).
        steps_trained: Adam steps taken.
        time_steps: t = 1 ... 8 (t = 1 is read first, furthest from the readout).
        gradient_init, gradient_trained: root mean square over test examples of
            ||d loss_i / d x_{i,t}|| at initialization and after training.
        train_losses: mean training loss at every step.
        accuracy_init, accuracy_trained: test accuracy.
    """

    cell: str
    hidden: int
    reading: str
    seed: int
    steps_trained: int
    time_steps: np.ndarray
    gradient_init: np.ndarray
    gradient_trained: np.ndarray
    train_losses: np.ndarray
    accuracy_init: float
    accuracy_trained: float

    @property
    def first_to_last_init(self) -> float:
        """||grad at t = 1|| / ||grad at t = 8|| at initialization: < 1 means it faded with distance."""
        return float(self.gradient_init[0] / self.gradient_init[-1])

    @property
    def first_to_last_trained(self) -> float:
        """The same ratio after training."""
        return float(self.gradient_trained[0] / self.gradient_trained[-1])


class SequenceClassifier(nn.Module):
    """A recurrent cell (torch.nn.RNN/LSTM/GRU) whose last hidden state feeds a linear readout."""

    def __init__(self, cell: str, input_size: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        cell = check_choice("cell", cell, CELLS)
        core = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.core = core(input_size, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, num_classes)

    def forward(self, sequences: Tensor) -> Tensor:
        """Logits from (batch x time x features) sequences."""
        outputs, _ = self.core(sequences)
        return self.readout(outputs[:, -1])


def digit_sequences(data: Dataset, split: str = "train", reading: str = "rows") -> tuple[Tensor, Tensor]:
    """The 8x8 digits as (batch x 8 x 8) sequences: one row (or column) per time step."""
    split = check_choice("split", split, ("train", "test"))
    reading = check_choice("reading", reading, READINGS)
    if data.in_features != 64:
        raise ValueError(f"data: {data.in_features} features given, but digit sequences need the "
                         "64 pixels of the 8x8 digits (explodegrad.data.load_digits)")
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    images = x.reshape(-1, 8, 8)  # (batch, row, column)
    return (images if reading == "rows" else images.transpose(1, 2)).contiguous(), y


def _input_gradients(model: SequenceClassifier, sequences: Tensor,
                     labels: Tensor) -> tuple[np.ndarray, float]:
    """RMS over examples of ||d loss_i / d x_{i,t}|| for every t, and the accuracy."""
    inputs = sequences.detach().clone().requires_grad_(True)
    logits = model(inputs)
    (grad,) = torch.autograd.grad(per_example_loss(logits, labels).sum(), inputs)
    per_example = grad.double().pow(2).sum(dim=2)  # (batch, time): ||d loss_i / d x_{i,t}||^2
    accuracy = float((logits.argmax(dim=1) == labels).double().mean())
    return per_example.mean(dim=0).sqrt().numpy(), accuracy


def recurrent_gradients(cell: str = "lstm", steps_trained: int = 200, seed: int = 0, *,
                        hidden: int = 32, reading: str = "rows", lr: float = 0.01, batch: int = 64,
                        data: Dataset | None = None) -> RecurrentGradients:
    """Train a recurrent classifier briefly on the bundled digits and measure ||d loss / d x_t||.

    The readout sees only the last hidden state, so the gradient reaching an early row has
    crossed many recurrent Jacobians: it fades in a vanilla tanh RNN, while the gated cells
    (LSTM, GRU) keep a more direct path. Training uses Adam on seeded mini-batches; gradients
    are measured on the test split.

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        steps_trained: Adam steps (0 measures the untrained model twice).
        seed: seed of the weights and of the mini-batches.
        hidden: hidden units.
        reading: ``"rows"`` or ``"columns"`` of each digit per time step.
        lr: Adam's step size.
        batch: mini-batch size.
        data: the digits (default: :func:`explodegrad.data.load_digits`).
    """
    cell = check_choice("cell", cell, CELLS)
    steps_trained = check_int("steps_trained", steps_trained, 0)
    seed = check_int("seed", seed, 0)
    hidden = check_int("hidden", hidden, 1)
    reading = check_choice("reading", reading, READINGS)
    lr = check_positive("lr", lr)
    data = load_digits(seed=seed) if data is None else data
    train_x, train_y = digit_sequences(data, "train", reading)
    test_x, test_y = digit_sequences(data, "test", reading)
    batch = check_int("batch", batch, 1, int(train_x.shape[0]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SequenceClassifier(cell, train_x.shape[2], hidden, data.num_classes).to(train_x)
    gradient_init, accuracy_init = _input_gradients(model, test_x, test_y)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps_trained):
        chosen = torch.randint(int(train_x.shape[0]), (batch,), generator=generator).to(train_x.device)
        optimizer.zero_grad(set_to_none=True)
        loss = per_example_loss(model(train_x[chosen]), train_y[chosen]).mean()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    gradient_trained, accuracy_trained = _input_gradients(model, test_x, test_y)
    return RecurrentGradients(cell=cell, hidden=hidden, reading=reading, seed=seed,
                              steps_trained=steps_trained, time_steps=np.arange(1, train_x.shape[1] + 1),
                              gradient_init=gradient_init, gradient_trained=gradient_trained,
                              train_losses=np.array(losses), accuracy_init=accuracy_init,
                              accuracy_trained=accuracy_trained)


# ----------------------------------------------------------------------------- 6. initialization

@dataclass
class InitScales:
    """Per-layer activation and gradient scales of one network shape under several initializers.

    Attributes:
        depth, width, activation, seed: the networks.
        inits: the initializers compared; row i of every array belongs to ``inits[i]``.
        init_scales: the ``init_scale`` each was built with (the Gaussian's absolute std).
        layers: k = 1 ... L in paper numbering (1 the logits, L the first layer).
        activation_rms: (inits x layers) root mean square of f_k over the batch.
        gradient_rms: (inits x layers) root mean square of d mean-loss / d f_k.
        gradient_growth: per initializer, the fitted factor by which the gradient RMS grows
            per layer from the output back (1 = stable, > 1 exploding, < 1 vanishing).
    """

    depth: int
    width: int
    activation: str
    seed: int
    inits: tuple[str, ...]
    init_scales: tuple[float, ...]
    layers: np.ndarray
    activation_rms: np.ndarray
    gradient_rms: np.ndarray
    gradient_growth: np.ndarray

    def row(self, init: str) -> int:
        """The row of ``init`` in the arrays."""
        return self.inits.index(check_choice("init", init, self.inits))


def init_scales(depth: int = 20, width: int = 100, activation: str = "relu",
                inits: Sequence[str] = ("gaussian", "xavier", "he"), *, gaussian_std: float = 1.0,
                batch: int = 64, seed: int = 0, dtype: torch.dtype = torch.float32) -> InitScales:
    """Trace one network per initializer on Gaussian inputs and record per-layer scales.

    A naive N(0, gaussian_std^2) draw multiplies signals by about gaussian_std * sqrt(width *
    gain) per layer, so activations and gradients explode (or vanish) geometrically; Xavier
    and He choose the std from the fan-in so that the scale stays put (He for ReLU). Values
    past the dtype's range show up as inf/NaN in the result.
    """
    depth = check_int("depth", depth, 1)
    width = check_int("width", width, 1)
    activation = check_choice("activation", activation, ACTIVATIONS)
    if isinstance(inits, str) or not inits:
        raise ValueError(f"inits={inits!r} is not allowed: inits must be a non-empty sequence of "
                         f"names from {', '.join(repr(i) for i in INITS)}")
    names = tuple(check_choice("inits", name, INITS) for name in inits)
    gaussian_std = check_positive("gaussian_std", gaussian_std)
    batch = check_int("batch", batch, 1)
    seed = check_int("seed", seed, 0)
    data = gaussian_data(n_train=batch, n_test=1, in_features=width, seed=seed, dtype=dtype)
    scales = tuple(gaussian_std if name == "gaussian" else 1.0 for name in names)
    activation_rms, gradient_rms = [], []
    layers = np.arange(1, depth + 1)
    for name, scale in zip(names, scales):
        net = build_mlp(depth, width, activation, init=name, init_scale=scale, in_features=width,
                        seed=seed, dtype=dtype)
        record = trace(net, data.x_train, data.y_train, keep_graph=True)
        outputs = [record.f(int(k)) for k in layers]
        grads = torch.autograd.grad(record.losses.mean(), outputs)
        activation_rms.append([_rms(o) for o in outputs])
        gradient_rms.append([_rms(g) for g in grads])
    gradient_array = np.array(gradient_rms)
    return InitScales(depth=depth, width=width, activation=activation, seed=seed, inits=names,
                      init_scales=scales, layers=layers, activation_rms=np.array(activation_rms),
                      gradient_rms=gradient_array,
                      gradient_growth=np.array([growth_factor(layers, g) for g in gradient_array]))


# ----------------------------------------------------------------------------- 7. clipping

#: The clipping comparison of chapter 01: name -> the clipping settings of the run.
CLIPPING_RUNS = {"no clipping": {}, "clip_norm=1": {"clip_norm": 1.0},
                 "clip_value=0.01": {"clip_value": 0.01}}


def clipping_comparison(steps: int = 200, seeds: int | Sequence[int] = 3, *, depth: int = 10, width: int = 64,
                        lr: float = 0.1, data: Dataset | None = None) -> dict[str, list[TrainHistory]]:
    """SGD (momentum 0.9) at a learning rate that diverges, without and with clipping, per seed.

    A ReLU network (He init, float64 on the bundled digits) is trained once per seed without
    clipping, with clipping by norm (1) and by value (0.01), from the same weights and
    minibatches. Divergence is a result (``history.diverged``), never an error.

    Returns:
        name (:data:`CLIPPING_RUNS`) -> one :class:`~explodegrad.train.TrainHistory` per seed.
    """
    steps = check_int("steps", steps, 1)
    chosen = tuple(range(check_int("seeds", seeds, 1))) if isinstance(seeds, int) else tuple(
        check_int("seeds", seed, 0) for seed in seeds)
    if not chosen:
        raise ValueError("seeds=() is not allowed: give at least one seed")
    digits = load_digits(dtype=torch.float64) if data is None else data
    runs: dict[str, list[TrainHistory]] = {name: [] for name in CLIPPING_RUNS}
    for seed in chosen:
        config = NetConfig(depth=check_int("depth", depth, 1), width=check_int("width", width, 1),
                           activation="relu", init="he", seed=seed)
        settings = TrainSettings(optimizer="sgd", lr=check_positive("lr", lr), momentum=0.9, steps=steps,
                                 batch_size=128, record_every=10, seed=seed)
        for name, clip in CLIPPING_RUNS.items():
            runs[name].append(train(config, digits, settings.with_(**clip), progress=False))
    return runs
