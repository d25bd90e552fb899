"""The one call every notebook opens with, and the start-here check.

``setup()`` seeds Python, NumPy and torch, applies the plotting theme, picks the device and
the scale, and prints one short block saying what was chosen and why, so a learner (or a
reviewer reading stored outputs) knows what produced the numbers.

The seeding itself lives in :func:`explodegrad.core.seeds.seed_everything`, so that the
headless report seeds the same way without importing the course.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

import torch

from explodegrad.core.checks import check_choice
from explodegrad.core.device import DeviceChoice, pick_device
from explodegrad.core.scales import SCALES, Scale, pick_scale
from explodegrad.core.seeds import seed_everything
from explodegrad.plots import set_theme


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
        return "\n".join(
            [
                versions,
                f"device: {self.device}",
                f"scale:  {self.scale.describe()}",
                f"        ({self.scale.reason})",
                f"seed:   {self.seed} (Python, NumPy and torch seeded)",
            ]
        )


def versions() -> dict[str, str]:
    """Versions of explodegrad, torch and Python, for the setup printout."""
    from explodegrad import __version__

    return {"explodegrad": __version__, "torch": torch.__version__, "python": platform.python_version()}


def setup(
    seed: int = 0, scale: str | Scale | None = None, device: str | None = None, *, quiet: bool = False
) -> CourseContext:
    """Prepare a notebook: seeds, plotting theme, device and scale; print what was chosen.

    Args:
        seed: seed for Python, NumPy and torch.
        scale: ``"quick"``, ``"paper"`` or a :class:`Scale` (default: by device, or
            ``$EXPLODEGRAD_SCALE``).
        device: ``"auto"``, ``"cuda"``, ``"mps"`` or ``"cpu"`` (default: ``$EXPLODEGRAD_DEVICE``,
            then auto).
        quiet: do not print.

    Raises:
        TypeError: for an argument of the wrong type (e.g. ``scale=20``).
        ValueError: for an unknown scale or device name, or a negative seed.
    """
    if scale is not None and not isinstance(scale, (str, Scale)):
        raise TypeError(f"scale must be 'quick', 'paper', a Scale or None, got {type(scale).__name__}")
    if not isinstance(quiet, bool):
        raise TypeError(f"quiet must be True or False, got {type(quiet).__name__}")
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
