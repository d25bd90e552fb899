"""The architecture survey: how much popular architectures explode at initialization.

Philipp, Song & Carbonell (2018) measure the gradient scale coefficient of networks built
from three activations (ReLU, tanh, SELU) and three normalizations (none, batch, layer) at
depth 50 and width 100, and find that most of them have exploding gradients from the very
start of training. :func:`architecture_survey` builds each architecture, measures one batch
and returns one table row per architecture:

* the GSC from the input to the per-example losses, GSC(L + 1, 0), and the fitted explosion
  rate r (with the fit's R^2), see :mod:`explodegrad.measures.gsc`;
* where values or gradients overflowed, if anywhere (a result, never an error);
* the collapsing-domain statistics of the last hidden layer (k = 2), see
  :mod:`explodegrad.measures.domain`.

The full :class:`~explodegrad.measures.gsc.GSCProfile` and :class:`~explodegrad.measures.domain.DomainStats`
of every architecture stay on the result for plots and for chapter 5.

Default initialization per activation (an operational choice, the usual pairing): He for
ReLU, Xavier for tanh, LeCun for SELU (the pairing SELU was designed for).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from explodegrad.core.checks import check_choice, check_int
from explodegrad.core.config import ACTIVATIONS, INITS, NORMS
from explodegrad.core.data import Dataset
from explodegrad.core.device import resolve_device
from explodegrad.core.jacobian import METHODS
from explodegrad.core.nets import build_mlp, make_activation
from explodegrad.core.scales import Scale
from explodegrad.core.seeds import resolve_seeds
from explodegrad.measures.domain import DomainStats, domain_stats
from explodegrad.measures.gsc import GSCProfile, gsc_profile
from explodegrad.studies.common import (
    DEFAULT_INITS,
    StudyResult,
    architecture_label,
    resolve_data,
    resolve_scale,
)

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = (
    "03/layer-norm-rates-derived",
    "04/most-popular-explode",
    "04/batch-norm-explodes",
    "04/bn-relu-mean-field",
    "04/plain-relu-tanh-calm",
    "04/layer-norm-tanh-not-relu",
    "04/selu-mild",
    "04/calm-relu-collapsed",
    "05/signs-kept",
    "05/tradeoff",
    "05/bn-relu-most-nonlinear",
    "05/level-is-loss-factor",
    "05/tanh-domain-shrinks",
    "06/resnets-explode-far-less",
    "06/skip-raises-calm-rates",
    "06/resnet-loss-factor-larger",
    "06/resnets-near-one",
    "08/batch-norm-tradeoff",
)

#: The paper's mean-field explosion rate of a batch-normalized ReLU network: sqrt(pi / (pi - 1)).
BATCHNORM_RELU_MEAN_FIELD_RATE = math.sqrt(math.pi / (math.pi - 1.0))
#: The normalizations :func:`mean_field_rate` derives a rate for.
MEAN_FIELD_NORMS = ("batch", "layer")
#: Gauss-Legendre nodes per half line in :func:`mean_field_rate` (each half is smooth for every
#: activation the library knows, so the quadrature is exact to rounding error).
_QUADRATURE_NODES = 200
#: Where the Gaussian integrals are cut off: the density beyond 12 standard deviations is < 1e-31.
_QUADRATURE_CUTOFF = 12.0


def gaussian_moments(activation: str) -> dict[str, float]:
    """E[phi(z)], E[phi(z)^2] and E[phi'(z)^2] for z ~ N(0, 1), by Gauss-Legendre quadrature on
    each half line (float64; exact to about 1e-14).

    Args:
        activation: a name of :data:`explodegrad.core.config.ACTIVATIONS`.

    Returns:
        ``{"mean": E[phi], "second_moment": E[phi^2], "variance": Var[phi], "slope_sq": E[phi'^2]}``.
    """
    activation = check_choice("activation", activation, ACTIVATIONS)
    nodes, weights = np.polynomial.legendre.leggauss(_QUADRATURE_NODES)
    half = _QUADRATURE_CUTOFF / 2.0
    positive = half * (nodes + 1.0)  # (0, cutoff)
    z = np.concatenate([-positive, positive])
    w = np.concatenate([weights, weights]) * half * np.exp(-(z**2) / 2.0) / math.sqrt(2.0 * math.pi)
    points = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    values = make_activation(activation)(points)
    (slopes,) = torch.autograd.grad(values.sum(), points)
    phi, slope = values.detach().numpy(), slopes.numpy()
    mean, second = float(w @ phi), float(w @ phi**2)
    return {
        "mean": mean,
        "second_moment": second,
        "variance": second - mean**2,
        "slope_sq": float(w @ slope**2),
    }


def mean_field_rate(activation: str, norm: str) -> float:
    """The explosion rate per layer of a normalized network in the mean-field limit.

    Each layer is linear -> norm -> activation, so every pre-activation z is standardized:
    z ~ N(0, 1). Backwards, one layer multiplies the GSC by

        r^2 = E[phi'(z)^2] / S,

    the activation's gradient gain over what the next normalization divides by: batch norm
    standardizes each neuron over the batch, removing the mean of phi(z), so S = Var[phi(z)];
    layer norm divides each example's pre-activations by their RMS over the neurons, whose mean
    is about 0 for zero-mean weights, so S = E[phi(z)^2]. For ReLU, E[relu'^2] = E[relu^2] = 1/2
    and Var[relu] = 1/2 - 1/(2 pi): batch norm gives r = sqrt(pi / (pi - 1)) = 1.21, layer norm
    r = 1. For tanh (odd, mean 0) both give the same r = 1.085.

    Args:
        activation: a name of :data:`explodegrad.core.config.ACTIVATIONS`.
        norm: ``"batch"`` or ``"layer"`` (:data:`MEAN_FIELD_NORMS`).
    """
    norm = check_choice("norm", norm, MEAN_FIELD_NORMS)
    moments = gaussian_moments(activation)
    divisor = moments["variance"] if norm == "batch" else moments["second_moment"]
    if divisor <= 0.0:
        raise ValueError(f"activation={activation!r} is not allowed with norm={norm!r}: phi(z) is constant")
    return math.sqrt(moments["slope_sq"] / divisor)


#: The columns of :attr:`SurveyResult.table`, in order.
COLUMNS = (
    "label",
    "activation",
    "norm",
    "residual",
    "init",
    "depth",
    "width",
    "gsc_input",
    "gsc_first_layer",
    "rate",
    "r_squared",
    "overflow_layer",
    "sign_diversity_last",
    "preact_std_last",
    "linear_fit_error_last",
)


@dataclass(frozen=True, eq=False)  # holds a DataFrame: compare fields, not results
class SurveyResult(StudyResult):
    """One row of numbers per architecture, and each architecture's full measurements.

    Attributes:
        table: one row per architecture with the columns of :data:`COLUMNS`: ``label``
            (see :func:`architecture_label`), activation, norm, residual, init, depth,
            width; ``gsc_input`` = GSC(L + 1, 0) from the input to the losses;
            ``gsc_first_layer`` = GSC(L, 0) from the first layer's output; ``rate`` and
            ``r_squared`` of the fitted explosion rate (NaN when no fit could be made);
            ``overflow_layer`` (nullable integer; missing when nothing overflowed); and at the
            last hidden layer k = 2: ``sign_diversity_last`` (mean sign diversity),
            ``preact_std_last`` (pre-activation std relative to the layer's RMS) and
            ``linear_fit_error_last`` (pseudo-linearity score, 1 - R^2).
        profiles: label -> the architecture's :class:`~explodegrad.measures.gsc.GSCProfile`.
        domains: label -> its :class:`~explodegrad.measures.domain.DomainStats`.
        batch_size: examples in the measured batch.
        data_name: the data set measured on.
        method: ``"probe"`` or ``"exact"``.
        seed: seed of the weights, the batch and the probes.
    """

    table: pd.DataFrame
    profiles: dict[str, GSCProfile]
    domains: dict[str, DomainStats]
    batch_size: int
    data_name: str
    method: str
    seed: int

    def row(self, activation: str, norm: str, residual: bool = False) -> dict[str, Any]:
        """The table row of one architecture as a dict."""
        label = architecture_label(activation, norm, residual)
        found = self.table[self.table["label"] == label]
        if found.empty:
            raise ValueError(
                f"architecture {label!r} is not in this survey: it holds "
                f"{', '.join(repr(x) for x in self.table['label'])}"
            )
        return found.iloc[0].to_dict()

    def summary(self) -> str:
        """Fixed-format lines, one per architecture, for printing and notebook checks."""
        lines = [
            f"{'architecture':<16}{'init':<8}{'GSC(input, 0)':>15}{'rate r':>9}"
            f"{'R^2':>7}{'sign div. k=2':>15}"
        ]
        for row in self.table.itertuples():
            overflow = "" if pd.isna(row.overflow_layer) else f"  overflow at k={row.overflow_layer}"
            lines.append(
                f"{row.label:<16}{row.init:<8}{row.gsc_input:>15.4g}{row.rate:>9.3f}"
                f"{row.r_squared:>7.3f}{row.sign_diversity_last:>15.3f}{overflow}"
            )
        return "\n".join(lines)


def _check_names(argument: str, values: Any, allowed: Sequence[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    try:
        names = tuple(values)
    except TypeError:
        raise ValueError(
            f"{argument}={values!r} is not allowed: {argument} must be a sequence of "
            f"names from {', '.join(repr(a) for a in allowed)}"
        ) from None
    if not names:
        raise ValueError(
            f"{argument}=() is not allowed: give at least one of {', '.join(repr(a) for a in allowed)}"
        )
    return tuple(check_choice(argument, name, allowed) for name in names)


def _resolve_inits(inits: dict[str, str] | str | None, activations: Sequence[str]) -> dict[str, str]:
    if inits is None:
        return {a: DEFAULT_INITS[a] for a in activations}
    if isinstance(inits, str):
        chosen = check_choice("inits", inits, INITS)
        return dict.fromkeys(activations, chosen)
    if not isinstance(inits, dict):
        raise TypeError(
            f"inits={inits!r} is not allowed: give None (a default per activation), "
            "one initializer name, or a dict activation -> initializer name"
        )
    resolved = {}
    for activation in activations:
        name = inits.get(activation, DEFAULT_INITS[activation])
        resolved[activation] = check_choice(f"inits[{activation!r}]", name, INITS)
    return resolved


def architecture_survey(
    activations: Sequence[str] = ("relu", "tanh", "selu"),
    norms: Sequence[str] = ("none", "batch", "layer"),
    residual: Sequence[bool] = (False,),
    *,
    scale: Scale | None = None,
    device: Any = None,
    data: Dataset | str | None = None,
    seeds: int | Sequence[int] | None = None,
    depth: int | None = None,
    width: int | None = None,
    batch_size: int | None = None,
    inits: dict[str, str] | str | None = None,
    method: str = "probe",
    num_probes: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> SurveyResult:
    """Measure every combination of activation, normalization and residual layout at initialization.

    Args:
        activations: names from :data:`explodegrad.core.config.ACTIVATIONS`.
        norms: names from :data:`explodegrad.core.config.NORMS`.
        residual: which layouts to include (``(False,)``: plain networks only). Residual
            networks use blocks of two layers, so ``depth`` must then be even.
        scale: where the defaults come from (default: :data:`explodegrad.core.scales.QUICK`).
        device: where the networks run (see :func:`~explodegrad.core.device.resolve_device`;
            default: the data's device, else the setup's choice).
        data: a :class:`~explodegrad.core.data.Dataset`, a data set name, or None for the scale's.
        seeds: one seed (a 1-tuple, or the count 1; default ``(0,)``) of the weights, the batch
            and the probes, shared by all architectures so that they see the same batch. A
            survey at initialization in float64 is deterministic, so it takes a single seed.
        depth, width: the networks' size (default: the scale's).
        batch_size: examples in the measured batch (default: the scale's, capped at the
            training set's size).
        inits: None (a default per activation, :data:`DEFAULT_INITS`), one initializer for
            all, or a dict activation -> initializer.
        method: ``"probe"`` (one batched backward pass) or ``"exact"`` (small networks only).
        num_probes: probes per backward pass (default: see :func:`explodegrad.measures.gsc.gsc_profile`).
        dtype: the networks' dtype; float64 by default, so printed digits agree across machines.

    Returns:
        A :class:`SurveyResult`. Overflow is reported in ``overflow_layer``, never raised.
    """
    activations = _check_names("activations", activations, ACTIVATIONS)
    norms = _check_names("norms", norms, NORMS)
    if isinstance(residual, bool):
        residual = (residual,)
    layouts = tuple(bool(r) for r in residual)
    if not layouts:
        raise ValueError("residual=() is not allowed: give (False,), (True,) or (False, True)")
    method = check_choice("method", method, METHODS)
    chosen = resolve_seeds(seeds, 1)
    if len(chosen) != 1:
        raise ValueError(
            f"seeds={seeds!r} is not allowed: a survey at initialization is deterministic and takes "
            "one seed, e.g. seeds=(0,)"
        )
    seed = chosen[0]
    scale = resolve_scale(scale)
    depth = check_int("depth", scale.depth if depth is None else depth, 1)
    width = check_int("width", scale.width if width is None else width, 1)
    init_of = _resolve_inits(inits, activations)
    device = resolve_device(device, data)
    dataset = resolve_data(data, scale=scale, seed=seed, device=device, dtype=dtype)
    n_train = int(dataset.x_train.shape[0])
    batch_size = check_int(
        "batch_size", min(scale.batch_size, n_train) if batch_size is None else batch_size, 2, n_train
    )
    inputs, targets = dataset.batch(batch_size, seed=seed)
    inputs, targets = inputs.to(device=device, dtype=dtype), targets.to(device)
    rows, profiles, domains = [], {}, {}
    for activation, norm, layout in itertools.product(activations, norms, layouts):
        label = architecture_label(activation, norm, layout)
        net = build_mlp(
            depth=depth,
            width=width,
            activation=activation,
            norm=norm,
            init=init_of[activation],
            residual=layout,
            in_features=dataset.in_features,
            out_features=dataset.num_classes,
            seed=seed,
            device=device,
            dtype=dtype,
        )
        profile = gsc_profile(net, inputs, targets, method=method, num_probes=num_probes, seed=seed)
        domain = domain_stats(net, inputs)
        last = (
            domain.at(2)
            if net.num_layers >= 2
            else dict.fromkeys(("sign_diversity", "preact_std_relative", "linear_fit_error"), float("nan"))
        )
        profiles[label], domains[label] = profile, domain
        rows.append(
            {
                "label": label,
                "activation": activation,
                "norm": norm,
                "residual": layout,
                "init": init_of[activation],
                "depth": depth,
                "width": width,
                "gsc_input": profile.input_gsc,
                "gsc_first_layer": profile.first_layer_gsc,
                "rate": profile.fit.rate,
                "r_squared": profile.fit.r_squared,
                "overflow_layer": profile.overflow_layer,
                "sign_diversity_last": last["sign_diversity"],
                "preact_std_last": last["preact_std_relative"],
                "linear_fit_error_last": last["linear_fit_error"],
            }
        )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["overflow_layer"] = table["overflow_layer"].astype("Int64")
    return SurveyResult(
        table=table,
        profiles=profiles,
        domains=domains,
        batch_size=batch_size,
        data_name=dataset.name,
        method=method,
        seed=seed,
    )
