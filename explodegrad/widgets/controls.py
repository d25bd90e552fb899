"""The course's standard controls and the small, cached inputs explorers measure on.

Every explorer builds its sliders and dropdowns here, so the same setting looks and is named
the same everywhere (the GSC explorer's depth slider is described "depth"; the browser test
finds it by that).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import ipywidgets as w
import torch
import traitlets
from torch import Tensor

from explodegrad.core.checks import check_int
from explodegrad.core.config import ACTIVATIONS, INITS, NORMS
from explodegrad.core.data import Dataset, load_digits
from explodegrad.core.nets import DeepMLP, build_mlp

#: Activations offered by the explorers (the common ones; the library knows more).
EXPLORER_ACTIVATIONS = ("relu", "tanh", "selu", "sigmoid", "linear", "gelu")
#: Examples per measurement batch: enough for stable statistics, small enough to redraw fast.
BATCH_SIZE = 128

_STYLE = {"description_width": "initial"}


class _ReportsClamping(traitlets.HasTraits):
    """A slider that says when a value set from code lay outside its range.

    ipywidgets clamps such a value to the nearest end of the range without a word; these sliders
    clamp too, and write what happened into their ``clamped`` trait (empty when the last value
    set was in range), which :func:`clamp_notice` shows in the explorer.
    """

    clamped = traitlets.Unicode("")

    def _bounds(self) -> tuple[float, float]:
        return self.min, self.max

    @traitlets.validate("value")
    def _validate_value(self, proposal: dict) -> float:
        requested = proposal["value"]
        low, high = self._bounds()
        value = min(max(requested, low), high)
        self.clamped = (
            f"{self.description} = {requested:g} is outside its range {low:g} to {high:g}: "
            f"set to {value:g} instead"
            if value != requested
            else ""
        )
        return value


class ClampReportingIntSlider(_ReportsClamping, w.IntSlider):
    """An IntSlider that reports a clamped value (see :class:`_ReportsClamping`)."""


class ClampReportingFloatSlider(_ReportsClamping, w.FloatSlider):
    """A FloatSlider that reports a clamped value (see :class:`_ReportsClamping`)."""


class ClampReportingFloatLogSlider(_ReportsClamping, w.FloatLogSlider):
    """A FloatLogSlider that reports a clamped value (its range is base**min to base**max)."""

    def _bounds(self) -> tuple[float, float]:
        return self.base**self.min, self.base**self.max


def clamp_notice(controls: dict[str, w.Widget]) -> w.HTML:
    """A line in the explorer that says which values set from code were clamped to a slider's
    range (empty while none was): ipywidgets would clamp them silently."""
    notice = w.HTML("")
    notice.add_class("explodegrad-clamp-notice")
    reporting = [c for c in controls.values() if isinstance(c, _ReportsClamping)]

    def refresh(_change: dict | None = None) -> None:
        notes = [c.clamped for c in reporting if c.clamped]
        notice.value = "" if not notes else "<span style='color:crimson'>⚠ " + "; ".join(notes) + "</span>"

    for control in reporting:
        control.observe(refresh, names="clamped")
    refresh()
    return notice


def clamp_notes(notice: w.HTML) -> str:
    """The plain text of a :func:`clamp_notice` (for tests and printing)."""
    text = notice.value.removeprefix("<span style='color:crimson'>⚠ ").removesuffix("</span>")
    return text


def depth_slider(value: int, *, minimum: int = 2, maximum: int = 60, step: int = 1) -> w.IntSlider:
    """The depth slider (weight layers), described "depth"."""
    maximum = check_int("max_depth", maximum, minimum)
    value = check_int("depth", value, minimum, maximum)
    return ClampReportingIntSlider(
        value=value,
        min=minimum,
        max=maximum,
        step=step,
        description="depth",
        continuous_update=False,
        style=_STYLE,
    )


def width_slider(value: int, *, minimum: int = 8, maximum: int = 128, step: int = 8) -> w.IntSlider:
    """Neurons per hidden layer."""
    maximum = check_int("max_width", maximum, minimum)
    value = check_int("width", value, 1, maximum)
    return ClampReportingIntSlider(
        value=value,
        min=min(minimum, value),
        max=maximum,
        step=step,
        description="width",
        continuous_update=False,
        style=_STYLE,
    )


def choice(description: str, options: tuple[str, ...], value: str, allowed: tuple[str, ...]) -> w.Dropdown:
    """A dropdown of names, checked against what the library allows."""
    for option in options:
        if option not in allowed:
            raise ValueError(
                f"{description}={option!r} is not supported: {description} must be one "
                f"of {', '.join(repr(a) for a in allowed)}"
            )
    if value not in options:
        raise ValueError(
            f"{description}={value!r} is not allowed: {description} must be one of "
            f"{', '.join(repr(o) for o in options)}"
        )
    return w.Dropdown(
        options=list(options),
        value=value,
        description=description,
        layout=w.Layout(width="max-content"),
        style=_STYLE,
    )


def activation_dropdown(value: str = "relu") -> w.Dropdown:
    return choice("activation", EXPLORER_ACTIVATIONS, value, ACTIVATIONS)


def norm_dropdown(value: str = "none") -> w.Dropdown:
    return choice("norm", NORMS, value, NORMS)


def init_dropdown(value: str = "he") -> w.Dropdown:
    return choice("init", INITS, value, INITS)


def residual_checkbox(value: bool = False) -> w.Checkbox:
    """Residual blocks x + s * r(x) instead of plain layers."""
    return w.Checkbox(
        value=bool(value), description="residual", indent=False, layout=w.Layout(width="max-content")
    )


def residual_scale_slider(value: float = 1.0, *, maximum: float = 2.0) -> w.FloatSlider:
    """The skip strength: the residual branch's multiplier s (0: every block is the identity)."""
    return ClampReportingFloatSlider(
        value=float(value),
        min=0.0,
        max=float(maximum),
        step=0.05,
        description="residual scale",
        readout_format=".2f",
        continuous_update=False,
        style=_STYLE,
    )


