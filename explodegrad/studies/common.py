"""The study vocabulary and protocol: the architecture type, default initializations, the one
label function, and one resolver each for a study's ``scale``, ``device``, ``data`` and dtype.

Every study in :mod:`explodegrad.studies` takes the same keyword-only arguments and resolves
them here:

* ``scale``: a :class:`~explodegrad.core.scales.Scale`, or None for
  :data:`~explodegrad.core.scales.QUICK` (:func:`resolve_scale`);
* ``device``: a name (``"cpu"``, ``"cuda"``, ``"auto"``), a :class:`torch.device`, a
  :class:`~explodegrad.core.device.DeviceChoice` (what the notebooks' setup call holds), or
  None: where given data already is, else :func:`~explodegrad.core.device.pick_device`'s
  choice (:func:`resolve_device`);
* ``data``: a :class:`~explodegrad.core.data.Dataset`, a data set name, or None for the scale's
  (:func:`resolve_data`), in the dtype of :func:`default_dtype` unless told otherwise;
* ``seeds``: a count or the seeds themselves
  (:func:`explodegrad.core.seeds.resolve_seeds`).

Every study returns a frozen :class:`StudyResult`: ``to_dict()`` is its one serialization
route (plain JSON values, see :func:`to_jsonable`) and ``summary()`` its short printout. Every
study module lists the claims judged on its results in a ``CLAIMS`` tuple of claim ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from explodegrad.core.checks import check_choice, check_int
from explodegrad.core.config import ACTIVATIONS, INITS, NORMS, NetConfig, residual_depth
from explodegrad.core.data import Dataset, load_dataset
from explodegrad.core.device import default_dtype, resolve_device
from explodegrad.core.jsonable import fields_to_jsonable
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


def architecture_label(activation: str, norm: str, residual: bool = False, init: str | None = None) -> str:
    """The one name of an architecture in tables, plots and claims.

    E.g. ``"relu/batch"``, ``"tanh/none/res"``, or with an initializer ``"relu/none/looks_linear"``
    and ``"tanh/batch/xavier/res"``: ``init`` is named when given, left out when None.
    """
    return f"{activation}/{norm}" + (f"/{init}" if init is not None else "") + ("/res" if residual else "")


# ----------------------------------------------------------------------------- the resolvers


def resolve_scale(scale: Scale | None) -> Scale:
    """The study's scale: ``scale`` itself, or :data:`~explodegrad.core.scales.QUICK` for None.

    Raises:
        TypeError: ``scale`` is neither a Scale nor None.
    """
    if scale is None:
        return QUICK
    if not isinstance(scale, Scale):
        raise TypeError(
            f"scale={scale!r} is not allowed: scale must be a Scale (QUICK, PAPER, ...) or None, "
            f"got {type(scale).__name__}"
        )
    return scale


def resolve_data(
    data: Dataset | str | None = None,
    *,
    scale: Scale | None = None,
    seed: int = 0,
    device: Any = None,
    dtype: torch.dtype | None = None,
) -> Dataset:
    """The one data resolver: the study's data on its device, in its dtype.

    Args:
        data: a Dataset (used as it is unless ``device`` or ``dtype`` say otherwise), a data
            set name (``"digits"``, ``"gaussian"``, ``"cifar10"``), or None for the scale's data.
        scale: where None takes its data from (None: QUICK).
        seed: the seed of the split (digits) or of the samples (gaussian) when data is loaded.
        device: see :func:`resolve_device` (None: a given Dataset stays where it is).
        dtype: float32 or float64. None: :func:`default_dtype` of the device for data loaded
            here; a given Dataset keeps its own.

    Raises:
        TypeError: ``data`` or ``dtype`` of the wrong type.
    """
    scale = resolve_scale(scale)
    if data is not None and not isinstance(data, (str, Dataset)):
        raise TypeError(
            f"data={data!r} is not allowed: give a Dataset, a data set name "
            f"('digits', 'gaussian', 'cifar10') or None (the scale's data), got {type(data).__name__}"
        )
    if dtype is not None and dtype not in (torch.float32, torch.float64):
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"dtype={dtype!r} is not allowed: dtype must be a torch.dtype or None")
        raise ValueError(
            f"dtype={dtype!r} is not allowed: dtype must be torch.float32, torch.float64 or None"
        )
    where = resolve_device(device, data)
    if not isinstance(data, Dataset):
        dtype = default_dtype(where) if dtype is None else dtype
        if data is None:
            return load_scale_data(scale, device=where, seed=seed, dtype=dtype)
        return load_dataset(data, device=where, seed=seed, dtype=dtype)
    dataset = data if device is None else data.to(where)
    if dtype is None or dataset.x_train.dtype == dtype:
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


# ----------------------------------------------------------------------------- results


class StudyResult:
    """What every study returns (a frozen dataclass deriving from this): one serialization
    route, :meth:`to_dict`, and a short printout, :meth:`summary`."""

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON values (what the report and the evidence files store)."""
        return fields_to_jsonable(self)

    def summary(self) -> str:
        """A short fixed-format table of the result's main numbers."""
        raise NotImplementedError(f"{type(self).__name__} must define summary()")


# ----------------------------------------------------------------------------- building blocks


def config_for(
    activation: str, norm: str, depth: int, width: int, data: Dataset, seed: int, init: str | None = None
) -> NetConfig:
    """A plain network for ``data`` with the activation's default initializer unless ``init`` is given."""
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
        """E.g. ``relu/batch`` or ``tanh/none/res`` (:func:`architecture_label` without the initializer)."""
        return architecture_label(self.activation, self.norm, self.residual)

    @property
    def name(self) -> str:
        """The label with the initializer, e.g. ``relu/none/looks_linear`` or ``tanh/batch/xavier/res``."""
        init = self.init or DEFAULT_INITS[self.activation]
        return architecture_label(self.activation, self.norm, self.residual, init)

    def config(self, depth: int, width: int, in_features: int, out_features: int, seed: int = 0) -> NetConfig:
        """The network configuration at a given size.

        A residual network needs ``depth = 2 + a multiple of 2``; an odd ``depth`` is lowered
        by one for it (so depth 50 stays 50 and depth 21 becomes 20).
        """
        depth = residual_depth(depth) if self.residual else check_int("depth", depth, 1)
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


def study_settings(
    scale: Scale | None = None, checkpoints: int | None = None, **overrides: Any
) -> TrainSettings:
    """Training settings for a study at a scale: SGD, momentum 0.9, lr 0.01, the scale's steps and batch.

    ``checkpoints`` records are taken after step 0 (every ``steps // checkpoints`` updates;
    default :data:`DEFAULT_CHECKPOINTS`, or one per step for shorter runs); ``overrides``
    change any :class:`~explodegrad.training.loop.TrainSettings` field.
    """
    scale = resolve_scale(scale)
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
