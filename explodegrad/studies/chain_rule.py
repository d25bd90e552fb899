"""Chapters 1 and 2: why gradients multiply, and initializations that keep the product near one.

Backpropagation multiplies one Jacobian per layer, so a gradient that crosses L layers is a
product of L factors. :func:`scalar_chain` (y = w^L x), :func:`deep_linear_gradients` (a deep
linear network of per-layer gain sigma) and :func:`init_scales` (naive Gaussian, Xavier and He
draws) show what follows, each measured with autograd rather than read off a formula.

Layers are numbered from the output, as in the paper (f_1 the logits, f_{L+1} the input).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from explodegrad.core.checks import (
    check_choice,
    check_finite,
    check_float_dtype,
    check_int,
    check_memory,
    check_positive,
    check_seed,
    format_bytes,
)
from explodegrad.core.config import ACTIVATIONS, INITS, NetConfig, check_depth
from explodegrad.core.data import gaussian_data
from explodegrad.core.nets import build_mlp, check_network_size
from explodegrad.core.trace import float64_norm, float64_rms, trace
from explodegrad.measures.gsc import growth_factor
from explodegrad.studies.common import StudyResult

#: The longest scalar chain: every multiplication is one tensor and one autograd node (measured
#: about 20 microseconds and 2 kB each on a laptop CPU), so 100,000 take ~2 s.
MAX_CHAIN_DEPTH = 100_000
CHAIN_SECONDS_PER_STEP = 2e-5
CHAIN_BYTES_PER_STEP = 2_000

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = (
    "01/scalar-chain-exact",
    "01/linear-grows-sigma",
    "02/he-keeps-scale",
)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class ChainResult(StudyResult):
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

    def summary(self) -> str:
        """One line: the output and dy/dx = w^L."""
        return (
            f"w = {self.weight:g}, {self.depth} multiplications: y = {self.output:.4g}, "
            f"dy/dx = {self.input_gradient:.4g} (w^L = {float(self.predicted[-1]):.4g})"
        )


def scalar_chain(weight: float = 1.1, depth: int = 30, x: float = 1.0) -> ChainResult:
    """Multiply ``x`` by ``weight`` ``depth`` times and backpropagate through the chain (float64).

    One backward pass gives the gradient of the output with respect to every intermediate
    value: the chain rule makes it a product of l copies of w, so it explodes for |w| > 1
    and vanishes for |w| < 1. Past float64's range it becomes inf (reported, not raised).
    """
    weight = check_finite("weight", weight)
    depth = check_int("depth", depth, 1)
    if depth > MAX_CHAIN_DEPTH:
        raise ValueError(
            f"depth={depth} is not allowed: depth must be an integer >= 1 and <= {MAX_CHAIN_DEPTH}; "
            f"{depth} multiplications would take about {depth * CHAIN_SECONDS_PER_STEP:.0f} s and "
            f"{format_bytes(depth * CHAIN_BYTES_PER_STEP)} of memory (one autograd node per "
            "multiplication), and the curve is settled long before"
        )
    x = check_finite("x", x)
    w = torch.tensor(weight, dtype=torch.float64)
    values = [torch.tensor(x, dtype=torch.float64, requires_grad=True)]
    for _ in range(depth):
        values.append(w * values[-1])
    grads = torch.autograd.grad(values[-1], values[:-1])  # d y / d h_0 ... d y / d h_{L-1}
    gradients = np.array([float(g) for g in reversed(grads)])  # index l-1: l multiplications back
    with np.errstate(over="ignore"):
        predicted = np.cumprod(np.full(depth, weight))
    return ChainResult(
        weight=weight,
        depth=depth,
        x=x,
        output=float(values[-1].detach()),
        depths=np.arange(1, depth + 1),
        gradients=gradients,
        predicted=predicted,
    )


def _check_data_size(batch: int, width: int, dtype: torch.dtype) -> None:
    """Refuse, before drawing it, a Gaussian batch (and its graph) larger than the machine's memory."""
    size = torch.empty((), dtype=dtype).element_size()
    check_memory(f"batch={batch}, width={width}", "the batch", 4 * batch * width * size)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class LinearGradients(StudyResult):
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

    def summary(self) -> str:
        """One line: the fitted growth per layer against the prediction sigma."""
        return (
            f"linear network, depth {self.depth}, width {self.width}, seed {self.seed}: the gradient "
            f"grows by {self.growth_factor:.3f} per layer (predicted: sigma = {self.sigma:g})"
        )


