"""Chapter 02's claims: recurrent networks, gradient clipping and initialization."""

from __future__ import annotations

import math

import numpy as np

from explodegrad.claims.explosion import explodes_in_every_seed
from explodegrad.claims.registry import claim
from explodegrad.claims.thresholds import EXPLODING_RATE, RATE_MARGIN, TRAINED_ERROR
from explodegrad.claims.verdict import Check, all_of, between, compare, exact


@claim(
    "02/rnn-init-fades",
    "At initialization a vanilla RNN, an LSTM and a GRU pass back to the first of 8 rows less than a "
    "tenth of the gradient that reaches the last row.",
    "recurrent",
)
def _rnn_init(runs) -> Check:
    return _every_cell(runs, "first_to_last_init", "<", 0.1, 0.02)


def _per_cell(cells, label, values, op: str, threshold: float, margin: float, **options) -> Check:
    """Every cell's values (one per seed) against one threshold: ``label(cell)`` names them."""
    return all_of(*(compare(label(cell), values(cell), op, threshold, margin, **options) for cell in cells))


def _every_cell(runs, attribute: str, op: str, threshold: float, margin: float) -> Check:
    """``attribute`` of every cell's runs (one per seed) against a threshold."""
    what = attribute.replace("first_to_last_", "first/last row gradient ").replace("init", "at init")
    return _per_cell(
        runs,
        lambda cell: f"{cell} {what}",
        lambda cell: [getattr(r, attribute) for r in runs[cell]],
        op,
        threshold,
        margin,
    )


@claim(
    "02/rnn-training-uses-early-rows",
    "After 200 Adam steps on 8-row sequences all three cells pass back to the first row at least half "
    "the gradient that reaches the last row: on short sequences they learn to use the early rows.",
    "recurrent",
)
def _rnn_trained(runs) -> Check:
    return _every_cell(runs, "first_to_last_trained", ">", 0.5, 0.1)


@claim(
    "02/clipping-rescues",
    f"SGD with momentum at learning rate 0.1 fails on a 10-layer ReLU network: without clipping every run "
    f"diverges or ends with a training error above 0.5; with clipping by norm or by value every run trains "
    f"(training error below {TRAINED_ERROR:g}).",
    "clipping-runs",
)
def _clipping(runs) -> Check:
    def errors(name: str) -> list[float]:  # a diverged run counts as training error 1
        return [1.0 if history.diverged else history.final_train_error for history in runs[name]]

    diverged = sum(history.diverged for history in runs["no clipping"])
    return all_of(
        compare(
            f"no clipping training error ({diverged} diverged, counted as 1)",
            errors("no clipping"),
            ">",
            0.5,
            0.1,
        ),
        compare("clip_norm=1 training error", errors("clip_norm=1"), "<", TRAINED_ERROR, 0.03),
        compare("clip_value=0.01 training error", errors("clip_value=0.01"), "<", TRAINED_ERROR, 0.03),
    )


@claim(
    "02/clipping-keeps-explosion",
    f"Clipping bounds the step and leaves the explosion's rate above the threshold: in a batch-normalized "
    f"ReLU network, whose GSC explodes at initialization in every seed, clipping by norm changes most "
    f"updates but divides every layer's gradient by the same factor (the first layer's gradient over the "
    f"readout's is unchanged), and "
    f"after training with clipping the GSC's fitted rate is still above {EXPLODING_RATE:g} per layer in "
    f"every seed.",
    "clipping-runs",
)
def _clipping_explosion(runs) -> Check:
    deep = runs.exploding
    if deep is None:
        raise ValueError("the clipping runs were made without the exploding network (exploding=False)")
    before, after = deep.first_to_readout, deep.first_to_readout_clipped
    return all_of(
        explodes_in_every_seed(f"{deep.label} at init", deep.rate_init, deep.r_squared_init),
        compare("share of recorded updates that clipping changed", deep.clipped_fraction, ">", 0.5, 0.1),
        exact(
            "first-layer / readout gradient, after over before clipping",
            float(np.max(np.abs(after / before - 1.0))),
            1e-9,
        ),
        compare(
            "fitted rate r after training with clipping "
            f"(R^2 {', '.join(f'{q:.2f}' for q in deep.r_squared_clipped)})",
            deep.rate_clipped,
            ">",
            EXPLODING_RATE,
            RATE_MARGIN,
        ),
    )


