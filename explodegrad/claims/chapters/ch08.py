"""Chapter 08's claims: the orthogonal initial state, width against depth, and the remedies table."""

from __future__ import annotations

import numpy as np

from explodegrad.claims.chapters.ch04 import explodes_at_end
from explodegrad.claims.registry import EVERY_SCALE, claim
from explodegrad.claims.thresholds import ERROR_GAP
from explodegrad.claims.verdict import Check, all_of, compare, exact

LOOKS_LINEAR, HE, ORTHOGONAL_TANH = "relu/none/looks_linear", "relu/none/he", "tanh/none/orthogonal"


def _steps(result, name: str) -> np.ndarray:
    """Steps to the target error per seed; a run that never got there counts as one step past the end."""
    values = result.values(name, "steps_to_target")
    never = max(int(h.steps[-1]) for h in result.histories.values()) + 1
    return np.where(np.isnan(values), never, values)


@claim(
    "08/looks-linear-starts-at-one",
    "The looks-linear ReLU network starts with GSC(L, 2) = 1 and rate r = 1 exactly: no explosion at any "
    "depth.",
    "orthogonal",
)
def _start(result) -> Check:
    gsc = result.values(LOOKS_LINEAR, "hidden_gsc_init")
    rate = result.values(LOOKS_LINEAR, "rate_init")
    return all_of(
        exact("largest |GSC(L, 2) - 1| at step 0", float(np.max(np.abs(gsc - 1))), 1e-6),
        exact("largest |r - 1| at step 0", float(np.max(np.abs(rate - 1))), 1e-6),
    )


@claim(
    "08/orthogonal-trains-faster",
    "Both orthogonal starts (looks-linear ReLU, orthogonal tanh) reach training error 0.1 in fewer steps "
    "than "
    "He initialization.",
    "orthogonal",
)
def _faster(result) -> Check:
    he = _steps(result, HE)
    return all_of(
        *(
            compare(f"He minus {name} steps to error 0.1", he - _steps(result, name), ">", 0.0, 5.0)
            for name in (LOOKS_LINEAR, ORTHOGONAL_TANH)
        )
    )


@claim(
    "08/orthogonal-state-is-left",
    "Training moves the looks-linear network away from the orthogonal state: at the end its GSC(L, 2) "
    "differs "
    "from 1 by more than 0.1.",
    "orthogonal",
)
def _left(result) -> Check:
    return compare(
        "|GSC(L, 2) - 1| of looks-linear at the end",
        np.abs(result.values(LOOKS_LINEAR, "hidden_gsc_final") - 1.0),
        ">",
        0.1,
        0.03,
    )


@claim(
    "08/width-beats-depth",
    f"At the same parameter budget the deepest, narrowest batch-normalized ReLU network ends with a training "
    f"error at least {ERROR_GAP:g} above the shallowest, widest one, each at its own best learning rate.",
    "width-depth",
)
def _width(result) -> Check:
    deep, shallow = max(result.depths), min(result.depths)
    gap = result.values(deep, "final_train_error") - result.values(shallow, "final_train_error")
    return compare(f"depth {deep} minus depth {shallow} training error", gap, ">", ERROR_GAP, 0.03)


@claim(
    "08/batch-norm-tradeoff",
    "Batch normalization is a remedy for the collapsing domain (more sign diversity and more nonlinearity at "
    "the last hidden layer of a depth-50 ReLU network, chapter 04's survey) and the cause of exploding "
    "gradients (a GSC over 100 times larger).",
    "survey",
)
def _batch(survey) -> Check:
    plain, normed = survey.row("relu", "none"), survey.row("relu", "batch")
    return all_of(
        compare(
            "sign diversity with / without",
            normed["sign_diversity_last"] / plain["sign_diversity_last"],
            ">",
            2.0,
            0.2,
        ),
        compare(
            "1 - R^2 with / without",
            normed["linear_fit_error_last"] / plain["linear_fit_error_last"],
            ">",
            2.0,
            0.2,
        ),
        compare("GSC(input, 0) with / without", normed["gsc_input"] / plain["gsc_input"], ">", 100.0, 10.0),
    )


@claim(
    "08/clipping-keeps-balance",
    "Clipping by norm leaves the balance between layers of an SGD update exactly as it was: it scales every "
    "layer's gradient by the same factor.",
    "clipping",
)
def _clipping(evidence) -> Check:
    balance = evidence.measured[0]
    return exact(
        "relative change of the first update's first-layer / readout ratio",
        abs(balance.with_remedy - balance.without) / abs(balance.without),
        1e-9,
    )


@claim(
    "08/adam-keeps-the-explosion",
    "Adam changes the steps, not the network's explosion: after training with Adam the batch-normalized "
    "ReLU network still explodes in every seed.",
    "optimizers",
    scales=EVERY_SCALE,
)
def _adam(study) -> Check:
    return explodes_at_end(study, "adam")
