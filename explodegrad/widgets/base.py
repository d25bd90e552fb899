"""The explorer pattern: controls that rerun a real experiment and redraw its figure.

Every explorer of the course follows one pattern, :class:`Explorer`::

    controls (sliders, dropdowns) -> experiment(**values) -> result -> draw(result) -> Figure
                                                                     -> PNG in an Output area

* sliders fire only on release (``continuous_update=False``): experiments are real runs;
* results are cached by the control values (an LRU of a few dozen), and so are the drawn
  images, so going back to a setting seen before is instant;
* *view controls* (e.g. "show raw gradients") only change the drawing: they are passed to
  ``draw`` and never rerun the experiment;
* a label says which device the experiments run on;
* an error inside the experiment (or the drawing) is shown in plain words in the output area,
  and the explorer keeps working: the library's own argument checks (``ValueError`` for a bad
  value, ``TypeError`` for a wrong type) already say what is allowed, so their message is shown
  as it is; any other error is prefixed with its type;
* the figure is rendered to PNG here (not by the notebook's display hook), so the time it
  takes is measured (``last_timings``) and tests can compare images by hash;
* the last result, figure, plotted data, PNG and timings stay on the object, so tests can
  check them without a browser or a kernel.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Image, clear_output, display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from explodegrad.core.checks import check_int
from explodegrad.core.device import DeviceLike, as_device_choice

#: Results kept per explorer; going back to any of the last this-many settings is instant.
CACHE_SIZE = 32
#: Resolution of the rendered figures (dots per inch).
RENDER_DPI = 80
#: Torch threads an experiment may use on a CPU. The explorers' experiments are small (a batch
#: of 128 through width-100 layers): a second thread gains little, and when another program
#: keeps the other core busy, torch's threads wait on each other and one redraw took 10 to 100
#: times longer in ``benchmarks/bench_widgets.py`` (see benchmarks/README.md).
CPU_THREADS = 1

Key = tuple[tuple[str, Hashable], ...]


def figure_data(fig: Figure) -> list[dict[str, Any]]:
    """What a figure shows, as numbers: per axes its title, labels, lines' x/y data and texts
    (each text on one line)."""
    panels = []
    for ax in fig.axes:
        lines = [
            (np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float))
            for line in ax.get_lines()
        ]
        panels.append(
            {
                "title": ax.get_title(),
                "xlabel": ax.get_xlabel(),
                "ylabel": ax.get_ylabel(),
                "lines": lines,
                "texts": [" ".join(text.get_text().split()) for text in ax.texts],
            }
        )
    return panels


def render_png(fig: Figure, dpi: int = RENDER_DPI, canvas: FigureCanvasAgg | None = None) -> bytes:
    """The figure as PNG bytes (the same figure and dpi give the same bytes).

    Args:
        fig: the figure.
        dpi: resolution.
        canvas: draw through this canvas instead of the figure's own. An explorer keeps one and
            reuses it for every figure it draws: the canvas keeps its renderer, and matplotlib
            caches text layout per renderer, so tick labels and titles seen before cost nothing
            (a quarter to a third less time per redraw in ``benchmarks/bench_widgets.py``).
    """
    if canvas is not None:
        canvas.figure = fig
        fig.set_canvas(canvas)
    buffer = io.BytesIO()
    # zlib level 1: the same size as the default level 6 for these flat images, and faster
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


@contextmanager
def limited_threads(threads: int | None) -> Iterator[None]:
    """Run the block with at most ``threads`` torch threads (None: as is); restore afterwards."""
    before = torch.get_num_threads()
    if threads is None or threads >= before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _format_settings(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in values.items())


@dataclass(frozen=True)
class Drawing:
    """One drawn setting: the figure (closed), its data, the PNG and the line under it."""

    figure: Figure
    data: list[dict[str, Any]]
    png: bytes
    text: str

    @property
    def png_hash(self) -> str:
        """SHA-256 of the PNG: equal images give equal hashes."""
        return hashlib.sha256(self.png).hexdigest()


class Progress:
    """A progress bar and a line of text, for experiments that take a while (training).

    An experiment calls :meth:`start`, then :meth:`update` as it goes; each call sends the new
    state to the browser at once, even while the experiment keeps the kernel busy.
    """

    def __init__(self, description: str = "running") -> None:
        self.bar = w.IntProgress(value=0, min=0, max=1, description=description)
        self.label = w.Label("")
        self.widget = w.HBox([self.bar, self.label])
        self.first_update_at: float | None = None
        self.started_at: float | None = None

    def start(self, total: int, text: str = "") -> None:
        """Begin a run of ``total`` units of work."""
        self.started_at, self.first_update_at = time.perf_counter(), None
        self.bar.max = max(int(total), 1)
        self.bar.value = 0
        self.bar.bar_style = "info"
        self.label.value = text

    def update(self, done: int, text: str = "") -> None:
        """``done`` units of work finished."""
        if self.first_update_at is None:
            self.first_update_at = time.perf_counter()
        self.bar.value = min(int(done), self.bar.max)
        self.label.value = text

    def finish(self, text: str = "", failed: bool = False) -> None:
        """The run ended (``failed``: it stopped early, e.g. diverged)."""
        self.bar.value = self.bar.max
        self.bar.bar_style = "danger" if failed else "success"
        self.label.value = text


class Explorer:
    """Controls that rerun an experiment and draw its result into an output area.

    Args:
        controls: name -> widget with a ``value``; names are the experiment's keyword arguments.
        experiment: ``experiment(**values) -> result``; may raise for a bad setting.
        draw: ``draw(result, **view_values) -> Figure``.
        title: shown above the controls.
        device: the device the experiment runs on, for the label (default: :func:`pick_device`).
        describe: optional ``describe(result) -> str``, a line printed under the figure.
        cache_size: results (and drawings) kept; least recently used go first.
        view_controls: name -> widget whose value only changes the drawing; passed to ``draw``
            as keyword arguments, never to the experiment.
        extras: more widgets shown between the controls and the figure.
        progress: a :class:`Progress` the experiment reports to (shown above the figure).
        name: a short name; the explorer's box gets the CSS class ``explodegrad-<name>`` (the
            browser test finds an explorer by it).
        cpu_threads: torch threads an experiment may use when the device is a CPU (default
            :data:`CPU_THREADS`; None: leave torch's setting alone).

    Display it in a notebook by making it a cell's last expression (or ``display(explorer)``).
    """

    def __init__(
        self,
        controls: dict[str, w.ValueWidget],
        experiment: Callable[..., Any],
        draw: Callable[..., Figure],
        title: str,
        *,
        device: DeviceLike = None,
        describe: Callable[[Any], str] | None = None,
        cache_size: int = CACHE_SIZE,
        view_controls: dict[str, w.ValueWidget] | None = None,
        extras: Sequence[w.Widget] = (),
        progress: Progress | None = None,
        name: str | None = None,
        cpu_threads: int | None = CPU_THREADS,
    ) -> None:
        if not controls:
            raise ValueError("controls={} is not allowed: an explorer needs at least one control")
        view_controls = dict(view_controls or {})
        for group in (controls, view_controls):
            for control_name, control in group.items():
                if not hasattr(control, "value"):
                    raise TypeError(
                        f"controls[{control_name!r}]={control!r} is not allowed: a control needs a .value"
                    )
                if hasattr(control, "continuous_update"):
                    control.continuous_update = False
        clash = sorted(set(controls) & set(view_controls))
        if clash:
            raise ValueError(
                f"view_controls: {clash[0]!r} is also an experiment control; a name belongs to one of the two"
            )
        self.controls = dict(controls)
        self.view_controls = view_controls
        self.experiment = experiment
        self.draw = draw
        self.describe = describe
        self.progress = progress
        self.cache_size = check_int("cache_size", cache_size, 1)
        self.device = as_device_choice(device)
        on_cpu = self.device.device.type == "cpu"
        self.cpu_threads = (
            check_int("cpu_threads", cpu_threads, 1) if cpu_threads is not None and on_cpu else None
        )
        self.cache: OrderedDict[Key, Any] = OrderedDict()
        self.drawings: OrderedDict[tuple[Key, Key], Drawing] = OrderedDict()
        self.runs = 0
        self.cache_hits = 0
        self.last_result: Any = None
        self.last_drawing: Drawing | None = None
        self.last_error: str | None = None
        self.last_timings: dict[str, float] = {}
        self._suspended = False
        self._canvas = FigureCanvasAgg(Figure())  # reused for every figure (see render_png)

        self.title = w.HTML(f"<b>{title}</b>")
        threads = (
            f"; experiments use {self.cpu_threads} thread(s)"
            if self.cpu_threads is not None and self.cpu_threads < torch.get_num_threads()
            else ""
        )
        self.device_label = w.Label(f"Runs on: {self.device}{threads}")
        self.status = w.Label("")
        self.output = w.Output()
        rows = [w.HBox(list(self.controls.values()), layout=w.Layout(flex_flow="row wrap"))]
        if self.view_controls:
            rows.append(w.HBox(list(self.view_controls.values()), layout=w.Layout(flex_flow="row wrap")))
        shown_extras = [*extras, *([progress.widget] if progress is not None else [])]
        self.widget = w.VBox([self.title, *rows, self.device_label, *shown_extras, self.status, self.output])
        self.widget.add_class("explodegrad-explorer")
        if name:
            self.widget.add_class(f"explodegrad-{name}")
        for control in [*self.controls.values(), *self.view_controls.values()]:
            control.observe(self._on_change, names="value")
        self.update()

    # ------------------------------------------------------------------ state for tests
    @property
    def last_figure(self) -> Figure | None:
        """The figure of the current setting (closed; its data stays readable)."""
        return self.last_drawing.figure if self.last_drawing else None

    @property
    def last_figure_data(self) -> list[dict[str, Any]]:
        """:func:`figure_data` of the current figure (empty after an error)."""
        return self.last_drawing.data if self.last_drawing else []

    @property
    def last_text(self) -> str:
        """The line printed under the current figure."""
        return self.last_drawing.text if self.last_drawing else ""

    @property
    def last_png(self) -> bytes | None:
        """The PNG shown for the current setting."""
        return self.last_drawing.png if self.last_drawing else None

    # ------------------------------------------------------------------ the pattern
    def values(self) -> dict[str, Any]:
        """The current value of every experiment control."""
        return {name: control.value for name, control in self.controls.items()}

    def view_values(self) -> dict[str, Any]:
        """The current value of every view control."""
        return {name: control.value for name, control in self.view_controls.items()}

    def set(self, **values: Any) -> None:
        """Set several controls (experiment or view) at once, with a single rerun."""
        unknown = sorted(set(values) - set(self.controls) - set(self.view_controls))
        if unknown:
            raise ValueError(
                f"{unknown[0]}={values[unknown[0]]!r} is not a control of this explorer: "
                f"controls are {', '.join([*self.controls, *self.view_controls])}"
            )
        self._suspended = True
        try:
            for name, value in values.items():
                (self.controls.get(name) or self.view_controls[name]).value = value
        finally:
            self._suspended = False
        self.update()

    def _on_change(self, _change: dict[str, Any]) -> None:
        if not self._suspended:
            self.update()

    def _result_for(self, key: Key, values: dict[str, Any]) -> tuple[Any, bool]:
        if key in self.cache:
            self.cache.move_to_end(key)
            self.cache_hits += 1
            return self.cache[key], True
        with limited_threads(self.cpu_threads):
            result = self.experiment(**values)
        self.runs += 1
        self.cache[key] = result
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return result, False

    def _drawing_for(self, key: tuple[Key, Key], result: Any, view: dict[str, Any]) -> tuple[Drawing, bool]:
        if key in self.drawings:
            self.drawings.move_to_end(key)
            return self.drawings[key], True
        start = time.perf_counter()
        fig = self.draw(result, **view)
        drawn = time.perf_counter()
        try:
            png = render_png(fig, canvas=self._canvas)
            data = figure_data(fig)
        finally:
            plt.close(fig)
        self.last_timings.update(draw=drawn - start, render=time.perf_counter() - drawn)
        text = self.describe(result) if self.describe is not None else ""
        drawing = Drawing(fig, data, png, text)
        self.drawings[key] = drawing
        while len(self.drawings) > self.cache_size:
            self.drawings.popitem(last=False)
        return drawing, False

    def update(self) -> None:
        """Run (or fetch from the cache) the current setting and redraw; errors are shown, not raised."""
        values, view = self.values(), self.view_values()
        key: Key = tuple(values.items())
        start = time.perf_counter()
        self.last_timings = {}
        try:
            result, cached = self._result_for(key, values)
            ran = time.perf_counter()
            self.last_timings["experiment"] = 0.0 if cached else ran - start
            drawing, drawn_before = self._drawing_for((key, tuple(view.items())), result, view)
        except Exception as error:  # noqa: BLE001 - any failure of a setting is shown to the learner
            self._show_error(values, error)
            return
        self.last_result, self.last_error, self.last_drawing = result, None, drawing
        with self.output:
            clear_output(wait=True)
            display(Image(data=drawing.png, format="png"))
            if drawing.text:
                print(drawing.text)
        self.last_timings["total"] = time.perf_counter() - start
        how = (
            "from cache"
            if cached and drawn_before
            else f"drawn in {self.last_timings['total']:.2f} s"
            if cached
            else f"ran in {self.last_timings['experiment']:.2f} s, drawn in "
            f"{self.last_timings['draw'] + self.last_timings['render']:.2f} s"
        )
        self.status.value = f"{_format_settings({**values, **view})}: {how}"

    def _show_error(self, values: dict[str, Any], error: Exception) -> None:
        """Print why the setting failed: an argument check's own sentence, else the error's type too."""
        plain = isinstance(error, (ValueError, TypeError))
        reason = str(error) if plain else f"{type(error).__name__}: {error}"
        message = f"Could not run this setting: {_format_settings(values)} — {reason}"
        self.last_result, self.last_drawing = None, None
        self.last_error = message
        self.status.value = "Could not run this setting (see below)"
        with self.output:
            clear_output(wait=True)
            print(message)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