def deep_linear_gradients(
    depth: int = 30,
    width: int = 100,
    sigma: float = 1.2,
    seed: int = 0,
    batch: int = 64,
    num_classes: int = 10,
) -> LinearGradients:
    """Backpropagate a cross-entropy loss through a deep linear network (float64).

    Every layer is a Gaussian matrix with std sigma / sqrt(fan_in) (``init="lecun"``,
    ``init_scale=sigma``), which multiplies the norm of a vector passing back through it by
    about sigma; so log ||d loss / d f_k|| grows like k log(sigma).
    """
    depth = check_depth(depth)
    width = check_int("width", width, 1)
    sigma = check_positive("sigma", sigma)
    seed = check_seed("seed", seed)
    batch = check_int("batch", batch, 1)
    num_classes = check_int("num_classes", num_classes, 2)
    _check_data_size(batch, width, torch.float64)
    net = build_mlp(
        depth,
        width,
        "linear",
        init="lecun",
        init_scale=sigma,
        in_features=width,
        out_features=num_classes,
        seed=seed,
        dtype=torch.float64,
    )
    data = gaussian_data(
        n_train=batch, n_test=1, in_features=width, num_classes=num_classes, seed=seed, dtype=torch.float64
    )
    record = trace(net, data.x_train, data.y_train, keep_graph=True)
    layers = np.arange(1, record.num_layers + 2)
    grads = torch.autograd.grad(record.losses.mean(), [record.f(int(k)) for k in layers])
    norms = np.array([float64_norm(g) for g in grads])
    return LinearGradients(
        depth=depth,
        width=width,
        sigma=sigma,
        seed=seed,
        layers=layers,
        gradient_norms=norms,
        growth_factor=growth_factor(layers, norms),
    )


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class InitScales(StudyResult):
    """Per-layer activation and gradient scales of one network shape under several initializers.

    Attributes:
        depth, width, activation, seed: the networks.
        inits: the initializers compared; row i of every array belongs to ``inits[i]``.
        init_scales: the ``init_scale`` each was built with (the Gaussian's absolute std).
        layers: k = 1 ... L in paper numbering (1 the logits, L the first layer).
        activation_rms: (inits x layers) root mean square of f_k over the batch.
        gradient_rms: (inits x layers) root mean square of d mean-loss / d f_k.
        gradient_growth: per initializer, the fitted factor by which the gradient RMS grows
            per layer from the output back (1 = stable, > 1 exploding, < 1 vanishing), fitted
            over the hidden layers k = 2 ... L as the GSC's rate is: the logits' gradient has
            other units (out_features entries against width).
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

    def summary(self) -> str:
        """One line per initializer: the gradient's growth per layer and the first layer's RMS."""
        lines = [f"{self.activation}, depth {self.depth}, width {self.width}"]
        for i, init in enumerate(self.inits):
            lines.append(
                f"{init:>10}: gradient x{self.gradient_growth[i]:.3f} per layer, RMS of f_L "
                f"{self.activation_rms[i, -1]:.3g}"
            )
        return "\n".join(lines)


def init_scales(
    depth: int = 20,
    width: int = 100,
    activation: str = "relu",
    inits: Sequence[str] = ("gaussian", "xavier", "he"),
    *,
    gaussian_std: float = 1.0,
    batch: int = 64,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> InitScales:
    """Trace one network per initializer on Gaussian inputs and record per-layer scales.

    A naive N(0, gaussian_std^2) draw multiplies signals by about gaussian_std * sqrt(width *
    gain) per layer, so activations and gradients explode (or vanish) geometrically; Xavier
    and He choose the std from the fan-in so that the scale stays put (He for ReLU). Values
    past the dtype's range show up as inf/NaN in the result.
    """
    depth = check_depth(depth)
    width = check_int("width", width, 1)
    activation = check_choice("activation", activation, ACTIVATIONS)
    dtype = check_float_dtype(dtype)
    if isinstance(inits, (str, bytes)) or not isinstance(inits, (list, tuple)):
        raise TypeError(
            f"inits={inits!r} is not allowed: inits must be a sequence (a list or tuple) of "
            f"names from {', '.join(repr(i) for i in INITS)}, got {type(inits).__name__}"
        )
    if not inits:
        raise ValueError(
            f"inits={inits!r} is not allowed: inits must be a non-empty sequence of "
            f"names from {', '.join(repr(i) for i in INITS)}"
        )
    names = tuple(check_choice("inits", name, INITS) for name in inits)
    gaussian_std = check_positive("gaussian_std", gaussian_std)
    batch = check_int("batch", batch, 1)
    seed = check_seed("seed", seed)
    _check_data_size(batch, width, dtype)
    check_network_size(NetConfig(depth, width, activation, in_features=width), dtype)
    data = gaussian_data(n_train=batch, n_test=1, in_features=width, seed=seed, dtype=dtype)
    scales = tuple(gaussian_std if name == "gaussian" else 1.0 for name in names)
    activation_rms, gradient_rms = [], []
    layers = np.arange(1, depth + 1)
    for name, scale in zip(names, scales):
        net = build_mlp(
            depth, width, activation, init=name, init_scale=scale, in_features=width, seed=seed, dtype=dtype
        )
        record = trace(net, data.x_train, data.y_train, keep_graph=True)
        outputs = [record.f(int(k)) for k in layers]
        grads = torch.autograd.grad(record.losses.mean(), outputs)
        activation_rms.append([float64_rms(o) for o in outputs])
        gradient_rms.append([float64_rms(g) for g in grads])
    gradient_array = np.array(gradient_rms)
    return InitScales(
        depth=depth,
        width=width,
        activation=activation,
        seed=seed,
        inits=names,
        init_scales=scales,
        layers=layers,
        activation_rms=np.array(activation_rms),
        gradient_rms=gradient_array,
        gradient_growth=np.array([growth_factor(layers[1:], g[1:]) for g in gradient_array]),
    )
