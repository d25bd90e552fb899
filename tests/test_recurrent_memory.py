"""The remember-the-first-token study (chapter 02): its data, its checks, its claims and its figure."""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from explodegrad import claims, plots
from explodegrad.claims.verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE
from explodegrad.studies import recurrent_memory
from explodegrad.studies.recurrent_memory import FirstTokenMemory, first_token_memory, first_token_sequences

#: A run small enough for a unit test: both lengths the claims read, a few steps.
TINY_RUN = {"lengths": (5, 50), "seeds": 2, "hidden": 4, "steps_trained": 3, "test_size": 16, "device": "cpu"}


@pytest.fixture(scope="module")
def tiny() -> FirstTokenMemory:
    return first_token_memory(**TINY_RUN)


# ----------------------------------------------------------------------------- the data


@pytest.mark.parametrize("filler", recurrent_memory.FILLERS)
def test_the_label_is_the_first_token(filler):
    sequences, labels = first_token_sequences(500, 7, 5, seed=3, filler=filler, device="cpu")
    assert sequences.shape == (500, 7, 5) and sequences.dtype == torch.float32
    assert labels.dtype == torch.int64 and sequences.device.type == "cpu"
    assert torch.equal(sequences[:, 0], torch.nn.functional.one_hot(labels, 5).float())
    assert torch.equal(sequences[:, 0].argmax(dim=1), labels)
    assert set(labels.tolist()) == set(range(5))


