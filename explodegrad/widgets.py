"""Explorers: controls that rerun a real experiment and redraw its figure.

Every explorer of the course follows one pattern, :class:`Explorer`::

    controls (sliders, dropdowns) -> experiment(**values) -> result -> draw(result) -> Figure
                                                                     -> PNG in an Output area

* sliders fire only on release (``continuous_update=False``): experiments are real runs;
* results are cached by the control values (an LRU of a few dozen), so going back to a
  setting seen before is instant;
* a label says which device the experiments run on;
* an error inside the experiment is shown in plain words in the output area, and the
  explorer keeps working;
* the last result, figure and the figure's plotted data stay on the object, so tests can
  check them without a browser or a kernel.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import clear_output, display
from matplotlib.figure import Figure

from explodegrad._checks import check_int
from explodegrad.config import INITS
from explodegrad.course import LayerRMS, measure_layer_rms
from explodegrad.device import DeviceChoice, pick_device
from explodegrad.plots import plot_layer_rms

#: Results kept per explorer; going back to any of the last this-many settings is instant.
CACHE_SIZE = 32


def figure_data(fig: Figure) -> list[dict[str, Any]]:
    """What a figure shows, as numbers: per axes its title, labels and lines' x/y data."""
    panels = []
    for ax in fig.axes:
        lines = [(np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float))
                 for line in ax.get_lines()]
        panels.append({"title": ax.get_title(), "xlabel": ax.get_xlabel(),
                       "ylabel": ax.get_ylabel(), "lines": lines})
    return panels


def _format_settings(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in values.items())


class Explorer:
    """Controls that rerun an experiment and draw its result into an output area.

    Args:
        controls: name -> widget with a ``value``; names are the experiment's keyword arguments.
        experiment: ``experiment(**values) -> result``; may raise for a bad setting.
        draw: ``draw(result) -> Figure``.
        title: shown above the controls.
        device: the device the experiment runs on, for the label (default: :func:`pick_device`).
        describe: optional ``describe(result) -> str``, a line printed under the figure.
        cache_size: results kept (least recently used go first).

    Display it in a notebook by making it a cell's last expression (or ``display(explorer)``).
    """

    def __init__(self, controls: dict[str, w.ValueWidget], experiment: Callable[..., Any],
                 draw: Callable[[Any], Figure], title: str, *, device: DeviceChoice | None = None,
                 describe: Callable[[Any], str] | None = None, cache_size: int = CACHE_SIZE) -> None:
        if not controls:
            raise ValueError("controls={} is not allowed: an explorer needs at least one control")
        for name, control in controls.items():
            if not hasattr(control, "value"):
                raise ValueError(f"controls[{name!r}]={control!r} is not allowed: a control needs a .value")
            if hasattr(control, "continuous_update"):
                control.continuous_update = False
        self.controls = dict(controls)
        self.experiment = experiment
        self.draw = draw
        self.describe = describe
        self.cache_size = check_int("cache_size", cache_size, 1)
        self.device = device if device is not None else pick_device()
        self.cache: OrderedDict[tuple[tuple[str, Hashable], ...], Any] = OrderedDict()
        self.runs = 0
        self.cache_hits = 0
        self.last_result: Any = None
        self.last_figure: Figure | None = None
        self.last_figure_data: list[dict[str, Any]] = []
        self.last_error: str | None = None
        self.last_text = ""

        self.title = w.HTML(f"<b>{title}</b>")
        self.device_label = w.Label(f"Runs on: {self.device}")
        self.status = w.Label("")
        self.output = w.Output()
        self.widget = w.VBox([self.title, w.HBox(list(self.controls.values())), self.device_label,
                              self.status, self.output])
        self.widget.add_class("explodegrad-explorer")
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.update()

    def values(self) -> dict[str, Any]:
        """The current value of every control."""
        return {name: control.value for name, control in self.controls.items()}

    def _on_change(self, _change: dict[str, Any]) -> None:
        self.update()

    def _result_for(self, values: dict[str, Any]) -> tuple[Any, str]:
        key = tuple(values.items())
        if key in self.cache:
            self.cache.move_to_end(key)
            self.cache_hits += 1
            return self.cache[key], "from cache"
        start = time.perf_counter()
        result = self.experiment(**values)
        self.runs += 1
        self.cache[key] = result
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return result, f"ran in {time.perf_counter() - start:.2f} s"

    def update(self) -> None:
        """Run (or fetch from the cache) the current setting and redraw; errors are shown, not raised."""
        values = self.values()
        try:
            result, how = self._result_for(values)
            fig = self.draw(result)
            data = figure_data(fig)
            text = self.describe(result) if self.describe is not None else ""
        except Exception as error:  # noqa: BLE001 - any failure of a setting is shown to the learner
            self._show_error(values, error)
            return
        self.last_result, self.last_error, self.last_text = result, None, text
        self.last_figure, self.last_figure_data = fig, data
        self.status.value = f"{_format_settings(values)}: {how}"
        with self.output:
            clear_output(wait=True)
            display(fig)
            if text:
                print(text)
        plt.close(fig)

    def _show_error(self, values: dict[str, Any], error: Exception) -> None:
        message = f"Could not run this setting: {_format_settings(values)} — {error}"
        self.last_result, self.last_figure, self.last_figure_data = None, None, []
        self.last_error, self.last_text = message, ""
        self.status.value = "Could not run this setting (see below)"
        with self.output:
            clear_output(wait=True)
            print(message)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def start_here_explorer(device: DeviceChoice | None = None, depth: int = 10, width: int = 64,
                        max_depth: int = 60) -> Explorer:
    """Notebook 00's explorer: a depth slider, activation and initializer; per-layer RMS redrawn.

    Some combinations are not allowed (``looks_linear`` needs ReLU): choosing one shows the
    reason instead of a figure.
    """
    device = device if device is not None else pick_device()
    max_depth = check_int("max_depth", max_depth, 2)
    depth = check_int("depth", depth, 1, max_depth)
    controls = {
        "depth": w.IntSlider(value=depth, min=1, max=max_depth, description="depth"),
        "activation": w.Dropdown(options=["relu", "tanh", "selu", "sigmoid", "linear"],
                                 value="relu", description="activation"),
        "init": w.Dropdown(options=[name for name in INITS if name != "gaussian"], value="he",
                           description="init"),
    }
    experiment = partial(measure_layer_rms, width=width, device=device.device, dtype=torch.float32)

    def draw(result: LayerRMS) -> Figure:
        return plot_layer_rms(result.rms, title=f"each layer's output at initialization: {result.label}")

    return Explorer(controls, experiment, draw, "Start here: how big is each layer's output?",
                    device=device, describe=LayerRMS.summary)
