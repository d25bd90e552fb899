"""Which device experiments run on: cuda, then mps, then cpu, unless told otherwise."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Any

import torch

from explodegrad.core.checks import check_choice
from explodegrad.core.data import Dataset

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


#: What an explorer's ``device`` argument takes (:func:`as_device_choice`).
DeviceLike = DeviceChoice | torch.device | str | None


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
    argument = "device"
    if preference is None:
        preference = os.environ.get(DEVICE_ENV, "auto")
        if DEVICE_ENV in os.environ:
            source, argument = f"set by {DEVICE_ENV}", DEVICE_ENV  # errors name what the user set
    preference = check_choice(argument, preference, DEVICE_CHOICES)
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError(
                f"{argument}='cuda' is not available here: no CUDA GPU was found; use 'auto' or 'cpu'"
            )
        reason = source if preference == "cuda" else "a CUDA GPU was found"
        return DeviceChoice(torch.device("cuda"), torch.cuda.get_device_name(0), reason)
    if preference == "mps" or (preference == "auto" and _mps_available()):
        if not _mps_available():
            raise ValueError(
                f"{argument}='mps' is not available here: no Apple GPU was found; use 'auto' or 'cpu'"
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


def resolve_device(device: Any = None, data: Any = None) -> torch.device:
    """Where a study or a training run goes.

    Args:
        device: a name (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, or ``"auto"``: a GPU when
            there is one), a :class:`torch.device`, a :class:`~explodegrad.core.device.DeviceChoice`
            (the setup call's ``ctx.device``), or None: the device of ``data`` when it is a
            Dataset, else :func:`~explodegrad.core.device.pick_device`'s choice (which honours
            ``EXPLODEGRAD_DEVICE``).
        data: the study's ``data`` argument (only read when ``device`` is None).

    Raises:
        TypeError: ``device`` is of another type.
        ValueError: a name torch does not know.
    """
    if isinstance(device, DeviceChoice):
        return device.device
    if isinstance(device, torch.device):
        return device
    if device is None:
        return data.device if isinstance(data, Dataset) else pick_device().device
    if not isinstance(device, str):
        raise TypeError(
            f"device={device!r} is not allowed: device must be a name ('cpu', 'cuda', 'auto'), a "
            f"torch.device, a DeviceChoice or None, got {type(device).__name__}"
        )
    if device == "auto":
        return pick_device("auto").device
    try:
        where = torch.device(device)
    except RuntimeError:
        hint = " (a GPU is 'cuda' or 'mps')" if device.lower() == "gpu" else ""
        raise ValueError(
            f"device={device!r} is not allowed: give 'cpu', 'cuda', 'cuda:<index>', 'mps' or 'auto'{hint}"
        ) from None
    return where


def check_device_available(where: torch.device, given: Any = None) -> torch.device:
    """``where`` if this machine has it (a CUDA or Apple GPU asked for must be present).

    :func:`resolve_device` only names a device (plans and dtypes for a GPU can be made on a
    CPU-only machine); whatever puts tensors there checks with this first, so that a missing
    GPU is a ``ValueError`` in words, not torch's "Torch not compiled with CUDA enabled".
    ``given`` is the device as the caller wrote it, for the message (default: ``where``).
    """
    given = where if given is None else given
    if where.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={given!r} is not available here: no CUDA GPU was found; use 'auto' or 'cpu'"
            )
        count = torch.cuda.device_count()
        if where.index is not None and where.index >= count:
            raise ValueError(
                f"device={given!r} is not available here: this machine has {count} CUDA GPU(s), "
                f"cuda:0 .. cuda:{count - 1}"
            )
    elif where.type == "mps" and not _mps_available():
        raise ValueError(
            f"device={given!r} is not available here: no Apple GPU was found; use 'auto' or 'cpu'"
        )
    return where


def as_device_choice(device: DeviceLike = None) -> DeviceChoice:
    """``device`` as a :class:`DeviceChoice`, the form an explorer labels and runs on.

    Takes what studies take (:func:`resolve_device`): None or ``"auto"`` (the automatic choice,
    which honours ``EXPLODEGRAD_DEVICE``), a name such as ``"cpu"`` or ``"cuda:1"``, a
    :class:`torch.device`, or a :class:`DeviceChoice` (the setup call's ``ctx.device``, kept).

    Raises:
        TypeError: ``device`` is of another type.
        ValueError: an unknown name, or a GPU this machine does not have.
    """
    if isinstance(device, DeviceChoice):
        return device
    if device is None or device in DEVICE_CHOICES:
        return pick_device(device)
    where = check_device_available(resolve_device(device), device)
    if where.type == "cuda":
        return DeviceChoice(where, torch.cuda.get_device_name(where), "asked for")
    if where.type == "mps":
        return DeviceChoice(where, "Apple GPU", "asked for")
    return DeviceChoice(where, f"CPU, {torch.get_num_threads()} thread(s)", "asked for")


def default_dtype(device: Any = None) -> torch.dtype:
    """The one dtype rule: float64 on the CPU, float32 on a GPU.

    On the CPU, float32 sums depend on the number of threads, and over a few hundred training
    steps the differences grow into different printed results; float64 keeps them identical
    (at about twice the cost). On a GPU, float32 is the fast choice. ``device`` is anything
    :func:`resolve_device` takes; None means the CPU.
    """
    where = torch.device("cpu") if device is None else resolve_device(device)
    return torch.float64 if where.type == "cpu" else torch.float32
