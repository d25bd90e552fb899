"""Chapter 04's claims: which popular architectures explode, batch norm's mean-field rate, what
optimizers do to the explosion, and what depth does to the training error."""

from __future__ import annotations

import numpy as np

from explodegrad.claims.explosion import explodes, explodes_in_every_seed
from explodegrad.claims.registry import EVERY_SCALE, claim
from explodegrad.claims.thresholds import (
    BATCHNORM_RELU_MEAN_FIELD_RATE,
    COLLAPSED_SIGN_DIVERSITY,
    ERROR_GAP,
    EXPLODING_RATE,
    MEAN_FIELD_TOLERANCE,
    RATE_MARGIN,
    TRAINED_ERROR,
)
from explodegrad.claims.verdict import (
    DOES_NOT_HOLD,
    HOLDS,
    Check,
    all_of,
    between,
    compare,
    count,
    negate,
    note,
)

POPULAR = [
    (activation, norm) for activation in ("relu", "tanh", "selu") for norm in ("none", "batch", "layer")
]


def _explodes(survey, activation: str, norm: str) -> Check:
    row = survey.row(activation, norm)
    return explodes(f"{activation}/{norm}", row["rate"], row["r_squared"])


@claim(
    "04/most-popular-explode",
    "Most of the nine popular architectures (ReLU, tanh, SELU with no, batch or layer normalization) "
    "have exploding gradients at initialization at depth 50.",
    "survey",
)
def _most(survey) -> Check:
    return count([_explodes(survey, a, n) for a, n in POPULAR], 5, "popular architectures explode")


@claim("04/batch-norm-explodes", "With batch normalization every activation explodes.", "survey")
def _batch(survey) -> Check:
    return all_of(*(_explodes(survey, a, "batch") for a in ("relu", "tanh", "selu")))


@claim(
    "04/bn-relu-mean-field",
    "The batch-normalized ReLU network explodes at about sqrt(pi / (pi - 1)) = 1.21 per layer, the "
    "paper's mean-field rate.",
    "survey",
)
def _mean_field(survey) -> Check:
    rate = survey.row("relu", "batch")["rate"]
    return compare(
        f"|r - {BATCHNORM_RELU_MEAN_FIELD_RATE:.3f}| of relu/batch",
        abs(rate - BATCHNORM_RELU_MEAN_FIELD_RATE),
        "<",
        MEAN_FIELD_TOLERANCE,
        0.005,
    )


@claim(
    "04/plain-relu-tanh-calm", "Without normalization the ReLU and tanh networks do not explode.", "survey"
)
def _calm(survey) -> Check:
    return all_of(*(negate(_explodes(survey, a, "none")) for a in ("relu", "tanh")))


@claim("04/layer-norm-tanh-not-relu", "Layer normalization makes tanh explode, but not ReLU.", "survey")
def _layer(survey) -> Check:
    return all_of(_explodes(survey, "tanh", "layer"), negate(_explodes(survey, "relu", "layer")))


@claim(
    "04/selu-mild",
    f"SELU explodes mildly with or without normalization: r between {EXPLODING_RATE:g} and 1.07 per layer.",
    "survey",
)
def _selu(survey) -> Check:
    checks = []
    for norm in ("none", "batch", "layer"):
        checks.append(_explodes(survey, "selu", norm))
        checks.append(
            between(f"selu/{norm} r", survey.row("selu", norm)["rate"], EXPLODING_RATE, 1.07, RATE_MARGIN)
        )
    return all_of(*checks)


@claim(
    "04/calm-relu-collapsed",
    f"The two ReLU networks that do not explode (no normalization, layer normalization) have almost no "
    f"sign diversity left at the last hidden layer (below {COLLAPSED_SIGN_DIVERSITY:g} on average over "
    f"its neurons): the typical neuron is nearly always on or always off.",
    "survey",
)
def _collapsed(survey) -> Check:
    return all_of(
        *(
            compare(
                f"relu/{norm} sign diversity at k = 2",
                survey.row("relu", norm)["sign_diversity_last"],
                "<",
                COLLAPSED_SIGN_DIVERSITY,
                0.02,
            )
            for norm in ("none", "layer")
        )
    )


