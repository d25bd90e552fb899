"""Figures of chapters 05-08: effective depth, path lengths, Taylor curves, remedies."""

from dataclasses import replace

import numpy as np
import pytest
from helpers import TINY
from matplotlib.figure import Figure

from explodegrad.plots.effective_depth import (
    plot_effective_depth,
    plot_effective_depth_study,
    plot_path_fractions,
    plot_taylor_study,
)
from explodegrad.plots.orthogonal import plot_orthogonal_state
from explodegrad.plots.width_depth import plot_width_vs_depth
from explodegrad.studies.common import Architecture, study_settings
from explodegrad.studies.effective_depth import effective_depth_study
from explodegrad.studies.orthogonal import orthogonal_initial_state
from explodegrad.studies.width_depth import width_vs_depth

TINY = TINY.with_(train_steps=4)  # figures need fewer steps than the studies


@pytest.fixture(scope="module")
def study(data):
    return effective_depth_study(
        [Architecture("relu", "none"), Architecture("tanh", residual=True)],
        scale=TINY,
        data=data,
        checkpoints=2,
        measure_size=32,
        taylor_size=32,
        num_probes=1,
    )


def _texts(ax):
    return " ".join(text.get_text().replace("\n", " ") for text in ax.texts)


def test_effective_depth_draws_one_line_per_architecture(study):
    for skip in ("since_init", "natural"):
        fig = plot_effective_depth(study, skip=skip)
        ax = fig.axes[0]
        assert isinstance(fig, Figure) and len(ax.get_lines()) == 2
        trajectory = study.trajectories["tanh/none/res"]
        expected = trajectory.depth_since_init if skip == "since_init" else trajectory.depth_natural
        np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), expected)
    with pytest.raises(ValueError, match="skip='identity'"):
        plot_effective_depth(study, skip="identity")
    with pytest.raises(TypeError, match="study"):
        plot_effective_depth(study.table)


def test_path_fractions_draw_the_chosen_checkpoints_and_the_threshold(study):
    trajectory = study.trajectories["relu/none"]
    ax = plot_path_fractions(trajectory).axes[0]
    assert len(ax.get_lines()) == len(trajectory.steps) - 1 + 1  # step 0 left out, threshold added
    ax = plot_path_fractions(trajectory, skip="natural", checkpoints=[0]).axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), trajectory.fractions_natural[0])
    assert "path length" in ax.get_xlabel()
    with pytest.raises(ValueError, match="index 7"):
        plot_path_fractions(trajectory, checkpoints=[7])


def test_taylor_study_uses_linear_layers_or_k(study):
    ax = plot_taylor_study(study).axes[0]
    curves = [line for line in ax.get_lines() if len(line.get_xdata()) > 1]
    assert len(curves) == 2
    np.testing.assert_array_equal(curves[1].get_xdata(), study.taylor_linear_layers["tanh/none/res"])
    ax = plot_taylor_study(study, x="k").axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), study.taylor["relu/none"].ks)
    assert "counted from the output" in ax.get_xlabel()
    with pytest.raises(ValueError, match="x='depth'"):
        plot_taylor_study(study, x="depth")
    assert len(plot_effective_depth_study(study).axes) == 2


def test_taylor_study_of_several_seeds_draws_the_first_seed(data):
    seeded = effective_depth_study(
        [Architecture("relu", "none")],
        scale=TINY,
        data=data,
        checkpoints=1,
        measure_size=32,
        taylor_size=32,
        num_probes=1,
        seeds=(3, 5),
    )
    assert list(seeded.table["seed"]) == [3, 5] and seeded.seeds == (3, 5)
    first = seeded.table.iloc[0]
    (curve,) = [line for line in plot_taylor_study(seeded).axes[0].get_lines() if len(line.get_xdata()) > 1]
    assert f"(effective depth {first['depth_since_init_final']})" in curve.get_label()
    assert "median [min, max] over 2 seeds" in seeded.summary()


def test_orthogonal_state_marks_an_overflow(data):
    result = orthogonal_initial_state(
        scale=TINY, data=data, settings=study_settings(TINY, checkpoints=2), measure_size=32
    )
    fig = plot_orthogonal_state(result)
    left, right = fig.axes
    assert len(right.get_lines()) == 3
    name = result.names[0]
    broken = replace(result, hidden_gsc={**result.hidden_gsc, name: np.array([1.0, np.inf, np.nan])})
    left = plot_orthogonal_state(broken).axes[0]
    assert "overflow" in _texts(left) and name in _texts(left)
    np.testing.assert_array_equal(left.get_lines()[0].get_ydata(), [1.0])
    with pytest.raises(TypeError, match="OrthogonalStateResult"):
        plot_orthogonal_state(result.table)


