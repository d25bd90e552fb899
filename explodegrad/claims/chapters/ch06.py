"""Chapter 06's claims: the Pythagorean dilution of a residual block, and ResNets against plain."""

from __future__ import annotations

import math

import numpy as np

from explodegrad.claims.chapters.ch04 import POPULAR
from explodegrad.claims.explosion import explodes
from explodegrad.claims.registry import claim
from explodegrad.claims.thresholds import BATCHNORM_RELU_MEAN_FIELD_RATE, FAR_LESS_LOG_RATE_RATIO
from explodegrad.claims.verdict import HOLDS, Check, all_of, boolean, compare, rank_correlation


@claim(
    "06/pythagorean-predicts",
    "At initialization the measured GSC of every residual block lies within 10% of the Pythagorean "
    "prediction sqrt((k^2 + GSC_r^2) / (k^2 + 1)).",
    "dilution",
)
def _prediction(result) -> Check:
    error = np.abs(result.block_gsc - result.predicted_block_gsc) / result.predicted_block_gsc
    return compare(
        "largest relative gap between block GSC and prediction", float(np.max(error)), "<", 0.1, 0.02
    )


@claim(
    "06/residual-orthogonal",
    "At initialization each block's residual is nearly orthogonal to its input (|cos| below 0.15), the "
    "assumption the prediction rests on.",
    "dilution",
)
def _orthogonal(result) -> Check:
    return compare("largest |cos(x, r(x))|", float(np.max(np.abs(result.cosine))), "<", 0.15, 0.03)


@claim(
    "06/branch-explodes-block-does-not",
    "The typical batch-normalized ReLU branch has a GSC well above its block's (the median branch GSC is "
    "more than 10% above the median block GSC), while every block's GSC stays within 25% of 1.",
    "dilution",
)
def _branch(result) -> Check:
    typical = float(np.median(result.residual_gsc) / np.median(result.block_gsc))
    return all_of(
        compare("median branch GSC / median block GSC", typical, ">", 1.1, 0.03),
        compare("largest |block GSC - 1|", float(np.max(np.abs(result.block_gsc - 1.0))), "<", 0.25, 0.03),
    )


@claim(
    "06/branch-median-mean-field",
    "The median branch GSC lies within 10% of chapter 03's mean-field value for two batch-normalized ReLU "
    "layers, pi / (pi - 1) = 1.47, and the lowest branch GSC is the first block's, fed the first layer's "
    "output rather than a sum of residuals.",
    "dilution",
)
def _branch_median(result) -> Check:
    two_layers = BATCHNORM_RELU_MEAN_FIELD_RATE**2
    branch = np.asarray(result.residual_gsc, dtype=float)  # network order, input to output
    median = float(np.median(branch))
    return all_of(
        compare(
            f"|median branch GSC {median:.3f} / {two_layers:.3f} - 1|",
            abs(median / two_layers - 1.0),
            "<",
            0.1,
            0.02,
        ),
        boolean(
            "the first block has the lowest branch GSC",
            int(np.argmin(branch)) == 0,
            f"range {branch.min():.3f} to {branch.max():.3f}",
        ),
    )


@claim(
    "06/dilution-grows-to-output",
    "The skip-to-residual ratio k = ||x|| / ||r(x)|| grows from the first block to the last (more than "
    "twice as large at the last block, and nearly in rank order with the block's position: a rank "
    "correlation above 0.8): blocks near the output are diluted most.",
    "dilution",
)
def _growth(result) -> Check:
    ratios = np.asarray(result.skip_to_residual, dtype=float)  # network order, input to output
    positions = np.arange(len(ratios), dtype=float)
    spearman = rank_correlation(positions, ratios)
    return all_of(
        compare("k of the last block / k of the first", float(ratios[-1] / ratios[0]), ">", 2.0, 0.2),
        compare("rank correlation of k with the block's position", spearman, ">", 0.8, 0.05),
    )


def _per_layer_log_rate(row: dict, residual: bool) -> float:
    rate = float(row["rate"])
    return math.log(rate) / (2.0 if residual else 1.0)  # a block holds two weight layers


@claim(
    "06/resnets-explode-far-less",
    f"Where a plain network explodes, its ResNet explodes far less: the ResNet's log-rate per weight layer "
    f"is at most {FAR_LESS_LOG_RATE_RATIO:g} of the plain network's.",
    "survey",
)
def _far_less(survey) -> Check:
    checks = []
    for activation, norm in POPULAR:
        plain = survey.row(activation, norm)
        if explodes("plain", plain["rate"], plain["r_squared"]).verdict != HOLDS:
            continue
        resnet = survey.row(activation, norm, residual=True)
        ratio = _per_layer_log_rate(resnet, True) / _per_layer_log_rate(plain, False)
        checks.append(
            compare(
                f"{activation}/{norm} ResNet / plain log-rate per layer",
                ratio,
                "<",
                FAR_LESS_LOG_RATE_RATIO,
                0.05,
            )
        )
    return all_of(*checks)


@claim(
    "06/skip-raises-calm-rates",
    "Where the plain network does not explode, the skip lowers no rate per weight layer by more than 0.005: "
    "tanh without normalization goes from below 1 to above 1 (by more than 0.005), and ReLU without "
    "normalization and with layer norm stay within 0.005 of their plain rate.",
    "survey",
)
def _calm_rates(survey) -> Check:
    def resnet_rate(activation: str, norm: str) -> float:
        return math.exp(_per_layer_log_rate(survey.row(activation, norm, residual=True), True))

    def change(activation: str, norm: str) -> float:
        return resnet_rate(activation, norm) - float(survey.row(activation, norm)["rate"])

    return all_of(
        compare("tanh/none per-layer rate, ResNet minus plain", change("tanh", "none"), ">", 0.005, 0.002),
        compare("tanh/none plain rate", float(survey.row("tanh", "none")["rate"]), "<", 1.0, 0.001),
        compare("tanh/none ResNet per-layer rate", resnet_rate("tanh", "none"), ">", 1.0, 0.001),
        *(
            compare(f"{a}/{n} |per-layer rate, ResNet minus plain|", abs(change(a, n)), "<", 0.005, 0.002)
            for a, n in (("relu", "none"), ("relu", "layer"))
        ),
    )


@claim(
    "06/resnet-loss-factor-larger",
    "Every ResNet's loss factor GSC(1, 0) is larger than its plain twin's, which lifts its level "
    "GSC(input, 0) whatever its rate.",
    "survey",
)
def _loss_factor(survey) -> Check:
    ratios = {
        f"{a}/{n}": survey.profiles[f"{a}/{n}/res"].gsc_at(1) / survey.profiles[f"{a}/{n}"].gsc_at(1)
        for a, n in POPULAR
    }
    smallest = min(ratios, key=ratios.get)
    return compare(f"smallest ResNet / plain GSC(1, 0) ({smallest})", float(ratios[smallest]), ">", 1.0, 0.05)


@claim(
    "06/resnets-near-one",
    "Every ResNet's GSC from the input to the loss stays within a factor 4 of 1, whether its plain twin "
    "explodes (a level up to thousands) or has a level below 1 without exploding (down to 0.08).",
    "survey",
)
def _near_one(survey) -> Check:
    table = survey.table[survey.table["residual"]]
    worst = float(np.max(np.abs(np.log10(table["gsc_input"].to_numpy(dtype=float)))))
    return compare("largest |log10 GSC(input, 0)| of the ResNets", worst, "<", math.log10(4.0), 0.05)
