"""Figures of chapters 01-04: survey, depth limit and optimizer studies, and the meaning of the GSC."""

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from explodegrad.claims.thresholds import EXPLODING_RATE
from explodegrad.core.config import NetConfig
from explodegrad.core.data import gaussian_data
from explodegrad.core.nets import build_mlp
from explodegrad.plots.depth_limit import plot_depth_study
from explodegrad.plots.gsc_meaning import plot_perturbation_check, plot_rescaling
from explodegrad.plots.optimizers import plot_optimizer_gsc, plot_update_sizes
from explodegrad.plots.survey import plot_survey, plot_survey_profiles
from explodegrad.studies.depth_limit import depth_study
from explodegrad.studies.gsc_meaning import perturbation_check, rescaling_comparison
from explodegrad.studies.optimizers import optimizer_study
from explodegrad.studies.survey import architecture_survey


@pytest.fixture(scope="module")
def data():
    return gaussian_data(n_train=64, n_test=16, in_features=10, num_classes=3, seed=0, dtype=torch.float64)


@pytest.fixture(scope="module")
def survey(data):
    return architecture_survey(
        activations=("relu", "tanh"), norms=("none", "batch"), depth=4, width=8, data=data, batch_size=32
    )


def _bars(fig):
    return [patch for patch in fig.axes[0].patches if patch.get_height() > 0]


def test_survey_bars_one_per_architecture(survey):
    fig = plot_survey(survey)
    assert isinstance(fig, Figure)
    heights = sorted(bar.get_height() for bar in _bars(fig))
    np.testing.assert_allclose(heights, sorted(survey.table["gsc_input"]))
    assert fig.axes[0].get_yscale() == "log"


def test_survey_rates_are_bars_from_one_on_a_linear_axis_with_the_threshold(survey):
    fig = plot_survey(survey, value="rate")
    ax = fig.axes[0]
    bars = [patch for patch in ax.patches if patch.get_width() < 0.5]  # not the threshold band
    assert ax.get_yscale() == "linear" and len(bars) == len(survey.table)
    assert all(bar.get_y() == 1.0 for bar in bars)
    np.testing.assert_allclose(sorted(1.0 + b.get_height() for b in bars), sorted(survey.table["rate"]))
    assert any(line.get_ydata()[0] == EXPLODING_RATE for line in ax.get_lines())
    low, high = ax.get_ylim()
    assert low < min(survey.table["rate"].min(), 1.0) and high > EXPLODING_RATE


def test_survey_overflow_is_noted_not_drawn(data):
    broken = architecture_survey(
        activations=("relu", "tanh"), norms=("none", "batch"), depth=4, width=8, data=data, batch_size=32
    )
    broken.table.loc[0, "gsc_input"] = np.inf
    fig = plot_survey(broken)
    assert len(_bars(fig)) == 3
    notes = [t.get_text() for t in fig.axes[0].texts]
    assert any("overflow" in note and "relu/none" in note for note in notes)


def test_survey_profiles_one_line_per_architecture(survey):
    fig = plot_survey_profiles(survey, labels=["relu/batch", "tanh/none"])
    lines = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) > 2]
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_ydata(), survey.profiles["relu/batch"].gsc)
    assert "from the output" in fig.axes[0].get_xlabel()


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda s: plot_survey(s, value="loss"), "value"),
        (lambda s: plot_survey_profiles(s, labels=["gelu/none"]), "labels"),
    ],
)
def test_survey_plots_bad_input(survey, call, argument):
    with pytest.raises(ValueError, match=argument):
        call(survey)
    with pytest.raises(TypeError, match="result: expected a SurveyResult from explodegrad.studies.survey"):
        plot_survey(pd.DataFrame())


@pytest.fixture(scope="module")
def study(data):
    config = NetConfig(depth=4, width=8, activation="relu", norm="batch", in_features=10, out_features=3)
    return optimizer_study(config, data=data.to("cpu"), steps=4, measure_every=2, seeds=1)


def test_optimizer_gsc_one_line_per_optimizer(study):
    fig = plot_optimizer_gsc(study)
    lines = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 3]
    assert len(lines) == 3
    np.testing.assert_array_equal(lines[0].get_xdata(), [0, 2, 4])
    rate_fig = plot_optimizer_gsc(study, value="rate")
    assert rate_fig.axes[0].get_yscale() == "linear"
    dotted = [line for line in rate_fig.axes[0].get_lines() if line.get_linestyle() == ":"]
    assert [line.get_ydata()[0] for line in dotted] == [EXPLODING_RATE]  # the threshold, for the rate only
    assert not [line for line in fig.axes[0].get_lines() if line.get_linestyle() == ":"]


def test_optimizer_gsc_draws_every_seed_in_its_optimizer_colour(data):
    config = NetConfig(depth=4, width=8, activation="relu", norm="batch", in_features=10, out_features=3)
    seeded = optimizer_study(config, ("sgd", "adam"), data=data.to("cpu"), steps=2, measure_every=2, seeds=2)
    lines = [line for line in plot_optimizer_gsc(seeded).axes[0].get_lines() if line.get_linestyle() != "--"]
    assert len(lines) == 4
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()


def test_update_sizes_two_panels(study):
    fig = plot_update_sizes(study)
    left, right = fig.axes
    assert len(left.get_lines()) == 3
    assert len(right.get_lines()) == 4  # three optimizers at the end, and the initial network
    sgd = study.updates[study.updates["optimizer"] == "sgd"]
    np.testing.assert_allclose(left.get_lines()[0].get_ydata(), sgd["update_size"])


def test_depth_study_marks_all_diverged_depths(data):
    result = depth_study(
        (("relu", "none"),), depths=(2, 3), lrs=(0.1,), data=data.to("cpu"), width=4, steps=2, seeds=1
    )
    result.table.loc[1, "final_train_error"] = np.nan
    fig = plot_depth_study(result)
    (line,) = [line for line in fig.axes[0].get_lines()]
    np.testing.assert_array_equal(line.get_xdata(), [2])
    assert any("diverged" in t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(ValueError, match="value"):
        plot_depth_study(result, value="loss")


def test_meaning_plots(data):
    net = build_mlp(depth=4, width=8, in_features=10, out_features=3, dtype=torch.float64)
    comparison = rescaling_comparison(net, data.x_train, data.y_train, k=2, factor=5.0)
    fig = plot_rescaling(comparison)
    raw, gsc = fig.axes
    np.testing.assert_allclose(raw.get_lines()[1].get_ydata(), comparison.raw_after)
    np.testing.assert_allclose(gsc.get_lines()[0].get_ydata(), gsc.get_lines()[1].get_ydata(), rtol=1e-10)
    check = perturbation_check(net, data.x_train, data.y_train, layers=(2, 3), num_directions=3)
    fig = plot_perturbation_check(check)
    assert len(fig.axes[0].collections) == 2
    with pytest.raises(TypeError, match="check"):
        plot_perturbation_check(comparison)
    with pytest.raises(TypeError, match="comparison"):
        plot_rescaling(check)
