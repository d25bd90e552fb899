"""Chapter 05's claims: the collapsing domain and its tradeoff with exploding gradients."""

from __future__ import annotations

import numpy as np

from explodegrad.claims.chapters.ch04 import POPULAR
from explodegrad.claims.explosion import explodes
from explodegrad.claims.registry import claim
from explodegrad.claims.thresholds import (
    COLLAPSED_LINEAR_FIT_ERROR,
    COLLAPSED_SIGN_DIVERSITY,
    HEALTHY_SIGN_DIVERSITY,
)
from explodegrad.claims.verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, Check, all_of, boolean, compare


@claim(
    "05/pseudo-linear-toys",
    "tanh fed pre-activations in [-0.1, 0.1] is affine to within 1 - R^2 < 1e-4, and a ReLU fed only one "
    "sign is exactly affine; a ReLU fed both signs evenly is not (1 - R^2 = 0.2).",
    "pseudo-linearity",
)
def _toys(errors) -> Check:
    return all_of(
        compare("tanh [-0.1, 0.1] 1 - R^2", errors["tanh [-0.1, 0.1]"], "<", 1e-4, 0.0),
        compare(
            "relu one-signed 1 - R^2",
            max(errors["relu [0.5, 2.5]"], errors["relu [-2.5, -0.5]"]),
            "<",
            1e-12,
            0.0,
        ),
        compare("relu [-1, 1] 1 - R^2", errors["relu [-1, 1]"], ">", 0.15, 0.01),
    )


@claim(
    "05/signs-kept",
    f"Batch normalization keeps the sign diversity of the last hidden layer above {HEALTHY_SIGN_DIVERSITY:g} "
    f"(0.5 is half and half) for every activation, and tanh and SELU keep it above "
    f"{HEALTHY_SIGN_DIVERSITY:g} with any normalization.",
    "survey",
)
def _signs(survey) -> Check:
    keep = [(a, n) for a, n in POPULAR if n == "batch" or a in ("tanh", "selu")]
    return all_of(
        *(
            compare(
                f"{a}/{n} sign diversity at k = 2",
                survey.row(a, n)["sign_diversity_last"],
                ">",
                HEALTHY_SIGN_DIVERSITY,
                0.02,
            )
            for a, n in keep
        )
    )


def _collapsed(survey, activation: str, norm: str) -> Check:
    row = survey.row(activation, norm)
    signs, fit = row["sign_diversity_last"], row["linear_fit_error_last"]
    line = f"{activation}/{norm}: sign diversity {signs:.3f}, 1 - R^2 {fit:.3f}"
    clearly = signs < COLLAPSED_SIGN_DIVERSITY * 0.8 or fit < COLLAPSED_LINEAR_FIT_ERROR * 0.8
    clearly_not = signs > COLLAPSED_SIGN_DIVERSITY * 1.2 and fit > COLLAPSED_LINEAR_FIT_ERROR * 1.2
    verdict = HOLDS if clearly else DOES_NOT_HOLD if clearly_not else INCONCLUSIVE
    return Check(verdict, line, {f"{activation}/{norm}": (signs, fit)})


@claim(
    "05/tradeoff",
    f"No popular architecture escapes both pathologies: each one that does not explode has a collapsed "
    f"domain at its last hidden layer (sign diversity below {COLLAPSED_SIGN_DIVERSITY:g} or 1 - R^2 below "
    f"{COLLAPSED_LINEAR_FIT_ERROR:g}).",
    "survey",
)
def _tradeoff(survey) -> Check:
    checks = []
    for activation, norm in POPULAR:
        row = survey.row(activation, norm)
        exploding = explodes(f"{activation}/{norm}", row["rate"], row["r_squared"])
        if exploding.verdict == HOLDS:
            continue
        collapsed = _collapsed(survey, activation, norm)
        if exploding.verdict == INCONCLUSIVE and collapsed.verdict != HOLDS:
            collapsed = Check(INCONCLUSIVE, collapsed.line + " (explosion inconclusive)", collapsed.values)
        checks.append(collapsed)
    return all_of(*checks) if checks else Check(HOLDS, "every popular architecture explodes")


@claim(
    "05/bn-relu-most-nonlinear",
    "ReLU with batch normalization uses the most nonlinearity of the nine (the largest 1 - R^2 at the last "
    "hidden layer) and explodes fastest (the largest rate r).",
    "survey",
)
def _bn_relu(survey) -> Check:
    table = survey.table[~survey.table["residual"]]
    by_fit = table.sort_values("linear_fit_error_last", ascending=False)["label"].tolist()
    rates = np.sort(table["rate"].to_numpy(dtype=float))
    by_rate = table.sort_values("rate", ascending=False)["label"].tolist()
    return all_of(
        boolean("relu/batch has the largest 1 - R^2", by_fit[0] == "relu/batch", f"largest: {by_fit[0]}"),
        boolean("relu/batch has the largest rate", by_rate[0] == "relu/batch", f"largest: {by_rate[0]}"),
        compare("largest rate minus the next", float(rates[-1] - rates[-2]), ">", 0.05, 0.01),
    )


@claim(
    "05/level-is-loss-factor",
    "tanh without normalization has the smallest GSC from the input to the loss of the nine, yet it does "
    "not vanish with depth: its rate r is within 0.01 of 1, and its level is mostly the loss's own factor "
    "GSC(1, 0) (tiny logits), which the layers between change by less than a factor 2.",
    "survey",
)
def _level_is_loss_factor(survey) -> Check:
    table = survey.table[~survey.table["residual"]]
    smallest = table.sort_values("gsc_input")["label"].iloc[0]
    profile = survey.profiles["tanh/none"]
    loss_factor = profile.gsc_at(1)
    return all_of(
        boolean("tanh/none has the smallest GSC(input, 0)", smallest == "tanh/none", f"smallest: {smallest}"),
        compare("tanh/none |r - 1|", abs(profile.rate - 1.0), "<", 0.01, 0.002),
        compare(
            f"tanh/none GSC(input, 0) {profile.input_gsc:.3f} / GSC(1, 0) {loss_factor:.3f}",
            profile.input_gsc / loss_factor,
            "<",
            2.0,
            0.1,
        ),
    )


@claim(
    "05/tanh-domain-shrinks",
    "Without normalization tanh's domain collapses in size, not in shape: the absolute pre-activation "
    "spread at the last hidden layer is below 0.15, more than 5 times smaller than at the first hidden "
    "layer, while the spread relative to the layer's RMS stays above 0.8.",
    "survey",
)
def _tanh_shrinks(survey) -> Check:
    stats = survey.domains["tanh/none"]
    first, last = stats.at(int(stats.layers[-1])), stats.at(2)
    return all_of(
        compare("tanh/none absolute spread at k = 2", last["preact_std"], "<", 0.15, 0.01),
        compare(
            "tanh/none absolute spread, first hidden layer / last",
            first["preact_std"] / last["preact_std"],
            ">",
            5.0,
            0.5,
        ),
        compare("tanh/none relative spread at k = 2", last["preact_std_relative"], ">", 0.8, 0.02),
    )
