"""The study vocabulary: the architecture type, default initializations, the one label
function, the data and dtype policy, and small float64 helpers shared by the chapter studies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from explodegrad.core.checks import check_choice, check_int
from explodegrad.core.config import ACTIVATIONS, INITS, NORMS, NetConfig
from explodegrad.core.data import Dataset, load_dataset
from explodegrad.core.device import DeviceChoice, pick_device
from explodegrad.core.scales import QUICK, Scale, load_scale_data
from explodegrad.training.loop import TrainSettings

#: Default training checkpoints (records) per run, step 0 excluded.
DEFAULT_CHECKPOINTS = 5
#: The initializer each activation gets unless told otherwise.
DEFAULT_INITS = {
    "relu": "he",
    "leaky_relu": "he",
    "gelu": "he",
    "tanh": "xavier",
    "sigmoid": "xavier",
    "softplus": "he",
    "selu": "lecun",
    "linear": "lecun",
}


def architecture_label(activation: str, norm: str, residual: bool = False) -> str:
    """The key of one architecture in a survey, e.g. ``"relu/batch"`` or ``"tanh/none/res"``."""
    return f"{activation}/{norm}" + ("/res" if residual else "")


def check_scale(scale: Scale | None) -> Scale:
    if scale is None:
        return QUICK
    if not isinstance(scale, Scale):
        raise ValueError(f"scale={scale!r} is not allowed: scale must be a Scale (QUICK, PAPER, ...) or None")
    return scale


def resolve_data(
    data: Dataset | str | None, scale: Scale, seed: int, device: Any, dtype: torch.dtype | None
) -> Dataset:
    """The study's data on ``device`` in ``dtype`` (default: float64 on a CPU, float32 elsewhere).

    ``device`` may be a torch device or its name, ``"auto"`` (a GPU when there is one), a
    :class:`~explodegrad.core.device.DeviceChoice`, or None (where the data already is).
    """
    if isinstance(device, DeviceChoice):
        device = device.device
    elif isinstance(device, str) and device == "auto":
        device = pick_device().device
    if data is not None and not isinstance(data, (str, Dataset)):
        raise ValueError(
            f"data={data!r} is not allowed: give a Dataset, a data set name "
            "('digits', 'gaussian', 'cifar10') or None (the scale's data)"
        )
    if dtype is None:
        where = data.device if isinstance(data, Dataset) and device is None else torch.device(device or "cpu")
        dtype = torch.float64 if where.type == "cpu" else torch.float32
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"dtype={dtype!r} is not allowed: dtype must be torch.float32, torch.float64 or None"
        )
    if data is None:
        return load_scale_data(scale, device=device, seed=seed, dtype=dtype)
    if isinstance(data, str):
        return load_dataset(data, device=device, seed=seed, dtype=dtype)
    dataset = data if device is None else data.to(device)
    if dataset.x_train.dtype == dtype:
        return dataset
    return Dataset(
        dataset.name,
        dataset.x_train.to(dtype),
        dataset.y_train,
        dataset.x_test.to(dtype),
        dataset.y_test,
        dataset.num_classes,
        dataset.class_names,
        dataset.source,
    )


def config_for(
    activation: str, norm: str, depth: int, width: int, data: Dataset, seed: int, init: str | None = None
) -> NetConfig:
    return NetConfig(
        depth=depth,
        width=width,
        activation=activation,
        norm=norm,
        init=init or DEFAULT_INITS.get(activation, "he"),
        in_features=data.in_features,
        out_features=data.num_classes,
        seed=seed,
    )


@dataclass(frozen=True)
class Architecture:
    """An architecture of a study: activation, normalization, plain or residual, initializer.

    Attributes:
        activation: one of :data:`explodegrad.core.config.ACTIVATIONS`.
        norm: ``"none"``, ``"batch"`` or ``"layer"``.
        residual: residual blocks (two layers each) instead of plain layers.
        init: the initializer; None means the usual one for the activation
            (:data:`explodegrad.studies.common.DEFAULT_INITS`: He for ReLU, Xavier for tanh, LeCun
            for SELU).
        residual_scale: multiplier of the residual branch (residual networks only).
    """

    activation: str
    norm: str = "none"
    residual: bool = False
    init: str | None = None
    residual_scale: float = 1.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "activation", check_choice("activation", self.activation, ACTIVATIONS))
        set_(self, "norm", check_choice("norm", self.norm, NORMS))
        set_(self, "residual", bool(self.residual))
        if self.init is not None:
            set_(self, "init", check_choice("init", self.init, INITS))

    @property
    def label(self) -> str:
        """E.g. ``relu/batch`` or ``tanh/none/res`` (as in :mod:`explodegrad.studies.survey`)."""
        return architecture_label(self.activation, self.norm, self.residual)

    def config(self, depth: int, width: int, in_features: int, out_features: int, seed: int = 0) -> NetConfig:
        """The network configuration at a given size.

        A residual network needs ``depth = 2 + a multiple of 2``; an odd ``depth`` is lowered
        by one for it (so depth 50 stays 50 and depth 21 becomes 20).
        """
        depth = check_int("depth", depth, 4 if self.residual else 1)
        if self.residual and depth % 2:
            depth -= 1
        return NetConfig(
            depth=depth,
            width=width,
            activation=self.activation,
            norm=self.norm,
            init=self.init or DEFAULT_INITS[self.activation],
            residual=self.residual,
            residual_scale=self.residual_scale,
            in_features=in_features,
            out_features=out_features,
            seed=seed,
        )


def default_dtype(device: Any = None) -> torch.dtype:
    """The dtype a study trains in: float64 on the CPU, float32 on a GPU.

    On the CPU, float32 sums depend on the number of threads, and over a few hundred training
    steps the differences grow into different printed results; float64 keeps them identical
    (at about twice the cost). On a GPU, float32 is the fast choice.
    """
    return (
        torch.float64
        if torch.device(device if device is not None else "cpu").type == "cpu"
        else torch.float32
    )


def study_data(scale: Scale, data: Dataset | None = None, seed: int = 0, device: Any = None) -> Dataset:
    """The data set a study uses: ``data`` itself, or the scale's on ``device`` in :func:`default_dtype`."""
    if not isinstance(scale, Scale):
        raise ValueError(f"scale={scale!r} is not allowed: scale must be a Scale (QUICK, PAPER, ...)")
    if data is None:
        return load_scale_data(scale, device=device, seed=seed, dtype=default_dtype(device))
    if not isinstance(data, Dataset):
        raise ValueError(f"data={data!r} is not allowed: data must be a Dataset or None")
    return data


