"""Chapter 07's claims: path lengths at initialization, effective depth after training, Taylor."""

from __future__ import annotations

import numpy as np

from explodegrad.claims.registry import claim
from explodegrad.claims.verdict import Check, all_of, compare, rank_correlation
from explodegrad.studies.effective_depth import path_weight_layers

PAIRS = (("relu/batch", "relu/batch/res"), ("tanh/none", "tanh/none/res"))


@claim(
    "07/resnet-short-paths",
    "At initialization the gradient of the batch-normalized ReLU ResNet travels along clearly shorter paths, "
    "as a share of the longest path it could take (its blocks; the plain twin's layers), than its plain "
    "twin's (mean lambda / longest lambda at least 0.1 lower).",
    "paths-at-init",
)
def _paths(at_init) -> Check:
    relu = at_init["relu/batch"].mean_share - at_init["relu/batch/res"].mean_share
    return compare("relu/batch minus its ResNet, mean lambda / longest lambda", relu, ">", 0.1, 0.03)


@claim(
    "07/tanh-paths-short-without-skips",
    "Even without skips, the gradient of the plain tanh network travels along clearly shorter paths, "
    "as a share of the longest path it could take, than the plain batch-normalized ReLU network's (mean "
    "lambda / longest lambda at least 0.1 lower).",
    "paths-at-init",
)
def _tanh_plain(at_init) -> Check:
    plain = at_init["relu/batch"].mean_share - at_init["tanh/none"].mean_share
    return compare(
        "plain relu/batch minus plain tanh/none, mean lambda / longest lambda", plain, ">", 0.1, 0.03
    )


@claim(
    "07/tanh-skips-matter-deeper",
    "At initialization, for tanh without normalization, the skips shorten the paths (as a share of the "
    "longest path each network could take) more in a deeper network: from depth 20 to 50 the plain "
    "network's mean lambda / longest lambda rises, its ResNet's falls, and the ResNet's lead (plain minus "
    "ResNet) grows by at least 0.1.",
    "paths-by-depth",
)
def _tanh_by_depth(by_depth) -> Check:
    shallow, deep = min(by_depth), max(by_depth)
    lead = {d: by_depth[d]["tanh/none"] - by_depth[d]["tanh/none/res"] for d in (shallow, deep)}
    return all_of(
        compare(
            f"plain tanh/none, mean lambda / longest lambda at depth {deep} minus at {shallow}",
            by_depth[deep]["tanh/none"] - by_depth[shallow]["tanh/none"],
            ">",
            0.0,
            0.02,
        ),
        compare(
            f"tanh/none/res, mean lambda / longest lambda at depth {shallow} minus at {deep}",
            by_depth[shallow]["tanh/none/res"] - by_depth[deep]["tanh/none/res"],
            ">",
            0.0,
            0.02,
        ),
        compare(
            f"the ResNet's lead at depth {deep} minus at {shallow}",
            lead[deep] - lead[shallow],
            ">",
            0.1,
            0.03,
        ),
    )


@claim(
    "07/trained-effective-depth-below-nominal",
    "After training, every network's effective depth (skip = the layer at initialization) is well below its "
    "number of layers: at most three quarters of L.",
    "effective-depth",
)
def _below(study) -> Check:
    checks = []
    for label in study.labels:
        layers = study.values(label, "num_layers")
        checks.append(
            compare(
                f"{label} effective depth / L",
                study.values(label, "depth_since_init_final") / layers,
                "<",
                0.75,
                0.05,
            )
        )
    return all_of(*checks)


@claim(
    "07/bn-relu-breaks-sooner",
    "In the Taylor experiment the trained plain batch-normalized ReLU network breaks after fewer replaced "
    "weight layers than its ResNet.",
    "effective-depth",
)
def _taylor(study) -> Check:
    plain = study.values("relu/batch", "taylor_break_linear_layers")
    resnet = study.values("relu/batch/res", "taylor_break_linear_layers")
    # A network that never broke survives every layer: count it as its whole depth plus one.
    plain = np.where(np.isnan(plain), study.values("relu/batch", "depth") + 1, plain)
    resnet = np.where(np.isnan(resnet), study.values("relu/batch/res", "depth") + 1, resnet)
    return compare("ResNet minus plain, weight layers replaced at the break", resnet - plain, ">", 1.0, 0.5)