@claim(
    "04/adaptive-optimizers-still-explode",
    f"After training with Adam or RMSprop the batch-normalized ReLU network still explodes in every seed: "
    f"its fitted rate stays above {EXPLODING_RATE:g} per layer and the exponential still fits.",
    "optimizers",
    scales=EVERY_SCALE,
)
def _adaptive(study) -> Check:
    return all_of(*(explodes_at_end(study, name) for name in ("adam", "rmsprop")))


def explodes_at_end(study, optimizer: str) -> Check:
    """The chapter's definition of exploding, for the trained network of every seed."""
    return explodes_in_every_seed(
        f"{optimizer} at the end",
        study.values(optimizer, "rate_end"),
        study.values(optimizer, "r_squared_end"),
    )


@claim(
    "04/sgd-lowers-but-keeps",
    f"Training with SGD moves the GSC: GSC(L, 0) ends clearly below its initial value, yet the fitted rate "
    f"stays above {EXPLODING_RATE:g} per layer in every seed.",
    "optimizers",
    scales=EVERY_SCALE,
)
def _sgd(study) -> Check:
    ratio = study.values("sgd", "gsc_end") / study.values("sgd", "gsc_start")
    return all_of(
        compare("SGD GSC(L, 0) end / start", ratio, "<", 1.0, 0.1),
        compare("SGD r at the end", study.values("sgd", "rate_end"), ">", EXPLODING_RATE, RATE_MARGIN),
    )


@claim(
    "04/adaptive-equal-steps",
    "SGD gives the first layer clearly larger relative steps than the last hidden layer (more than 1.5 "
    "times), and Adam and RMSprop take most of that tilt away: in every seed SGD's ratio of the two is more "
    "than twice theirs.",
    "optimizers",
    scales=EVERY_SCALE,
)
def _steps(study) -> Check:
    sgd = study.values("sgd", "update_ratio")
    return all_of(
        compare("sgd first-layer / k = 2 relative step", sgd, ">", 1.5, 0.2),
        *(
            compare(f"sgd's ratio over {name}'s", sgd / study.values(name, "update_ratio"), ">", 2.0, 0.2)
            for name in ("adam", "rmsprop")
        ),
    )


@claim(
    "04/sgd-first-step-follows-the-gsc",
    "SGD's first update gives the first layer a relative step more than 10 times that of layer k = 2 in "
    "every seed at depth 20, and more than 1,000 times at depth 50.",
    "weight-growth",
)
def _first_step(growth) -> Check:
    shallow, deep = growth.depths[0], growth.depths[-1]
    return all_of(
        compare(f"d{shallow} first-step ratio", growth.values(shallow, "first_step_ratio"), ">", 10.0, 2.0),
        compare(f"d{deep} first-step ratio", growth.values(deep, "first_step_ratio"), ">", 1000.0, 200.0),
    )


@claim(
    "04/deep-explosion-inflates-first-layer",
    "At depth 50 the first steps inflate the first layer's weights: within the first 60 steps their norm "
    "grows more than 10-fold in every seed, while layer k = 2's changes by less than 1%; at depth 20 the "
    "first layer's norm grows by less than a factor of 2.",
    "weight-growth",
)
def _inflates(growth) -> Check:
    shallow, deep = growth.depths[0], growth.depths[-1]
    return all_of(
        compare(
            f"d{deep} first-layer norm growth", growth.values(deep, "first_layer_growth"), ">", 10.0, 2.0
        ),
        compare(f"d{deep} layer-2 norm growth", growth.values(deep, "layer_2_growth"), "<", 1.01, 0.002),
        compare(
            f"d{shallow} first-layer norm growth", growth.values(shallow, "first_layer_growth"), "<", 2.0, 0.1
        ),
    )


@claim(
    "04/inflated-layer-takes-small-steps",
    "Once the first updates have inflated its weights, the first layer takes small relative steps: at depth "
    "50, by step 60, its relative step is below layer k = 2's in every seed.",
    "weight-growth",
)
def _small_steps(growth) -> Check:
    deep = growth.depths[-1]
    return compare(f"d{deep} step-60 ratio", growth.values(deep, "last_step_ratio"), "<", 1.0, 0.1)


def _deepest(study) -> int:
    return int(study.table["depth"].max())