def study_settings(scale: Scale, checkpoints: int | None = None, **overrides: Any) -> TrainSettings:
    """Training settings for a study at a scale: SGD, momentum 0.9, lr 0.01, the scale's steps and batch.

    ``checkpoints`` records are taken after step 0 (every ``steps // checkpoints`` updates;
    default :data:`DEFAULT_CHECKPOINTS`, or one per step for shorter runs); ``overrides``
    change any :class:`~explodegrad.training.loop.TrainSettings` field.
    """
    if not isinstance(scale, Scale):
        raise ValueError(f"scale={scale!r} is not allowed: scale must be a Scale (QUICK, PAPER, ...)")
    if checkpoints is None:
        checkpoints = min(DEFAULT_CHECKPOINTS, scale.train_steps)
    checkpoints = check_int("checkpoints", checkpoints, 1, scale.train_steps)
    base = TrainSettings(
        optimizer="sgd",
        lr=0.01,
        momentum=0.9,
        steps=scale.train_steps,
        batch_size=scale.batch_size,
        record_every=scale.train_steps // checkpoints,
        eval_size=1024,
        seed=0,
    )
    return base.with_(**overrides)


def float64_rms(tensor: Tensor) -> float:
    """Root mean square, computed in float64 so that large float32 entries do not overflow it."""
    return float(tensor.detach().double().pow(2).mean().sqrt())


def float64_norm(tensor: Tensor) -> float:
    return float(torch.linalg.vector_norm(tensor.detach().double()))


def all_finite(tensor: Tensor) -> bool:
    return bool(torch.isfinite(tensor).all())


def architecture_name(architecture: Architecture) -> str:
    """A label that names the initializer too, e.g. ``relu/none/looks_linear``."""
    init = architecture.init or DEFAULT_INITS[architecture.activation]
    return f"{architecture.activation}/{architecture.norm}/{init}" + ("/res" if architecture.residual else "")
