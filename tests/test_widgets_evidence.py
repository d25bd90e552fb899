"""The explorers of the stored evidence (chapter 04's depth limit) and of width against depth
(chapter 08): they build, draw what they claim to, and say what is wrong in plain words."""

import numpy as np
import pytest
from helpers import CPU

from explodegrad import widgets
from explodegrad.studies import stored
from explodegrad.widgets.width_depth import DEPTHS, budget_study


def test_the_depth_limit_explorer_draws_the_stored_curves_of_every_seed():
    explorer = widgets.depth_limit_explorer(data="digits", architecture="tanh/none", depth=30, device=CPU)
    assert explorer.last_error is None
    panel = explorer.last_figure_data[0]
    study = stored.load("depth-limit-digits").result
    seeds = len(study.seeds)
    assert sum(label.startswith("stored, seed") for label in _legend(explorer)) == seeds
    tried = study.rates.query("architecture == 'tanh/none' and depth == 30")
    drawn = np.concatenate([x for x, _ in panel["lines"]])
    assert set(np.round(tried["lr"], 12)) <= set(np.round(drawn, 12))
    assert "depth-limit-digits" in explorer.last_text


def test_the_depth_limit_explorer_refuses_an_unknown_architecture():
    with pytest.raises(ValueError, match="architecture='gelu/none' is not supported"):
        widgets.depth_limit_explorer(data="digits", architecture="gelu/none", device=CPU)


def test_the_width_depth_experiment_keeps_every_network_within_the_budget():
    result = budget_study("tanh", "none", 6, 16, steps=2)
    assert list(result.table["depth"].unique()) == list(DEPTHS)
    assert (result.table["parameters"] <= result.budget).all()
    with pytest.raises(ValueError, match="steps=0 is not allowed"):
        budget_study("tanh", "none", 6, 16, steps=0)


def test_the_width_depth_explorer_trains_and_draws():
    explorer = widgets.width_depth_explorer("tanh", "none", depth=6, width=16, steps=2, device=CPU)
    assert explorer.last_error is None and "at most" in explorer.last_text


def _legend(explorer):
    return [text.get_text() for text in explorer.last_figure.axes[0].get_legend().get_texts()]


@pytest.mark.parametrize(
    "make",
    [
        lambda: widgets.chain_explorer(depth=5, width=8, max_depth=10),
        lambda: widgets.path_explorer(device=CPU, depth=6, width=8, max_depth=10),
        lambda: widgets.training_explorer(depth=4, width=8, steps=2, max_depth=10, device=CPU),
    ],
    ids=["chain", "paths", "training"],
)
def test_every_depth_explorer_says_when_a_depth_set_from_code_was_clamped(make):
    explorer = make()
    notice = next(x for x in explorer.widget.children if "explodegrad-clamp-notice" in x._dom_classes)
    explorer.controls["depth"].value = 99
    assert "depth = 99 is outside its range" in notice.value
