"""Notebook 00's explorer: per-layer size of f_k at initialization."""

from __future__ import annotations

from functools import partial

import ipywidgets as w
import torch
from matplotlib.figure import Figure

from explodegrad.core.checks import check_int
from explodegrad.core.config import INITS
from explodegrad.core.device import DeviceLike, as_device_choice
from explodegrad.plots.signal_scale import plot_layer_rms
from explodegrad.studies.signal_scale import LayerRMS, measure_layer_rms
from explodegrad.widgets.base import Explorer
from explodegrad.widgets.controls import clamp_notice, depth_slider


def start_here_explorer(
    device: DeviceLike = None, depth: int = 10, width: int = 64, max_depth: int = 60
) -> Explorer:
    """Notebook 00's explorer: a depth slider, activation and initializer; per-layer RMS redrawn.

    Some combinations are not allowed (``looks_linear`` needs ReLU): choosing one shows the
    reason instead of a figure.
    """
    device = as_device_choice(device)
    max_depth = check_int("max_depth", max_depth, 2)
    depth = check_int("depth", depth, 1, max_depth)
    controls = {
        "depth": depth_slider(depth, minimum=1, maximum=max_depth),
        "activation": w.Dropdown(
            options=["relu", "tanh", "selu", "sigmoid", "linear"], value="relu", description="activation"
        ),
        "init": w.Dropdown(
            options=[name for name in INITS if name != "gaussian"], value="he", description="init"
        ),
    }
    experiment = partial(measure_layer_rms, width=width, device=device.device, dtype=torch.float32)

    def draw(result: LayerRMS) -> Figure:
        return plot_layer_rms(result.rms, title=f"each layer's output at initialization: {result.label}")

    return Explorer(
        controls,
        experiment,
        draw,
        "Start here: how big is each layer's output?",
        device=device,
        describe=LayerRMS.summary,
        extras=[clamp_notice(controls)],
    )
