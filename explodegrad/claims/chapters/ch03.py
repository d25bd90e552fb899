"""Chapter 03's claims: the GSC ignores rescaling, equals the perturbation gain, fits a rate, and
the rates of normalized networks follow from the mean-field derivation."""

from __future__ import annotations

import numpy as np

from explodegrad.claims.explosion import explodes, explosion_verdict
from explodegrad.claims.registry import claim
from explodegrad.claims.thresholds import MEAN_FIELD_TOLERANCE
from explodegrad.claims.verdict import Check, all_of, compare, exact, negate
from explodegrad.studies.survey import BATCHNORM_RELU_MEAN_FIELD_RATE, mean_field_rate


@claim(
    "03/rescaling-moves-raw-not-gsc",
    "Multiplying f_k by 10 and the next layer's weights by 1/10 leaves the function and every GSC "
    "unchanged, while the raw gradient at layer k shrinks 10 times.",
    "rescaling",
)
def _rescaling(rescaled) -> Check:
    gsc_change = np.max(np.abs(rescaled.gsc_after - rescaled.gsc_before) / rescaled.gsc_before)
    k = int(np.flatnonzero(rescaled.layers == rescaled.layer)[0])
    raw_ratio = rescaled.raw_before[k] / rescaled.raw_after[k]
    return all_of(
        exact("largest relative change of GSC(k, 0)", gsc_change, 1e-9),
        exact("raw gradient ratio at layer k minus 10", abs(raw_ratio - rescaled.factor), 1e-8),
        exact("change of the mean loss", abs(rescaled.loss_after - rescaled.loss_before), 1e-12),
    )


@claim(
    "03/gsc-is-perturbation-gain",
    "Nudging f_k by a small random relative amount moves the losses GSC(k, 0) times as much, relatively: "
    "the RMS gain over 32 directions is within 5% of the GSC at every layer checked.",
    "perturbation",
)
def _perturbation(nudged) -> Check:
    deviation = float(np.max(np.abs(nudged.ratio - 1.0)))
    return compare("largest |RMS gain / GSC - 1|", deviation, "<", 0.05, 0.01)


@claim(
    "03/bn-explodes-he-does-not",
    "At the scale's depth the He-initialized ReLU network does not explode; with batch normalization "
    "it does.",
    "relu-profiles",
)
def _rate(profiles) -> Check:
    plain, batch = profiles["none"], profiles["batch"]
    return all_of(
        negate(explodes("relu/none/he", plain.fit.rate, plain.fit.r_squared)),
        explodes("relu/batch/he", batch.fit.rate, batch.fit.r_squared),
    )


#: The margin on |measured r - derived r| for the mean-field claims.
_MEAN_FIELD_MARGIN = 0.005


def _matches_derivation(label: str, measured_rate: float, activation: str, norm: str) -> Check:
    derived = mean_field_rate(activation, norm)
    return compare(
        f"{label}: |measured r {measured_rate:.3f} - derived {derived:.3f}|",
        abs(float(measured_rate) - derived),
        "<",
        MEAN_FIELD_TOLERANCE,
        _MEAN_FIELD_MARGIN,
    )


@claim(
    "03/bn-rate-derived",
    f"The derivation r^2 = E[relu'(z)^2] / Var[relu(z)] = pi / (pi - 1) gives r = 1.211 per layer for a "
    f"batch-normalized ReLU network, and the measured rate lies within {MEAN_FIELD_TOLERANCE:g} of it.",
    "relu-profiles",
)
def _bn_rate_derived(profiles) -> Check:
    derived = mean_field_rate("relu", "batch")
    return all_of(
        exact(
            "Gaussian quadrature against sqrt(pi / (pi - 1))",
            abs(derived - BATCHNORM_RELU_MEAN_FIELD_RATE),
            1e-12,
        ),
        _matches_derivation("relu/batch/he", profiles["batch"].fit.rate, "relu", "batch"),
    )


@claim(
    "03/layer-norm-rates-derived",
    f"The same derivation with layer norm's divisor E[phi(z)^2] gives r = 1 for ReLU and r = 1.085 for tanh; "
    f"the measured rates of ReLU and tanh with layer norm, and of ReLU with batch norm, lie within "
    f"{MEAN_FIELD_TOLERANCE:g} of their derived values, so layer norm makes tanh explode but not ReLU.",
    "survey",
)
def _layer_norm_rates(survey) -> Check:
    rows = {(a, n): survey.row(a, n) for a, n in (("relu", "batch"), ("relu", "layer"), ("tanh", "layer"))}
    return all_of(
        *(_matches_derivation(f"{a}/{n}", row["rate"], a, n) for (a, n), row in rows.items()),
        explosion_verdict(rows["tanh", "layer"], "tanh/layer"),
        negate(explosion_verdict(rows["relu", "layer"], "relu/layer")),
    )
