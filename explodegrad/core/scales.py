"""How big the course's experiments are: a quick scale for a CPU, the paper's for a GPU.

Every experiment takes a :class:`Scale`. ``QUICK`` runs every notebook on a 2-core CPU in a
few minutes (that is what CI runs and what the stored notebook outputs come from); ``PAPER``
uses the sizes of Philipp et al. (depth 50, width 100, CIFAR-10) and full training, which
wants a GPU; ``EVIDENCE`` sits between them: the studies whose results ship with the package
as stored evidence (:mod:`explodegrad.studies.stored`) run at it. :func:`pick_scale` chooses
by device, and ``EXPLODEGRAD_SCALE=quick|evidence|paper`` overrides the choice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from explodegrad.core.checks import check_choice, check_int
from explodegrad.core.data import (
    DATASETS,
    Dataset,
    DatasetNotFoundError,
    find_cifar10,
    gaussian_data,
    load_cifar10,
    load_digits,
)
from explodegrad.core.device import DeviceChoice, pick_device

#: Environment variable that overrides the automatic choice (``quick`` or ``paper``).
SCALE_ENV = "EXPLODEGRAD_SCALE"


@dataclass(frozen=True)
class Scale:
    """The sizes of an experiment.

    Attributes:
        name: ``"quick"``, ``"paper"`` or a name of your own.
        depth: weight layers of the default network.
        width: neurons per hidden layer.
        batch_size: examples per training step and per measurement batch.
        train_steps: optimizer steps of a full training run.
        dataset: one of :data:`explodegrad.core.data.DATASETS`.
        n_train: keep only this many training examples (None: all of them).
        n_test: keep only this many test examples (None: all of them).
        num_seeds: how many seeds every study that trains runs by default (its numbers are
            reported as the median and the range over them, never as one run's digits).
        reason: why this scale was picked (not part of equality).
        data_root: the folder CIFAR-10 is looked for in first (None: ``$EXPLODEGRAD_DATA``,
            then the cache). It travels with the scale into every study that loads the scale's
            data, so a report's ``--data-root`` reaches them all. Not part of equality: the same
            data from another folder is the same experiment.
    """

    name: str
    depth: int
    width: int
    batch_size: int
    train_steps: int
    dataset: str
    n_train: int | None = None
    n_test: int | None = None
    num_seeds: int = 1
    reason: str = field(default="", compare=False)
    data_root: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name={self.name!r} is not allowed: name must be a non-empty string")
        if not self.name:
            raise ValueError(f"name={self.name!r} is not allowed: name must be a non-empty string")
        set_ = object.__setattr__
        set_(self, "depth", check_int("depth", self.depth, 1))
        set_(self, "width", check_int("width", self.width, 1))
        set_(self, "batch_size", check_int("batch_size", self.batch_size, 1))
        set_(self, "train_steps", check_int("train_steps", self.train_steps, 1))
        set_(self, "dataset", check_choice("dataset", self.dataset, DATASETS))
        if self.n_train is not None:
            set_(self, "n_train", check_int("n_train", self.n_train, 1))
        if self.n_test is not None:
            set_(self, "n_test", check_int("n_test", self.n_test, 1))
        set_(self, "num_seeds", check_int("num_seeds", self.num_seeds, 1))
        if self.data_root is not None:
            if not isinstance(self.data_root, (str, os.PathLike)):
                raise TypeError(
                    f"data_root={self.data_root!r} is not allowed: data_root must be a path or None"
                )
            set_(self, "data_root", os.fspath(self.data_root))

    def describe(self) -> str:
        """One line, e.g. ``quick: depth 20, width 64, digits, batch 128, 200 training steps``."""
        subset = f" (first {self.n_train} training examples)" if self.n_train else ""
        return (
            f"{self.name}: depth {self.depth}, width {self.width}, {self.dataset}{subset}, "
            f"batch {self.batch_size}, {self.train_steps} training steps"
        )

    def with_(self, **changes: Any) -> Scale:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


#: Small enough that every notebook runs top to bottom on a 2-core CPU (CI, laptops).
QUICK = Scale(
    name="quick", depth=20, width=64, batch_size=128, train_steps=200, dataset="digits", num_seeds=3
)
#: The paper's network sizes on CIFAR-10. The step count is our operational choice (about 26
#: epochs of CIFAR-10 at batch 128), not the paper's exact schedule.
PAPER = Scale(
    name="paper", depth=50, width=100, batch_size=128, train_steps=10_000, dataset="cifar10", num_seeds=5
)
#: Between the two, for the stored evidence of chapters 04, 07 and 08: the paper's width and depth
#: (depths up to 50), CIFAR-10, several seeds, float32. The training set is cut to its first 500
#: examples so that 200 steps (about 50 epochs) let the shallow networks fit it: the question
#: is which networks can be *trained* (training error), and a small set answers it at a CPU's
#: cost (about half an hour for the depth-limit study on 2 cores, minutes on a GPU).
EVIDENCE = Scale(
    name="evidence",
    depth=50,
    width=100,
    batch_size=128,
    train_steps=200,
    dataset="cifar10",
    n_train=500,
    n_test=500,
    num_seeds=3,
)
SCALES = {"quick": QUICK, "evidence": EVIDENCE, "paper": PAPER}


def cifar10_available(root: str | os.PathLike | None = None) -> bool:
    """Whether a local CIFAR-10 copy is found (``root``, ``$EXPLODEGRAD_DATA``, the cache).

    Never downloads; an archive found is unpacked, as loading would do anyway.
    """
    try:
        find_cifar10(root, download=False)
    except (DatasetNotFoundError, ValueError):
        return False
    return True


def pick_scale(
    device_choice: DeviceChoice | None = None,
    override: str | Scale | None = None,
    data_root: str | os.PathLike | None = None,
) -> Scale:
    """Choose the scale: the paper's on a GPU, the quick one on a CPU.

    Args:
        device_choice: the device experiments run on (default: :func:`pick_device`).
        override: ``"quick"``, ``"evidence"``, ``"paper"`` or a :class:`Scale`; beats the environment
            variable ``EXPLODEGRAD_SCALE``, which beats the device rule.
        data_root: where to look for CIFAR-10 for the paper scale. When it is not found the
            paper scale falls back to the bundled digits, and ``reason`` says so.

    Returns:
        The scale, with ``reason`` saying why it was picked.

    Raises:
        ValueError: for an unknown scale name (argument or environment variable).
    """
    if isinstance(override, Scale):
        return override.with_(reason=override.reason or "given")
    if override is not None:
        name = check_choice("override", override, tuple(SCALES))
        why = "asked for"
    elif os.environ.get(SCALE_ENV):
        name = check_choice(SCALE_ENV, os.environ[SCALE_ENV], tuple(SCALES))
        why = f"set by {SCALE_ENV}"
    else:
        if device_choice is None:
            device_choice = pick_device()
        if not isinstance(device_choice, DeviceChoice):
            raise TypeError(
                f"device_choice={device_choice!r} is not allowed: pass a DeviceChoice "
                "from explodegrad.pick_device(), or None"
            )
        name = "paper" if device_choice.is_gpu else "quick"
        why = "a GPU is available" if device_choice.is_gpu else "no GPU: sized for a CPU"
        why += f"; set {SCALE_ENV}=quick|evidence|paper to choose"
    scale = SCALES[name]
    if scale.dataset == "cifar10" and not cifar10_available(data_root):
        why += (
            "; CIFAR-10 was not found locally, so the bundled digits stand in (see the "
            "README: pass root= or set EXPLODEGRAD_DATA)"
        )
        scale = scale.with_(dataset="digits", n_train=None, n_test=None)
    elif scale.dataset == "cifar10" and data_root is not None:
        scale = scale.with_(data_root=data_root)
    return scale.with_(reason=why)


def _truncate(dataset: Dataset, n_train: int | None, n_test: int | None) -> Dataset:
    keep_train = slice(None, n_train)
    keep_test = slice(None, n_test)
    return Dataset(
        dataset.name,
        dataset.x_train[keep_train],
        dataset.y_train[keep_train],
        dataset.x_test[keep_test],
        dataset.y_test[keep_test],
        dataset.num_classes,
        dataset.class_names,
        dataset.source,
    )


def load_scale_data(
    scale: Scale,
    device: Any = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    data_root: str | os.PathLike | None = None,
) -> Dataset:
    """The data set a scale names, cut to its ``n_train`` / ``n_test`` (CIFAR-10 is not downloaded here).

    CIFAR-10 is looked for in ``data_root``, else the scale's own ``data_root``, else
    ``$EXPLODEGRAD_DATA`` and the cache.
    """
    if not isinstance(scale, Scale):
        raise TypeError(f"scale={scale!r} is not allowed: scale must be a Scale (QUICK, PAPER, ...)")
    if scale.dataset == "cifar10":
        return load_cifar10(
            scale.data_root if data_root is None else data_root,
            download=False,
            n_train=scale.n_train,
            n_test=scale.n_test,
            device=device,
            dtype=dtype,
        )
    if scale.dataset == "gaussian":
        return gaussian_data(
            n_train=scale.n_train or 1024, n_test=scale.n_test or 256, seed=seed, device=device, dtype=dtype
        )
    return _truncate(load_digits(seed=seed, device=device, dtype=dtype), scale.n_train, scale.n_test)