@claim(
    "07/deeper-breaks-sooner",
    "In both pairs (batch-normalized ReLU, tanh), counting in weight layers, the network with the greater "
    "effective depth after training is the one that breaks sooner in the Taylor experiment.",
    "effective-depth",
)
def _pairing(study) -> Check:
    checks = []
    for plain, resnet in PAIRS:
        deeper = _plain_minus_resnet_depth(study, plain, resnet)
        breaks = []
        for label in (plain, resnet):
            values = study.values(label, "taylor_break_linear_layers")
            breaks.append(np.where(np.isnan(values), study.values(label, "depth") + 1, values))
        # Positive when the deeper one breaks first; seeds whose order of depths is open predict nothing.
        agreement = (deeper * (breaks[1] - breaks[0]))[deeper != 0]
        open_seeds = int(np.sum(deeper == 0))
        name = (
            f"{plain} vs {resnet}: layers the shallower one outlasts the deeper ({open_seeds} seeds left "
            "out: their depths tie, or their order depends on which units the ResNet's lambda counts)"
        )
        checks.append(compare(name, agreement, ">", 0.0, 0.5))  # no seed left: inconclusive
    return all_of(*checks)


def _plain_minus_resnet_depth(study, plain: str, resnet: str) -> np.ndarray:
    """Per seed +1 when the plain network's effective depth (skip = initial layer) is more
    weight layers than its ResNet's can be, -1 when fewer than the ResNet's can be, 0 when
    the ResNet's range (:func:`path_weight_layers`: its lambda units may include the input
    layer and readout, one weight layer each, or be all blocks) holds it."""
    plain_layers = study.values(plain, "depth_since_init_final")
    units = study.values(resnet, "depth_since_init_final")
    blocks = study.values(resnet, "num_layers") - 2
    block_depth = (study.values(resnet, "depth") - 2) // blocks
    ranges = [path_weight_layers(int(u), int(b), int(n)) for u, b, n in zip(units, block_depth, blocks)]
    fewest, most = (np.array(side, dtype=float) for side in zip(*ranges))
    return np.where(plain_layers > most, 1.0, np.where(plain_layers < fewest, -1.0, 0.0))


# Judged at the evidence scale on the stored trained-depth study: the depth-50 networks of the
# stored CIFAR-10 depth-limit study, retrained at their chosen rates (3 seeds), in weight layers.

EVIDENCE_ONLY = ("evidence",)
#: The plain architectures of the stored study with a residual twin.
TWINS = (("relu/batch", "relu/batch/res"), ("tanh/layer", "tanh/layer/res"), ("selu/none", "selu/none/res"))


def _breaks(study, label: str) -> np.ndarray:
    """Weight layers replaced when the network first breaks; a network that never broke survives
    every layer: counted as its depth plus one."""
    values = study.values(label, "taylor_break_linear_layers")
    return np.where(np.isnan(values), study.values(label, "depth") + 1, values)


@claim(
    "07/trained-depth-below-nominal",
    "After training at depth 50, every network's effective depth (skip = the layer at initialization, in "
    "weight layers) is at most three quarters of its 50 layers, in every seed.",
    "trained-depth",
    scales=EVIDENCE_ONLY,
)
def _trained_below(study) -> Check:
    return all_of(
        *(
            compare(
                f"{label} effective depth / layers",
                study.values(label, "depth_since_init_layers") / study.values(label, "depth"),
                "<",
                0.75,
                0.05,
            )
            for label in study.labels
        )
    )


@claim(
    "07/trained-depth-resnets-shallower",
    "After training, each ResNet's effective depth in weight layers is below its plain twin's "
    "(batch-normalized ReLU, layer-normalized tanh, SELU), by more than 2 layers in every seed.",
    "trained-depth",
    scales=EVIDENCE_ONLY,
)
def _resnets_shallower(study) -> Check:
    return all_of(
        *(
            compare(
                f"{plain} minus {resnet}, effective depth (layers)",
                study.values(plain, "depth_since_init_layers")
                - study.values(resnet, "depth_since_init_layers"),
                ">",
                2.0,
                1.0,
            )
            for plain, resnet in TWINS
        )
    )


@claim(
    "07/trained-depth-resnets-survive-longer",
    "In the Taylor experiment each trained ResNet survives the replacement of more weight layers than its "
    "plain twin (more than 2 layers more, in every seed).",
    "trained-depth",
    scales=EVIDENCE_ONLY,
)
def _resnets_survive(study) -> Check:
    return all_of(
        *(
            compare(
                f"{resnet} minus {plain}, weight layers replaced at the break",
                _breaks(study, resnet) - _breaks(study, plain),
                ">",
                2.0,
                1.0,
            )
            for plain, resnet in TWINS
        )
    )


@claim(
    "07/trained-depth-deeper-breaks-sooner",
    "Across the trained depth-50 networks, the greater the effective depth, the sooner the network breaks "
    "in the Taylor experiment: the rank correlation of the two (medians over the seeds, in weight layers) "
    "is below -0.5.",
    "trained-depth",
    scales=EVIDENCE_ONLY,
)
def _deeper_sooner(study) -> Check:
    depths = [float(np.median(study.values(label, "depth_since_init_layers"))) for label in study.labels]
    breaks = [float(np.median(_breaks(study, label))) for label in study.labels]
    return compare(
        "Spearman(effective depth, weight layers replaced at the break)",
        rank_correlation(depths, breaks),
        "<",
        -0.5,
        0.1,
    )
