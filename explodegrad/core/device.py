"""Which device experiments run on: cuda, then mps, then cpu, unless told otherwise."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch

from explodegrad.core.checks import check_choice

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
#: Environment variable that overrides the automatic choice (e.g. ``EXPLODEGRAD_DEVICE=cpu``).
DEVICE_ENV = "EXPLODEGRAD_DEVICE"


@dataclass(frozen=True)
class DeviceChoice:
    """The device picked and why, so notebooks and explorers can say what they run on."""

    device: torch.device
    name: str
    reason: str

    @property
    def is_gpu(self) -> bool:
        return self.device.type in ("cuda", "mps")

    def __str__(self) -> str:
        return f"{self.device.type} ({self.name}) - {self.reason}"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(preference: str | None = None) -> DeviceChoice:
    """Pick where to run.

    Args:
        preference: ``"auto"`` (default), ``"cuda"``, ``"mps"`` or ``"cpu"``. When None, the
            ``EXPLODEGRAD_DEVICE`` environment variable is read, then ``"auto"`` is used.

    Raises:
        TypeError: for a preference that is not a string (nor None).
        ValueError: for an unknown name, or a device asked for by name that is not present.
    """
    source = "asked for"
    if preference is None:
        preference = os.environ.get(DEVICE_ENV, "auto")
        source = f"set by {DEVICE_ENV}" if DEVICE_ENV in os.environ else source
    preference = check_choice("device", preference, DEVICE_CHOICES)
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError(
                "device='cuda' is not available here: no CUDA GPU was found; use 'auto' or 'cpu'"
            )
        reason = source if preference == "cuda" else "a CUDA GPU was found"
        return DeviceChoice(torch.device("cuda"), torch.cuda.get_device_name(0), reason)
    if preference == "mps" or (preference == "auto" and _mps_available()):
        if not _mps_available():
            raise ValueError(
                "device='mps' is not available here: no Apple GPU was found; use 'auto' or 'cpu'"
            )
        reason = source if preference == "mps" else "an Apple GPU was found"
        return DeviceChoice(torch.device("mps"), "Apple GPU", reason)
    reason = source if preference == "cpu" else "no GPU was found"
    threads = torch.get_num_threads()
    return DeviceChoice(torch.device("cpu"), f"CPU, {threads} thread(s)", reason)


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU model in words (from ``/proc/cpuinfo`` on Linux, else what ``platform`` knows).

    Benchmarks and reports print it beside their numbers, so a figure says where it was taken.
    """
    try:
        with open(cpuinfo) as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