@claim(
    "04/shallow-all-train",
    f"At the two smallest depths every architecture of the depth study fits the training set (error below "
    f"{TRAINED_ERROR:g}).",
    "depth-errors",
)
def _shallow(study) -> Check:
    depths = sorted(set(int(d) for d in study.table["depth"]))[:2]
    return all_of(
        *(
            compare(
                f"{architecture} d{depth} training error",
                study.values(architecture, depth, "final_train_error"),
                "<",
                TRAINED_ERROR,
                0.02,
            )
            for architecture in dict.fromkeys(study.table["architecture"])
            for depth in depths
        )
    )


@claim(
    "04/exploding-train-worse-deep",
    "At the largest depth of the depth study (200 steps, each run at the better of two learning rates) both "
    "exploding architectures end with a higher training error than tanh without normalization, in every "
    "seed.",
    "depth-errors",
)
def _deep(study) -> Check:
    depth = _deepest(study)
    calm = study.values("tanh/none", depth, "final_train_error")
    # Every seed of the exploding architecture against the best-off seed of the calm one.
    return all_of(
        *(
            compare(
                f"{name} training error minus the largest of tanh/none at depth {depth}",
                study.values(name, depth, "final_train_error") - calm.max(),
                ">",
                0.0,
                0.03,
            )
            for name in ("relu/batch", "tanh/layer")
        )
    )


# ----------------------------------------------------------------------------- the depth limit
# Judged at the evidence scale on the stored study (depth 10, 30, 50, width 100, CIFAR-10's first
# 500 training examples, every rate of a widened grid, 3 seeds).

EVIDENCE_ONLY = ("evidence",)


def _plain_by_explosion(study, depth: int) -> tuple[list[str], list[str], list[str]]:
    """The plain architectures at ``depth`` that explode at initialization in every seed, those
    that explode in none, and those in between (by the one definition of exploding)."""
    exploding, calm, unclear = [], [], []
    for label in dict.fromkeys(study.table["architecture"]):
        if label.endswith("/res"):
            continue
        check = explodes_in_every_seed(
            label, study.values(label, depth, "rate_init"), study.values(label, depth, "r_squared_init")
        )
        {HOLDS: exploding, DOES_NOT_HOLD: calm}.get(check.verdict, unclear).append(label)
    return exploding, calm, unclear


def _named(check: Check, exploding: list[str], calm: list[str], unclear: list[str]) -> Check:
    text = f"exploding at init: {', '.join(exploding) or 'none'}; not exploding: {', '.join(calm) or 'none'}"
    if unclear:
        text += f"; unclear (left out): {', '.join(unclear)}"
    return note(check, text)


@claim(
    "04/depth-limit-shallow-trains",
    f"At depth 10 every architecture of the depth-limit study fits its training examples (training error "
    f"below {TRAINED_ERROR:g}) at its best learning rate, in every seed.",
    "depth-limit",
    scales=EVIDENCE_ONLY,
)
def _limit_shallow(study) -> Check:
    depth = int(study.table["depth"].min())
    return all_of(
        *(
            compare(
                f"{label} d{depth} training error",
                study.values(label, depth, "final_train_error"),
                "<",
                TRAINED_ERROR,
                0.02,
            )
            for label in dict.fromkeys(study.table["architecture"])
        )
    )


@claim(
    "04/depth-limit-exploding-degrade",
    f"Every plain architecture that explodes at initialization at depth 50 ends with a training error at "
    f"least {ERROR_GAP:g} higher at depth 50 than at depth 10, in every seed, even at its own best "
    f"learning rate.",
    "depth-limit",
    scales=EVIDENCE_ONLY,
)
def _limit_degrade(study) -> Check:
    deep, shallow = _deepest(study), int(study.table["depth"].min())
    exploding, calm, unclear = _plain_by_explosion(study, deep)
    if not exploding:
        raise ValueError("no plain architecture explodes at initialization in every seed")
    check = all_of(
        *(
            compare(
                f"{label} training error d{deep} minus d{shallow}",
                study.values(label, deep, "final_train_error")
                - study.values(label, shallow, "final_train_error"),
                ">",
                ERROR_GAP,
                0.02,
            )
            for label in exploding
        )
    )
    return _named(check, exploding, calm, unclear)