def link_residual_scale(residual: w.Checkbox, residual_scale: w.ValueWidget) -> None:
    """Grey out the residual scale while the network is plain (it only acts on residual blocks)."""
    residual_scale.disabled = not residual.value

    def follow(change: dict) -> None:
        residual_scale.disabled = not change["new"]

    residual.observe(follow, names="value")


def architecture_controls(
    depth: int,
    width: int,
    activation: str,
    norm: str,
    init: str,
    residual: bool,
    residual_scale: float | None,
    *,
    max_depth: int,
    max_width: int,
) -> dict[str, w.ValueWidget]:
    """The controls that define a network, keyed like :func:`~explodegrad.core.nets.build_mlp`'s
    arguments, with the residual scale greyed out while the network is plain (no residual-scale
    slider when ``residual_scale`` is None)."""
    controls = {
        "depth": depth_slider(depth, maximum=max_depth),
        "width": width_slider(width, maximum=max_width),
        "activation": activation_dropdown(activation),
        "norm": norm_dropdown(norm),
        "init": init_dropdown(init),
        "residual": residual_checkbox(residual),
    }
    if residual_scale is not None:
        controls["residual_scale"] = residual_scale_slider(residual_scale)
        link_residual_scale(controls["residual"], controls["residual_scale"])
    return controls


def log_slider(
    description: str, value: float, low_exponent: float, high_exponent: float, step: float = 0.25
) -> w.FloatLogSlider:
    """A slider over powers of ten (learning rates, scales)."""
    return ClampReportingFloatLogSlider(
        value=float(value),
        base=10,
        min=low_exponent,
        max=high_exponent,
        step=step,
        description=description,
        readout_format=".3g",
        continuous_update=False,
        style=_STYLE,
    )


def toggle(description: str, value: bool) -> w.Checkbox:
    """An on/off view option."""
    return w.Checkbox(
        value=bool(value), description=description, indent=False, layout=w.Layout(width="max-content")
    )


@lru_cache(maxsize=8)
def digits_batch(
    device: torch.device, batch_size: int = BATCH_SIZE, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """A fixed batch of the bundled digits on ``device`` (loaded once, then reused)."""
    return digits(device, seed, dtype).batch(batch_size, seed=seed)


@lru_cache(maxsize=4)
def digits(device: torch.device, seed: int = 0, dtype: torch.dtype = torch.float32) -> Dataset:
    """The bundled digits on ``device`` (loaded once, then reused)."""
    return load_digits(seed=seed, device=device, dtype=dtype)


@dataclass(frozen=True)
class NetSetting:
    """What the architecture explorers share: the network, on a device, for one batch."""

    device: torch.device
    seed: int = 0
    batch_size: int = 128

    def network(
        self,
        depth: int,
        width: int,
        activation: str,
        norm: str,
        init: str,
        residual: bool = False,
        residual_scale: float = 1.0,
    ) -> DeepMLP:
        """Build the network at initialization (float32, seeded)."""
        return build_mlp(
            depth=depth,
            width=width,
            activation=activation,
            norm=norm,
            init=init,
            residual=residual,
            residual_scale=residual_scale,
            in_features=64,
            out_features=10,
            seed=self.seed,
            device=self.device,
            dtype=torch.float32,
        )

    def batch(self) -> tuple[Tensor, Tensor]:
        """The fixed batch of digits every measurement of this setting uses."""
        return digits_batch(self.device, self.batch_size, self.seed)