def test_blank_filler_is_all_zeros_and_tokens_are_one_hot():
    blank, _ = first_token_sequences(50, 6, 4, filler="blank")
    assert torch.count_nonzero(blank[:, 1:]) == 0
    tokens, _ = first_token_sequences(50, 6, 4, filler="tokens")
    assert torch.equal(tokens[:, 1:].sum(dim=2), torch.ones(50, 5))
    assert set(tokens[:, 1:].unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("filler", ["tokens", "noise"])
def test_later_steps_carry_no_label_information(filler):
    """Per label, the filler's mean is the same (uniform tokens: 1/K per channel; noise: 0)."""
    sequences, labels = first_token_sequences(40_000, 3, 4, seed=1, filler=filler)
    expected = 0.25 if filler == "tokens" else 0.0
    for label in range(4):
        mean = sequences[labels == label, 1:].mean(dim=(0, 1))
        assert torch.allclose(mean, torch.full((4,), expected), atol=0.02), (label, mean)


def test_the_data_is_the_same_for_a_seed_and_differs_between_seeds():
    first = first_token_sequences(20, 4, 3, seed=5, filler="noise")
    again = first_token_sequences(20, 4, 3, seed=5, filler="noise")
    other = first_token_sequences(20, 4, 3, seed=6, filler="noise")
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"lengths": ()}, r"lengths=\(\) is not allowed: lengths must be a non-empty tuple"),
        ({"lengths": 5}, "lengths=5 is not allowed"),
        ({"lengths": (5, 0)}, "lengths=0 is not allowed"),
        ({"lengths": (5, 5)}, "the lengths repeat"),
        ({"cells": ("rnn", "transformer")}, "cells='transformer' is not supported: cells must be one of"),
        ({"cells": ("gru", "gru")}, "the cells repeat"),
        ({"cells": "lstm"}, "cells='lstm' is not allowed"),
        ({"num_classes": 1}, "num_classes=1 is not allowed"),
        ({"filler": "zeros"}, "filler='zeros' is not supported"),
        ({"steps_trained": -1}, "steps_trained=-1 is not allowed"),
        ({"seeds": 0}, "seeds=0 is not allowed"),
        ({"test_size": 0}, "test_size=0 is not allowed"),
        ({"lr": 0.0}, "lr=0.0 is not allowed"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(arguments, message):
    with pytest.raises(ValueError, match=message):
        first_token_memory(**{**TINY_RUN, **arguments})


def test_bad_data_arguments_and_lookups_are_refused(tiny):
    with pytest.raises(ValueError, match="length=0 is not allowed"):
        first_token_sequences(4, 0, 3)
    with pytest.raises(ValueError, match="num_classes=1 is not allowed"):
        first_token_sequences(4, 3, 1)
    with pytest.raises(ValueError, match="filler='noisy' is not supported"):
        first_token_sequences(4, 3, 2, filler="noisy")
    with pytest.raises(ValueError, match=r"length=20 is not allowed: this result has lengths \(5, 50\)"):
        tiny.accuracies("rnn", 20)
    with pytest.raises(ValueError, match="cell='lstmm' is not supported"):
        tiny.accuracies("lstmm", 5)
    with pytest.raises(TypeError, match="device"):
        first_token_memory(**{**TINY_RUN, "device": 3})


# ----------------------------------------------------------------------------- the runs


def test_a_tiny_run_has_every_number_and_is_deterministic_per_seed(tiny):
    assert tiny.cells == ("rnn", "lstm", "gru") and tiny.lengths == (5, 50) and tiny.seeds == (0, 1)
    for field in ("accuracy", "first_gradient_init", "first_gradient_trained", "last_gradient_init"):
        values = getattr(tiny, field)
        assert values.shape == (3, 2, 2) and np.isfinite(values).all(), field
    assert ((tiny.accuracy >= 0) & (tiny.accuracy <= 1)).all() and tiny.chance == 0.25
    again = first_token_memory(**TINY_RUN)
    for field in ("accuracy", "first_gradient_init", "first_gradient_trained", "last_gradient_trained"):
        assert np.array_equal(getattr(tiny, field), getattr(again, field)), field
    # seed 1 alone repeats the second seed of the pair exactly
    alone = first_token_memory(**{**TINY_RUN, "seeds": [1]})
    assert np.array_equal(alone.accuracy[..., 0], tiny.accuracy[..., 1])
    assert np.array_equal(alone.first_gradient_init[..., 0], tiny.first_gradient_init[..., 1])
    assert not np.array_equal(tiny.first_gradient_init[..., 0], tiny.first_gradient_init[..., 1])
    lines = tiny.summary().splitlines()
    assert lines[0].startswith("remember the first token: 4 classes (chance 0.250), blank filler, 4 units")
    assert len(lines) == 2 + 3 * 2 and lines[2].split()[:2] == ["rnn", "5"]
    assert set(tiny.to_dict()) >= {"accuracy", "cells", "lengths", "first_gradient_init"}


def test_without_training_the_gradient_measures_repeat():
    untrained = first_token_memory(**{**TINY_RUN, "steps_trained": 0, "seeds": 1})
    assert np.array_equal(untrained.first_gradient_init, untrained.first_gradient_trained)
    assert np.array_equal(untrained.last_gradient_init, untrained.last_gradient_trained)


# ----------------------------------------------------------------------------- the claims


def _with_accuracy(result: FirstTokenMemory, short: float, long_gated: float) -> FirstTokenMemory:
    accuracy = np.full_like(result.accuracy, 0.5)
    accuracy[:, 0] = short
    accuracy[1:, 1] = long_gated
    return dataclasses.replace(result, accuracy=accuracy)


def test_the_claims_are_judged_on_chosen_numbers(tiny):
    good = _with_accuracy(tiny, short=1.0, long_gated=0.25)
    assert claims.judge("02/first-token-short-is-easy", good).verdict == HOLDS
    assert claims.judge("02/first-token-gates-at-chance", good).verdict == HOLDS
    bad = _with_accuracy(tiny, short=0.5, long_gated=0.9)
    assert claims.judge("02/first-token-short-is-easy", bad).verdict == DOES_NOT_HOLD
    assert claims.judge("02/first-token-gates-at-chance", bad).verdict == DOES_NOT_HOLD
    near = _with_accuracy(tiny, short=0.96, long_gated=0.29)  # within the margins
    assert claims.judge("02/first-token-short-is-easy", near).verdict == INCONCLUSIVE
    assert claims.judge("02/first-token-gates-at-chance", near).verdict == INCONCLUSIVE
    faded = dataclasses.replace(tiny, first_gradient_init=tiny.last_gradient_init * 1e-9)
    assert claims.judge("02/first-token-fades-at-init", faded).verdict == HOLDS
    kept = dataclasses.replace(tiny, first_gradient_init=tiny.last_gradient_init * 0.1)
    assert claims.judge("02/first-token-fades-at-init", kept).verdict == DOES_NOT_HOLD


def test_every_claim_of_the_module_gets_a_verdict_on_a_tiny_run(tiny, capsys):
    for claim_id in recurrent_memory.CLAIMS:
        judgement = claims.judge(claim_id, tiny)
        assert judgement.verdict in (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE) and judgement.line
        assert not judgement.line.startswith("could not be judged"), judgement.line
    claims.show(tiny, *recurrent_memory.CLAIMS)
    assert capsys.readouterr().out.count("02/first-token-") == 3


def test_a_result_without_the_long_length_is_inconclusive_not_a_crash():
    short_only = first_token_memory(**{**TINY_RUN, "lengths": (5,), "seeds": 1})
    judgement = claims.judge("02/first-token-gates-at-chance", short_only)
    assert judgement.verdict == INCONCLUSIVE and "length=50 is not allowed" in judgement.line


# ----------------------------------------------------------------------------- the figure


def test_the_figure_draws_every_cell_the_seeds_and_chance(tiny):
    fig = plots.plot_first_token_memory(tiny, title="tiny")
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == [
        "rnn: median of 2 seeds",
        "lstm: median of 2 seeds",
        "gru: median of 2 seeds",
        "chance (1/4)",
    ]
    assert ax.get_lines()[-1].get_ydata()[0] == pytest.approx(0.25)
    assert len(ax.collections) == 3 and all(len(c.get_offsets()) == 4 for c in ax.collections)
    median = np.median(tiny.accuracy[0], axis=1)
    assert np.allclose(ax.get_lines()[0].get_ydata(), median)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "50"] and ax.get_title() == "tiny"
    plt.close(fig)
    with pytest.raises(TypeError, match="result: expected a FirstTokenMemory from explodegrad.studies"):
        plots.plot_first_token_memory(tiny.accuracy)