@claim(
    "04/depth-limit-calm-train-deep",
    f"Every plain architecture that does not explode at initialization still fits its training examples at "
    f"depth 50 (training error below {TRAINED_ERROR:g}), in every seed.",
    "depth-limit",
    scales=EVIDENCE_ONLY,
)
def _limit_calm(study) -> Check:
    deep = _deepest(study)
    exploding, calm, unclear = _plain_by_explosion(study, deep)
    if not calm:
        raise ValueError("every plain architecture explodes (or is unclear) at initialization")
    check = all_of(
        *(
            compare(
                f"{label} d{deep} training error",
                study.values(label, deep, "final_train_error"),
                "<",
                TRAINED_ERROR,
                0.02,
            )
            for label in calm
        )
    )
    return _named(check, exploding, calm, unclear)


@claim(
    "04/depth-limit-exploding-worse",
    "At depth 50 every plain architecture that explodes at initialization ends with a higher training error "
    "than every plain one that does not: each seed of an exploding one against the worst seed of each calm "
    "one.",
    "depth-limit",
    scales=EVIDENCE_ONLY,
)
def _limit_worse(study) -> Check:
    deep = _deepest(study)
    exploding, calm, unclear = _plain_by_explosion(study, deep)
    if not exploding or not calm:
        raise ValueError("the study needs plain architectures that explode and plain ones that do not")
    worst_calm = max(float(study.values(label, deep, "final_train_error").max()) for label in calm)
    check = all_of(
        *(
            compare(
                f"{label} d{deep} training error minus the worst non-exploding one",
                study.values(label, deep, "final_train_error") - worst_calm,
                ">",
                0.0,
                0.02,
            )
            for label in exploding
        )
    )
    return _named(check, exploding, calm, unclear)


@claim(
    "04/depth-limit-resnets-rescue",
    "At depth 50 the ResNet version of each architecture that explodes ends with a lower training error than "
    "the plain version, seed by seed.",
    "depth-limit",
    scales=EVIDENCE_ONLY,
)
def _limit_resnets(study) -> Check:
    deep = _deepest(study)
    labels = set(study.table["architecture"])
    exploding, calm, unclear = _plain_by_explosion(study, deep)
    paired = [label for label in exploding if f"{label}/res" in labels]
    if not paired:
        raise ValueError("no exploding plain architecture has a residual version in the study")
    check = all_of(
        *(
            compare(
                f"{label} d{deep} training error, plain minus ResNet",
                study.values(label, deep, "final_train_error")
                - study.values(f"{label}/res", deep, "final_train_error"),
                ">",
                0.0,
                0.02,
            )
            for label in paired
        )
    )
    return _named(check, exploding, calm, unclear)


@claim(
    "04/depth-limit-error-grows-with-gsc",
    "Among the plain architectures that explode, the larger the GSC(L, 0) at initialization at depth 50, the "
    "higher the training error at depth 50 (medians over the seeds, each step up by more than 0.02). A "
    "pattern first seen in the stored CIFAR-10 study, stated as a claim so that every other run (the "
    "digits, a rerun, a GPU) tests it.",
    "depth-limit",
    scales=EVIDENCE_ONLY,
)
def _limit_gsc_order(study) -> Check:
    deep = _deepest(study)
    exploding, calm, unclear = _plain_by_explosion(study, deep)
    if len(exploding) < 2:
        raise ValueError("fewer than two plain architectures explode in every seed")
    by_gsc = sorted(exploding, key=lambda label: float(np.median(study.values(label, deep, "gsc_init"))))
    errors = [float(np.median(study.values(label, deep, "final_train_error"))) for label in by_gsc]
    check = all_of(
        *(
            compare(f"median training error {high} minus {low}", errors[i + 1] - errors[i], ">", 0.0, 0.02)
            for i, (low, high) in enumerate(zip(by_gsc, by_gsc[1:]))
        )
    )
    return _named(check, exploding, calm, unclear)


@claim(
    "04/optimizers-calm-stays-calm",
    "The ReLU network without normalization, which does not explode at initialization, does not explode "
    "after training either, with SGD, Adam or RMSprop at its own tuned rate, in any seed (depth 50, "
    "CIFAR-10).",
    "optimizers-calm",
    scales=EVIDENCE_ONLY,
)
def _calm_stays(study) -> Check:
    first = study.optimizers[0]  # every optimizer starts from the same weights in a seed
    at_init = explodes_in_every_seed(
        "at initialization", study.values(first, "rate_start"), study.values(first, "r_squared_start")
    )
    return all_of(negate(at_init), *(negate(explodes_at_end(study, name)) for name in study.optimizers))
