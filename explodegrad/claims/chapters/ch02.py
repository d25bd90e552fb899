"""Chapter 02's claims: the GSC ignores rescaling, equals the perturbation gain, and fits a rate."""

from __future__ import annotations

import numpy as np

from explodegrad.claims.explosion import explodes
from explodegrad.claims.registry import claim
from explodegrad.claims.verdict import Check, all_of, compare, exact, negate


@claim(
    "02/rescaling-moves-raw-not-gsc",
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
    "02/gsc-is-perturbation-gain",
    "Nudging f_k by a small random relative amount moves the losses GSC(k, 0) times as much, relatively: "
    "the RMS gain over 32 directions is within 5% of the GSC at every layer checked.",
    "perturbation",
)
def _perturbation(nudged) -> Check:
    deviation = float(np.max(np.abs(nudged.ratio - 1.0)))
    return compare("largest |RMS gain / GSC - 1|", deviation, "<", 0.05, 0.01)


@claim(
    "02/bn-explodes-he-does-not",
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