@claim(
    "02/he-keeps-scale",
    "In a 20-layer ReLU network of width 100 He initialization keeps the gradient's RMS flat (within 5% per "
    "layer), Xavier loses about a factor sqrt(2) per layer and under a naive N(0, 1) draw it grows by "
    "sqrt(width / 2) = 7.07 per layer (within 10%).",
    "init-scales",
)
def _inits(scales) -> Check:
    growth = dict(zip(scales.inits, np.asarray(scales.gradient_growth, dtype=float)))
    naive = math.sqrt(scales.width / 2)  # each unit sums width inputs of unit size; ReLU keeps half
    return all_of(
        between("He growth per layer", growth["he"], 0.95, 1.05, 0.01),
        between("Xavier growth per layer (1/sqrt(2) = 0.707)", growth["xavier"], 0.65, 0.76, 0.01),
        between(
            f"N(0, 1) growth per layer (sqrt({scales.width}/2) = {naive:.3g})",
            growth["gaussian"],
            0.9 * naive,
            1.1 * naive,
            0.02 * naive,
        ),
    )


# ------------------------------------------------------------ remembering the first token

#: The long sequence length of chapter 02's remember-the-first-token claims, and the short one.
FIRST_TOKEN_LONG = 50
FIRST_TOKEN_SHORT = 5


@claim(
    "02/first-token-short-is-easy",
    f"Remembering the first of {FIRST_TOKEN_SHORT} steps is easy: after 200 Adam steps a vanilla RNN, an "
    "LSTM and a GRU all recall the first token of fresh sequences with accuracy above 0.95 in every "
    "seed.",
    "recurrent-memory",
)
def _first_token_short(memory) -> Check:
    return _per_cell(
        memory.cells,
        lambda cell: f"{cell} accuracy at T = {FIRST_TOKEN_SHORT}",
        lambda cell: memory.accuracies(cell, FIRST_TOKEN_SHORT),
        ">",
        0.95,
        0.03,
    )


@claim(
    "02/first-token-fades-at-init",
    f"At initialization, over {FIRST_TOKEN_LONG} steps, the gradient that reaches the first step (the only "
    "one that carries the label) is less than a millionth of the gradient at the last step, in a "
    "vanilla RNN, an LSTM and a GRU alike, in every seed.",
    "recurrent-memory",
)
def _first_token_fades(memory) -> Check:
    return _per_cell(
        memory.cells,
        lambda cell: f"{cell} first/last step gradient at init, T = {FIRST_TOKEN_LONG}",
        lambda cell: memory.first_to_last_init(cell, FIRST_TOKEN_LONG),
        "<",
        1e-6,
        5e-7,
        digits=2,
    )


@claim(
    "02/first-token-gates-at-chance",
    f"Gating alone does not carry the first token over {FIRST_TOKEN_LONG} steps here: with PyTorch's "
    "default initialization and 200 Adam steps, the LSTM and the GRU stay below chance + 0.05 in "
    "accuracy (chance is 0.25, four classes) in every seed.",
    "recurrent-memory",
)
def _first_token_gates(memory) -> Check:
    return _per_cell(
        ("lstm", "gru"),
        lambda cell: f"{cell} accuracy at T = {FIRST_TOKEN_LONG} (chance {memory.chance:.2f})",
        lambda cell: memory.accuracies(cell, FIRST_TOKEN_LONG),
        "<",
        memory.chance + 0.05,
        0.02,
    )
