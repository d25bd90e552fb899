"""Per-layer histograms of activations and gradients at initialization (chapter 02).

One scalar per layer (an RMS, a norm) hides how the values are spread. :func:`layer_histograms`
keeps, for every layer of one network at initialization, the histogram of its outputs f_k and
of the gradients d mean-loss / d f_k, on a log10 |value| axis: with a good initializer the
layers' histograms lie on top of each other, with a bad one they march left (vanishing) or
right (exploding) layer after layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explodegrad.core.checks import check_choice, check_int, check_positive
from explodegrad.core.config import ACTIVATIONS, INITS
from explodegrad.core.data import gaussian_data
from explodegrad.core.nets import build_mlp
from explodegrad.core.trace import float64_rms, trace
from explodegrad.studies.common import StudyResult, architecture_label


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class LayerHistograms(StudyResult):
    """Histograms of log10 |value| per layer, for the layer outputs and their gradients.

    Attributes:
        label: the network, e.g. ``relu/none/he d20 w100``.
        init, init_scale: the initializer and its scale.
        layers: k = 1 (the logits) ... L (the first layer), paper numbering.
        activation_edges, gradient_edges: the bin edges (log10 |value|), shared by all layers.
        activation_share, gradient_share: (layers x bins) the share of a layer's nonzero values
            in each bin (each row sums to 1).
        zero_share: per layer, the share of outputs that are exactly 0 (ReLU's off units; they
            have no logarithm and are left out of the histograms).
        activation_rms, gradient_rms: per layer, the root mean square of the values.
    """

    label: str
    init: str
    init_scale: float
    layers: np.ndarray
    activation_edges: np.ndarray
    gradient_edges: np.ndarray
    activation_share: np.ndarray
    gradient_share: np.ndarray
    zero_share: np.ndarray
    activation_rms: np.ndarray
    gradient_rms: np.ndarray

    def summary(self) -> str:
        """The RMS of the first layer's and the last hidden layer's values."""
        first, last = len(self.layers) - 1, min(1, len(self.layers) - 1)
        return (
            f"{self.label}: activation RMS {self.activation_rms[first]:.3g} (first layer) -> "
            f"{self.activation_rms[last]:.3g} (layer 2); gradient RMS {self.gradient_rms[first]:.3g} -> "
            f"{self.gradient_rms[last]:.3g}"
        )


def log_histograms(values: list[np.ndarray], bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Shared log10 |value| bin edges over all arrays, and each array's share per bin (nonzero
    finite values only; an array without any gives a row of zeros)."""
    bins = check_int("bins", bins, 2)
    logs = [np.log10(np.abs(v[np.isfinite(v) & (v != 0)])) for v in values]
    pooled = np.concatenate(logs) if logs else np.zeros(0)
    if pooled.size == 0:
        raise ValueError("values: no nonzero finite value to draw a histogram of")
    low, high = float(pooled.min()), float(pooled.max())
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    shares = np.zeros((len(logs), bins))
    for row, log in enumerate(logs):
        if log.size:
            shares[row] = np.histogram(log, bins=edges)[0] / log.size
    return edges, shares


def layer_histograms(
    depth: int = 20,
    width: int = 100,
    activation: str = "relu",
    init: str = "he",
    *,
    init_scale: float = 1.0,
    batch: int = 256,
    bins: int = 60,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> LayerHistograms:
    """Trace one network at initialization on Gaussian inputs and histogram every layer.

    Args:
        depth, width, activation: the plain network (no normalization).
        init, init_scale: the initializer (:data:`explodegrad.core.config.INITS`); for
            ``"gaussian"`` the scale is the weights' absolute standard deviation.
        batch: Gaussian input examples (width features, 10 classes).
        bins: histogram bins.
        seed: weights and inputs.
        dtype: float64 by default, so that the bad initializers do not overflow.
    """
    depth = check_int("depth", depth, 2)
    width = check_int("width", width, 1)
    activation = check_choice("activation", activation, ACTIVATIONS)
    init = check_choice("init", init, INITS)
    init_scale = check_positive("init_scale", init_scale)
    batch = check_int("batch", batch, 2)
    seed = check_int("seed", seed, 0)
    data = gaussian_data(n_train=batch, n_test=1, in_features=width, seed=seed, dtype=dtype)
    net = build_mlp(
        depth, width, activation, init=init, init_scale=init_scale, in_features=width, seed=seed, dtype=dtype
    )
    record = trace(net, data.x_train, data.y_train, keep_graph=True)
    layers = np.arange(1, depth + 1)
    outputs = [record.f(int(k)) for k in layers]
    grads = torch.autograd.grad(record.losses.mean(), outputs)
    values = [o.detach().double().cpu().numpy().ravel() for o in outputs]
    gradients = [g.detach().double().cpu().numpy().ravel() for g in grads]
    activation_edges, activation_share = log_histograms(values, bins)
    gradient_edges, gradient_share = log_histograms(gradients, bins)
    return LayerHistograms(
        label=f"{architecture_label(activation, 'none', init=init)} d{depth} w{width}",
        init=init,
        init_scale=init_scale,
        layers=layers,
        activation_edges=activation_edges,
        gradient_edges=gradient_edges,
        activation_share=activation_share,
        gradient_share=gradient_share,
        zero_share=np.array([float(np.mean(v == 0)) for v in values]),
        activation_rms=np.array([float64_rms(o) for o in outputs]),
        gradient_rms=np.array([float64_rms(g) for g in grads]),
    )