def test_width_vs_depth_annotates_widths_and_diverged_depths(data):
    result = width_vs_depth([2, 6], scale=TINY, data=data, lrs=[0.05])
    ax = plot_width_vs_depth(result).axes[0]
    assert len(ax.get_lines()) == 2
    assert "width 8" in _texts(ax)
    table = result.table.copy()
    table.loc[1, ["final_train_error", "final_test_error"]] = np.nan
    ax = plot_width_vs_depth(replace(result, table=table)).axes[0]
    assert "diverged at depth 6" in _texts(ax)
    with pytest.raises(TypeError, match="WidthDepthResult"):
        plot_width_vs_depth(table)


def test_path_explorer_reruns_on_every_control_and_caches():
    from explodegrad.widgets.paths import path_explorer

    explorer = path_explorer(depth=8, width=8, max_depth=12)
    first = explorer.last_result
    assert explorer.last_error is None and first.skip == "identity"
    assert "effective depth" in explorer.last_text
    explorer.controls["residual_scale"].value = 0.01
    diluted = explorer.last_result
    assert diluted.effective_depth <= first.effective_depth and diluted is not first
    explorer.controls["residual"].value = False
    assert explorer.last_result.skip == "linear_fit"
    runs = explorer.runs
    explorer.controls["residual"].value = True
    assert explorer.last_result is diluted and explorer.runs == runs  # from the cache
    lines = explorer.last_figure_data[0]["lines"]
    drawn = diluted.fraction > 0  # a log axis: exact zeros (no such path) are not drawn
    np.testing.assert_array_equal(lines[0][1], diluted.fraction[drawn])


@pytest.fixture(scope="module")
def survey(data):
    from explodegrad.studies.survey import architecture_survey

    return architecture_survey(
        activations=("relu", "tanh"), norms=("none", "batch"), data=data, depth=5, width=8, batch_size=32
    )


def test_survey_domains_draw_one_panel_per_activation_and_one_line_per_norm(survey):
    from explodegrad.plots.survey import plot_survey_domains

    fig = plot_survey_domains(survey, "linear_fit_error")
    assert [ax.get_title() for ax in fig.axes] == ["relu", "tanh"]
    lines = fig.axes[1].get_lines()
    assert len(lines) == 2
    np.testing.assert_array_equal(lines[1].get_ydata(), survey.domains["tanh/batch"].linear_fit_error)
    assert "counted from the output" in fig.axes[0].get_xlabel()
    with pytest.raises(ValueError, match="statistic='rate'"):
        plot_survey_domains(survey, "rate")


def test_domain_tradeoff_places_every_architecture_by_its_rate_and_lists_overflow(survey):
    from explodegrad.claims.thresholds import EXPLODING_RATE
    from explodegrad.plots.survey import plot_domain_tradeoff
    from explodegrad.plots.theme import NORM_MARKERS, activation_color

    fig = plot_domain_tradeoff(survey)
    left = fig.axes[0]
    points = np.concatenate([c.get_offsets() for c in left.collections])
    assert len(points) == 4
    row = survey.row("relu", "batch")
    assert any(np.allclose(p, [row["rate"], row["sign_diversity_last"]]) for p in points)
    assert left.texts and all("/" not in t.get_text() for t in left.texts)  # no point labels to overlap
    assert any(np.allclose(line.get_xdata(), EXPLODING_RATE) for line in left.get_lines())
    legend = [t.get_text() for t in left.get_legend().get_texts()]
    assert legend == ["relu", "tanh", "norm: none", "norm: batch"]
    handle = left.get_legend().legend_handles[0]
    assert handle.get_color() == activation_color("relu") and NORM_MARKERS["batch"] == "s"
    table = survey.table.copy()
    table.loc[0, "rate"] = np.inf
    broken = replace(survey, table=table)
    left = plot_domain_tradeoff(broken).axes[0]
    assert "relu/none" in _texts(left) and "not finite" in _texts(left)
    with pytest.raises(TypeError, match="SurveyResult"):
        plot_domain_tradeoff(table)


def test_survey_domains_show_the_absolute_spread_on_a_log_axis_in_the_norm_colours(survey):
    from explodegrad.plots.survey import plot_survey_domains
    from explodegrad.plots.theme import norm_color

    fig = plot_survey_domains(survey, "preact_std")
    tanh = fig.axes[1]
    assert tanh.get_yscale() == "log"
    none, batch = tanh.get_lines()
    np.testing.assert_array_equal(none.get_ydata(), survey.domains["tanh/none"].preact_std)
    assert (none.get_color(), batch.get_color()) == (norm_color("none"), norm_color("batch"))
    assert plot_survey_domains(survey, "sign_diversity").axes[0].get_yscale() == "linear"
