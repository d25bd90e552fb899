"""Chapter 0/1: the RMS of each layer's output at initialization, for a quick look at how a
signal grows or shrinks with depth (:func:`measure_layer_rms`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explodegrad.core.data import load_digits
from explodegrad.core.nets import build_mlp
from explodegrad.core.trace import layer_rms, trace
from explodegrad.studies.common import StudyResult


@dataclass(frozen=True, eq=False)
class LayerRMS(StudyResult):
    """Per-layer RMS of a freshly built network on one batch (paper numbering).

    Attributes:
        label: the network, e.g. ``relu/none/he d10 w64``.
        rms: ``rms[k - 1]`` is the RMS of f_k; k = 1 is the logits, k = L the first layer.
        batch_size: examples in the batch.
    """

    label: str
    rms: np.ndarray
    batch_size: int

    @property
    def num_layers(self) -> int:
        return int(self.rms.size)

    def table(self) -> str:
        """Fixed-format lines, one per layer, for printing and for notebook checks."""
        lines = [f"{self.label} on {self.batch_size} digits", "    k  RMS of f_k"]
        for k, value in enumerate(self.rms, start=1):
            note = "  (logits)" if k == 1 else "  (first layer)" if k == self.num_layers else ""
            lines.append(f"{k:5d}  {value:.4g}{note}")
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: the RMS at the first layer and at the logits."""
        return (
            f"{self.label}: RMS of f_L (first layer) = {self.rms[-1]:.3g}, "
            f"of f_1 (logits) = {self.rms[0]:.3g}"
        )


def measure_layer_rms(
    depth: int = 10,
    width: int = 64,
    activation: str = "relu",
    init: str = "he",
    norm: str = "none",
    batch_size: int = 256,
    seed: int = 0,
    device: Any = None,
    dtype: torch.dtype = torch.float64,
) -> LayerRMS:
    """Build a network at initialization and measure the RMS of every layer's output.

    The batch is ``batch_size`` standardized handwritten digits (bundled with scikit-learn,
    so it needs no download). float64 by default, so printed digits agree across machines.

    Raises:
        ValueError: for a setting the network cannot have (see :class:`explodegrad.NetConfig`).
    """
    data = load_digits(seed=seed, device=device, dtype=dtype)
    inputs, _ = data.batch(batch_size, seed=seed)
    net = build_mlp(
        depth=depth,
        width=width,
        activation=activation,
        norm=norm,
        init=init,
        in_features=data.in_features,
        out_features=data.num_classes,
        seed=seed,
        device=device,
        dtype=dtype,
    )
    rms = layer_rms(trace(net, inputs))
    return LayerRMS(label=net.config.label(), rms=rms, batch_size=int(inputs.shape[0]))
