"""The one call every notebook opens with, and the start-here check.

``setup()`` seeds Python, NumPy and torch, applies the plotting theme, picks the device and
the scale, and prints one short block saying what was chosen and why, so a learner (or a
reviewer reading stored outputs) knows what produced the numbers.

``measure_layer_rms()`` is the small experiment of notebook 00: build a network, run one
batch of real digits through it and report the RMS of every layer's output.
"""

from __future__ import annotations

import platform
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from explodegrad._checks import check_choice, check_int
from explodegrad.data import load_digits
from explodegrad.device import DeviceChoice, pick_device
from explodegrad.nets import build_mlp
from explodegrad.plots import set_theme
from explodegrad.scale import SCALES, Scale, pick_scale
from explodegrad.trace import layer_rms, trace


@dataclass(frozen=True)
class CourseContext:
    """What ``setup()`` chose: where experiments run, how big they are, and the seed."""

    device: DeviceChoice
    scale: Scale
    seed: int
    versions: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """The block ``setup()`` prints."""
        versions = " · ".join(f"{name} {version}" for name, version in self.versions.items())
        return "\n".join([
            versions,
            f"device: {self.device}",
            f"scale:  {self.scale.describe()}",
            f"        ({self.scale.reason})",
            f"seed:   {self.seed} (Python, NumPy and torch seeded)",
        ])


def versions() -> dict[str, str]:
    """Versions of explodegrad, torch and Python, for the setup printout."""
    from explodegrad import __version__

    return {"explodegrad": __version__, "torch": torch.__version__,
            "python": platform.python_version()}


def seed_everything(seed: int) -> int:
    """Seed Python's, NumPy's and torch's global generators (all devices); return the seed."""
    seed = check_int("seed", seed, 0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def setup(seed: int = 0, scale: str | Scale | None = None, device: str | None = None,
          *, quiet: bool = False) -> CourseContext:
    """Prepare a notebook: seeds, plotting theme, device and scale; print what was chosen.

    Args:
        seed: seed for Python, NumPy and torch.
        scale: ``"quick"``, ``"paper"`` or a :class:`Scale` (default: by device, or
            ``$EXPLODEGRAD_SCALE``).
        device: ``"auto"``, ``"cuda"``, ``"mps"`` or ``"cpu"`` (default: ``$EXPLODEGRAD_DEVICE``,
            then auto).
        quiet: do not print.
    """
    seed = seed_everything(seed)
    if isinstance(scale, str):
        scale = check_choice("scale", scale, tuple(SCALES))
    device_choice = pick_device(device)
    chosen_scale = pick_scale(device_choice, scale)
    set_theme()
    context = CourseContext(device=device_choice, scale=chosen_scale, seed=seed, versions=versions())
    if not quiet:
        print(context.summary())
    return context


@dataclass(frozen=True, eq=False)
class LayerRMS:
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
        return (f"{self.label}: RMS of f_L (first layer) = {self.rms[-1]:.3g}, "
                f"of f_1 (logits) = {self.rms[0]:.3g}")


def measure_layer_rms(depth: int = 10, width: int = 64, activation: str = "relu", init: str = "he",
                      norm: str = "none", batch_size: int = 256, seed: int = 0, device: Any = None,
                      dtype: torch.dtype = torch.float64) -> LayerRMS:
    """Build a network at initialization and measure the RMS of every layer's output.

    The batch is ``batch_size`` standardized handwritten digits (bundled with scikit-learn,
    so it needs no download). float64 by default, so printed digits agree across machines.

    Raises:
        ValueError: for a setting the network cannot have (see :class:`explodegrad.NetConfig`).
    """
    data = load_digits(seed=seed, device=device, dtype=dtype)
    inputs, _ = data.batch(batch_size, seed=seed)
    net = build_mlp(depth=depth, width=width, activation=activation, norm=norm, init=init,
                    in_features=data.in_features, out_features=data.num_classes, seed=seed,
                    device=device, dtype=dtype)
    rms = layer_rms(trace(net, inputs))
    return LayerRMS(label=net.config.label(), rms=rms, batch_size=int(inputs.shape[0]))
