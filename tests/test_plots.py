"""Plots draw what a result holds: the right number of lines with the result's own numbers,
overflow as a marker plus a note, the paper's layer numbering in the labels, and clear errors."""

import dataclasses
import importlib
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from explodegrad import build_mlp, plots
from explodegrad.core.config import NetConfig
from explodegrad.core.data import gaussian_data
from explodegrad.measures.dilution import dilution_profile
from explodegrad.measures.domain import domain_stats
from explodegrad.measures.gsc import gsc_matrix, gsc_profile
from explodegrad.measures.paths import path_contributions
from explodegrad.measures.taylor import taylor_compression
from explodegrad.plots.gsc import rate_note
from explodegrad.plots.theme import (
    OVERFLOW_MARKER_GID,
    MinorLogFormatter,
    PowerOfTenFormatter,
    log_axis,
    overflow_notes,
)
from explodegrad.studies.chain_rule import deep_linear_gradients, init_scales, scalar_chain
from explodegrad.studies.gradient_descent import gradient_descent_path
from explodegrad.studies.overflow import find_overflow
from explodegrad.studies.recurrent import recurrent_gradients, rnn_gradient_vs_time
from explodegrad.training.loop import TrainSettings, train
from explodegrad.training.sweep import grid, sweep


def batch(n=32, features=8, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=g), torch.randint(0, classes, (n,), generator=g)


def net(depth=6, width=16, activation="relu", init="he", **kw):
    return build_mlp(depth, width, activation, init=init, in_features=8, out_features=4, **kw)


def markers(ax):
    return [line for line in ax.get_lines() if line.get_gid() == OVERFLOW_MARKER_GID]


def data_lines(ax):
    return [line for line in ax.get_lines() if line.get_gid() != OVERFLOW_MARKER_GID]


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.fixture(scope="module")
def profile():
    x, y = batch()
    return gsc_profile(net(), x, y)


# ----------------------------------------------------------------------------- GSC


def test_gsc_profile_draws_gsc_and_the_fit_with_the_rate_in_the_legend(profile):
    fig = plots.plot_gsc_profile(profile)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    gsc_line, fit_line = ax.get_lines()
    np.testing.assert_array_equal(gsc_line.get_xdata(), profile.layers)
    np.testing.assert_array_equal(gsc_line.get_ydata(), profile.gsc)
    first, last = profile.fit.fit_range
    np.testing.assert_array_equal(fit_line.get_xdata(), np.arange(first, last + 1))
    np.testing.assert_allclose(fit_line.get_ydata(), profile.fit.predict(np.arange(first, last + 1)))
    assert f"r = {profile.rate:.3f} per layer" in " ".join(legend_texts(ax))
    assert ax.get_yscale() == "log"
    assert "counted from the output" in ax.get_xlabel() and "L + 1: input" in ax.get_xlabel()
    assert markers(ax) == [] and overflow_notes(ax) == []


def test_a_resnets_gsc_profile_names_its_rate_per_block():
    """A ResNet's k between the readout and the input layer are blocks: its rate, fit legend,
    message and axis say so, where a plain network's say layer."""
    x, y = batch()
    profile = gsc_profile(net(depth=10, residual=True), x, y)
    assert profile.residual and profile.unit == "block"
    assert f"per block (k = 2..{profile.num_layers}" in profile.message and "per layer" not in profile.message
    assert rate_note(profile).startswith(f"r = {profile.rate:.3f} per block: ")
    (ax,) = plots.plot_gsc_profile(profile, raw=True).axes[:1]
    assert f"r = {profile.rate:.3f} per block" in " ".join(legend_texts(ax))
    assert ax.get_xlabel().startswith("unit k") and "blocks" in ax.get_xlabel()
    plain = gsc_profile(net(), x, y)
    assert plain.unit == "layer" and rate_note(plain).startswith(f"r = {plain.rate:.3f} per layer: ")


def test_gsc_profile_with_raw_gradients_adds_a_second_panel(profile):
    fig = plots.plot_gsc_profile(profile, raw=True, fit=False)
    gsc_ax, raw_ax = fig.axes
    assert len(gsc_ax.get_lines()) == 1
    (raw_line,) = raw_ax.get_lines()
    np.testing.assert_array_equal(raw_line.get_ydata(), profile.output_grad_norms)
    assert "raw gradient" in raw_ax.get_title()


def test_gsc_profile_draws_into_given_axes(profile):
    fig, axes = plt.subplots(1, 2)
    assert plots.plot_gsc_profile(profile, ax=axes, raw=True) is fig
    fig, ax = plt.subplots()
    assert plots.plot_gsc_profile(profile, ax=ax, label="mine") is fig
    assert "mine" in legend_texts(ax)


def test_gsc_profile_overflow_is_marked_with_the_profile_sentence():
    # linear layers of gain 3 * sqrt(64) = 24 in float32: the forward values pass 3e38
    overflowing = build_mlp(40, 64, "linear", init="gaussian", init_scale=3.0, in_features=8, out_features=4)
    x, y = batch()
    result = gsc_profile(overflowing, x, y)
    assert result.overflowed
    fig = plots.plot_gsc_profile(result, raw=True)
    gsc_ax, raw_ax = fig.axes
    (marker,) = markers(gsc_ax)
    bad = result.layers[~np.isfinite(result.gsc)]
    np.testing.assert_array_equal(marker.get_xdata(), bad)
    (note,) = overflow_notes(gsc_ax)
    assert note == result.message.split(";")[0]
    assert f"at layer {result.overflow_layer}" in note
    np.testing.assert_array_equal(data_lines(gsc_ax)[0].get_xdata(), result.layers[np.isfinite(result.gsc)])
    assert markers(raw_ax) and overflow_notes(raw_ax)


def test_overflow_note_is_shown_even_when_the_drawn_values_are_finite(profile):
    note = "gradient overflowed to inf at layer 4 (counted from the output)"
    reported = dataclasses.replace(profile, overflow_layer=4, message=note + "; no fit")
    ax = plots.plot_gsc_profile(reported).axes[0]
    assert overflow_notes(ax) == [note] and markers(ax) == []


def test_gsc_matrix_heatmap_and_its_overflow_cells():
    x, _ = batch(6)
    matrix = gsc_matrix(net(3, 4), x)
    fig = plots.plot_gsc_matrix(matrix)
    ax = fig.axes[0]
    image = ax.get_images()[0].get_array()
    below = matrix.layers[:, None] > matrix.layers[None, :]
    np.testing.assert_allclose(image[below], np.log10(matrix.gsc[below]))
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    table = matrix.gsc.copy()
    table[-1, 0] = np.inf
    broken = dataclasses.replace(matrix, gsc=table, message="gradient overflowed to inf at layer 4; x")
    ax = plots.plot_gsc_matrix(broken).axes[0]
    (marker,) = markers(ax)
    assert marker.get_xdata().tolist() == [matrix.layers[0]]
    assert marker.get_ydata().tolist() == [matrix.layers[-1]]
    assert overflow_notes(ax) == ["gradient overflowed to inf at layer 4"]


# ----------------------------------------------------------------------------- domain


def test_domain_stats_three_panels_of_the_result_numbers():
    x, _ = batch()
    stats = domain_stats(net(6, 16, "tanh", "xavier"), x)
    fig = plots.plot_domain_stats(stats)
    assert len(fig.axes) == 3
    for ax, field in zip(fig.axes, ("preact_std_relative", "sign_diversity", "linear_fit_error")):
        (line,) = ax.get_lines()
        np.testing.assert_array_equal(line.get_xdata(), stats.layers)
        np.testing.assert_array_equal(line.get_ydata(), getattr(stats, field))
        assert "counted from the output" in ax.get_xlabel()
    again = plots.plot_domain_stats(stats, axes=fig.axes, label="second")
    assert again is fig and all(len(ax.get_lines()) == 2 for ax in fig.axes)


def test_domain_stats_nan_is_marked():
    x, _ = batch()
    stats = domain_stats(net(), x)
    broken = dataclasses.replace(
        stats, preact_std_relative=np.where(stats.layers == 3, np.nan, stats.preact_std_relative)
    )
    ax = plots.plot_domain_stats(broken).axes[0]
    assert markers(ax)[0].get_xdata().tolist() == [3.0]
    assert overflow_notes(ax) == ["pre-activation std / RMS overflowed (inf/NaN) at layer 3"]


# ----------------------------------------------------------------------------- residual


def test_dilution_measured_predicted_and_ratio():
    x, _ = batch()
    residual = net(8, 16, norm="batch", residual=True, residual_scale=0.5)
    result = dilution_profile(residual, x, method="probe", num_probes=2)
    fig = plots.plot_dilution(result)
    gsc_ax, ratio_ax = fig.axes
    measured, predicted, branch = gsc_ax.get_lines()
    np.testing.assert_array_equal(measured.get_ydata(), result.block_gsc)
    np.testing.assert_array_equal(predicted.get_ydata(), result.predicted_block_gsc)
    np.testing.assert_array_equal(branch.get_ydata(), result.residual_gsc)
    (ratio,) = ratio_ax.get_lines()
    np.testing.assert_array_equal(ratio.get_xdata(), result.layers)
    np.testing.assert_array_equal(ratio.get_ydata(), result.skip_to_residual)
    assert "predicted" in " ".join(legend_texts(gsc_ax))


def test_dilution_with_zero_residual_says_so():
    x, _ = batch()
    result = dilution_profile(net(6, 8, residual=True, residual_scale=0.0), x, method="probe")
    ratio_ax = plots.plot_dilution(result).axes[1]
    assert overflow_notes(ratio_ax) == ["the residual is exactly zero: ||x|| / ||r(x)|| = inf"]
    np.testing.assert_array_equal(markers(ratio_ax)[0].get_xdata(), result.layers)


def test_path_contributions_shares_threshold_and_effective_depth():
    x, y = batch()
    paths = path_contributions(net(6, 8, residual=True), x, y, num_probes=2)
    ax = plots.plot_path_contributions(paths).axes[0]
    shares, threshold, depth = ax.get_lines()
    positive = paths.fraction > 0
    np.testing.assert_array_equal(shares.get_ydata(), paths.fraction[positive])
    assert threshold.get_ydata()[0] == paths.threshold
    assert depth.get_xdata()[0] == paths.effective_depth
    assert f"effective depth {paths.effective_depth}" in legend_texts(ax)
    broken = dataclasses.replace(paths, fraction=np.full(paths.fraction.size, np.nan), effective_depth=-1)
    ax = plots.plot_path_contributions(broken).axes[0]
    assert len(markers(ax)[0].get_xdata()) == paths.lambdas.size and overflow_notes(ax)


# ----------------------------------------------------------------------------- taylor


def test_taylor_curve_error_and_loss():
    x, y = batch()
    curve = taylor_compression(net(5, 8), x, y)
    ax = plots.plot_taylor_curve(curve).axes[0]
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), curve.ks)
    np.testing.assert_array_equal(line.get_ydata(), curve.train_error)
    loss_ax = plots.plot_taylor_curve(curve, metric="loss").axes[0]
    np.testing.assert_array_equal(loss_ax.get_lines()[0].get_ydata(), curve.train_loss)
    broken = dataclasses.replace(curve, train_loss=np.append(curve.train_loss[:-1], np.inf))
    ax = plots.plot_taylor_curve(broken, metric="loss").axes[0]
    assert markers(ax)[0].get_xdata().tolist() == [float(curve.ks[-1])]
    with pytest.raises(ValueError, match="metric='accuracy'"):
        plots.plot_taylor_curve(curve, metric="accuracy")


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def tiny_data():
    return gaussian_data(n_train=64, n_test=32, in_features=8, num_classes=4, seed=0)


def test_training_history_loss_and_error_panels(tiny_data):
    config = NetConfig(depth=3, width=8, in_features=8, out_features=4)
    history = train(config, tiny_data, TrainSettings(steps=6, batch_size=16, record_every=2), progress=False)
    fig = plots.plot_training_history(history)
    loss_ax, error_ax = fig.axes
    train_loss, test_loss = loss_ax.get_lines()
    np.testing.assert_array_equal(train_loss.get_xdata(), history.steps)
    np.testing.assert_array_equal(train_loss.get_ydata(), history.train_loss)
    np.testing.assert_array_equal(test_loss.get_ydata(), history.test_loss)
    np.testing.assert_array_equal(error_ax.get_lines()[1].get_ydata(), history.test_error)
    assert overflow_notes(loss_ax) == []
    ax = plots.plot_gradient_norms(history).axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["step 2", "step 4", "step 6"]
    np.testing.assert_array_equal(ax.get_lines()[-1].get_ydata(), history.grad_norms[-1])
    assert "counted from the output" in ax.get_xlabel()
    ax = plots.plot_gradient_norms(history, steps=[4]).axes[0]
    assert len(ax.get_lines()) == 1
    with pytest.raises(ValueError, match="steps=\\[3\\] is not allowed"):
        plots.plot_gradient_norms(history, steps=[3])


def test_a_diverged_run_is_marked_with_its_sentence(tiny_data):
    config = NetConfig(depth=6, width=16, in_features=8, out_features=4, init="gaussian", init_scale=4.0)
    history = train(
        config, tiny_data, TrainSettings(steps=30, lr=50.0, batch_size=16, record_every=1), progress=False
    )
    assert history.diverged
    loss_ax = plots.plot_training_history(history).axes[0]
    assert overflow_notes(loss_ax) == [history.message]
    assert markers(loss_ax)[0].get_xdata().tolist() == [history.diverged_step]


# ----------------------------------------------------------------------------- sweeps


@pytest.fixture(scope="module")
def tiny_sweep(tiny_data):
    runs = grid(
        NetConfig(width=8, in_features=8, out_features=4),
        TrainSettings(steps=4, batch_size=16, record_every=2),
        depth=[2, 3],
        lr=[0.01, 1e4],
        init=["gaussian"],
        init_scale=[5.0],
    )
    return sweep(runs, tiny_data, progress=False)


def test_sweep_heatmap_cells_and_diverged_marks(tiny_sweep):
    fig = plots.plot_sweep_heatmap(tiny_sweep, x="lr", y="depth")
    ax = fig.axes[0]
    summary = tiny_sweep.summary
    shown = ax.collections[0].get_array()
    finite = summary[~summary["diverged"]]
    assert np.isfinite(shown.compressed()).all() and shown.count() == len(finite)
    np.testing.assert_allclose(np.sort(shown.compressed()), np.sort(finite["final_train_error"]))
    diverged = int(summary["diverged"].sum())
    assert diverged >= 1
    assert [t.get_text() for t in ax.texts if t.get_gid() == OVERFLOW_MARKER_GID] == ["diverged"] * diverged


def test_sweep_lines_one_curve_per_run_and_facets(tiny_sweep):
    fig = plots.plot_sweep_lines(tiny_sweep, y="train_loss")
    (ax,) = fig.axes
    assert len(data_lines(ax)) == len(tiny_sweep.runs)
    diverged = int(tiny_sweep.summary["diverged"].sum())
    assert len(markers(ax)) == diverged and overflow_notes(ax)
    faceted = plots.plot_sweep_lines(tiny_sweep, col="depth", hue="lr")
    assert len(faceted.axes) == 2
    assert sum(len(data_lines(ax)) for ax in faceted.axes) == len(tiny_sweep.runs)
    with pytest.raises(ValueError, match="y='accuracy' is not a column"):
        plots.plot_sweep_lines(tiny_sweep, y="accuracy")
    with pytest.raises(ValueError, match="ax=.* is not allowed with col='depth'"):
        plots.plot_sweep_lines(tiny_sweep, col="depth", ax=plt.subplots()[1])
    with pytest.raises(ValueError, match="table is empty"):
        plots.plot_sweep_heatmap(pd.DataFrame({"a": [], "b": [], "final_train_error": []}), x="a", y="b")


# ----------------------------------------------------------------------------- chain toys


def test_scalar_chain_measured_and_predicted():
    result = scalar_chain(weight=-1.5, depth=12)
    ax = plots.plot_scalar_chain(result).axes[0]
    measured, predicted = ax.get_lines()
    np.testing.assert_allclose(measured.get_ydata(), 1.5 ** np.arange(1, 13))
    np.testing.assert_allclose(predicted.get_ydata(), 1.5 ** np.arange(1, 13))
    overflowed = scalar_chain(weight=1e30, depth=12)
    ax = plots.plot_scalar_chain(overflowed).axes[0]
    assert markers(ax)[0].get_xdata().min() == 11  # 1e330 is past float64's range
    assert overflow_notes(ax)


def test_other_chain_toys_draw_their_numbers():
    linear = deep_linear_gradients(depth=6, width=8, sigma=1.5)
    ax = plots.plot_linear_gradients(linear).axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), linear.gradient_norms)
    assert "predicted x1.5" in legend_texts(ax)[0]

    path = gradient_descent_path(lr=0.12, steps=10)
    fig = plots.plot_gradient_descent_path(path)
    path_ax, loss_ax = fig.axes
    np.testing.assert_array_equal(path_ax.get_lines()[0].get_xdata(), path.points[:, 0])
    np.testing.assert_array_equal(loss_ax.get_lines()[0].get_ydata(), path.losses)
    # the steep coordinate diverges (|x_2| > 4); the flat one keeps its own axis, so its crawl shows
    assert np.abs(path.points[:, 1]).max() > 4
    assert path_ax.get_xlim()[1] < 1.2 < 4 < path_ax.get_ylim()[1]
    assert len(plots.plot_gradient_descent_path(gradient_descent_path(curvature=(1.0, 2.0, 3.0))).axes) == 1

    rnn = rnn_gradient_vs_time(spectral_radius=1.2, steps=8, hidden=6, activation="linear")
    ax = plots.plot_rnn_time_gradients(rnn).axes[0]
    measured, predicted = ax.get_lines()
    np.testing.assert_allclose(measured.get_ydata(), predicted.get_ydata(), rtol=1e-6)

    cells = [recurrent_gradients(cell, steps_trained=2, hidden=4) for cell in ("rnn", "lstm")]
    ax = plots.plot_recurrent_gradients(cells).axes[0]
    assert len(ax.get_lines()) == 4

    scales = init_scales(depth=5, width=8, inits=("gaussian", "he"), gaussian_std=3.0, batch=8)
    act_ax, grad_ax = plots.plot_init_scales(scales).axes
    assert len(act_ax.get_lines()) == 2
    np.testing.assert_array_equal(grad_ax.get_lines()[1].get_ydata(), scales.gradient_rms[1])


def test_overflow_search_plot_carries_the_search_sentence():
    result = find_overflow(width=8, sigma=1e3, dtype="float16", max_depth=8, steps=3)
    ax = plots.plot_overflow(result).axes[0]
    assert overflow_notes(ax) == [result.message]


# ----------------------------------------------------------------------------- helpers and bad input


def test_log_axis_writes_powers_of_ten_in_plain_text():
    fig, ax = plt.subplots()
    ax.plot([1, 2], [1e-3, 1e2])
    log_axis(ax)
    fig.canvas.draw()
    major = ax.yaxis.get_major_formatter()
    assert isinstance(major, PowerOfTenFormatter)
    assert [major(v) for v in (1e-3, 1.0, 100.0)] == ["10\u207b\u00b3", "10\u2070", "10\u00b2"]
    assert isinstance(ax.yaxis.get_minor_formatter(), MinorLogFormatter)
    assert ax.yaxis.get_minorticklocs().size == 0  # a view over decades: no minor ticks
    ax.set_ylim(0.5, 4.0)
    fig.canvas.draw()
    assert major(1.0) == "1" and ax.yaxis.get_minor_formatter()(2.0) == "2"


#: Every plot function that draws one kind of result, and the argument that holds it.
RESULT_ARGUMENTS = [
    (plots.plot_gsc_profile, "profile"),
    (plots.plot_gsc_matrix, "matrix"),
    (plots.plot_domain_stats, "stats"),
    (plots.plot_dilution, "result"),
    (plots.plot_path_contributions, "paths"),
    (plots.plot_taylor_curve, "curve"),
    (plots.plot_training_history, "history"),
    (plots.plot_gradient_norms, "history"),
    (plots.plot_scalar_chain, "result"),
    (plots.plot_linear_gradients, "result"),
    (plots.plot_init_scales, "result"),
    (plots.plot_overflow, "result"),
    (plots.plot_gradient_descent_path, "result"),
    (plots.plot_rnn_time_gradients, "result"),
    (plots.plot_recurrent_gradients, "results"),
    (plots.plot_first_token_memory, "result"),
    (plots.plot_rescaling, "comparison"),
    (plots.plot_perturbation_check, "check"),
    (plots.plot_survey, "result"),
    (plots.plot_survey_profiles, "result"),
    (plots.plot_survey_domains, "result"),
    (plots.plot_domain_tradeoff, "result"),
    (plots.plot_optimizer_gsc, "study"),
    (plots.plot_update_sizes, "study"),
    (plots.plot_depth_study, "study"),
    (plots.plot_effective_depth, "study"),
    (plots.plot_effective_depth_study, "study"),
    (plots.plot_path_fractions, "trajectory"),
    (plots.plot_taylor_study, "study"),
    (plots.plot_orthogonal_state, "result"),
    (plots.plot_width_vs_depth, "result"),
    (plots.plot_clipping_comparison, "result"),
    (plots.plot_clipped_explosion, "result"),
    (plots.plot_layer_histograms, "results"),
    (plots.plot_layer_trace, "study"),
    (plots.plot_rate_curves, "curves"),
    (plots.plot_trained_depth, "study"),
    (plots.plot_weight_growth, "growth"),
]


@pytest.mark.parametrize(("function", "argument"), RESULT_ARGUMENTS, ids=lambda f: getattr(f, "__name__", f))
def test_plots_refuse_the_wrong_result_with_a_type_error_naming_its_home(function, argument):
    with pytest.raises(TypeError, match=f"^{argument}: expected an? [A-Z]\\w+ from explodegrad\\.") as error:
        function(np.ones(3))
    assert error.value.args[0].endswith("got ndarray") or error.value.args[0].endswith("got float64")
    source = re.search(r"from (explodegrad[\w.]+)", str(error.value))[1]
    module, name = source.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name)), f"{source} is not a function"


def test_every_plot_function_is_checked_and_re_exported():
    """plots.__all__ holds every public plot function of every plot file, and each one that takes
    a result is in RESULT_ARGUMENTS (the sweep plots also take a bare table)."""
    package = Path(plots.__file__).parent
    defined = set()
    for path in package.glob("[!_]*.py"):
        module = importlib.import_module(f"explodegrad.plots.{path.stem}")
        defined |= {
            n for n, f in vars(module).items() if n.startswith("plot_") and f.__module__ == module.__name__
        }
    assert defined <= set(plots.__all__)
    assert defined - {"plot_layer_rms", "plot_sweep_heatmap", "plot_sweep_lines"} == {
        f.__name__ for f, _ in RESULT_ARGUMENTS
    }


def test_plot_files_mirror_the_measures_studies_and_training_they_draw():
    """plots/<name>.py draws results of measures/<name>.py, studies/<name>.py or training/<name>.py."""
    root = Path(plots.__file__).parent.parent
    homes = {p.stem for layer in ("measures", "studies", "training") for p in (root / layer).glob("[!_]*.py")}
    files = {p.stem for p in (root / "plots").glob("[!_]*.py")} - {"theme"}
    assert files <= homes, f"plot files without a measure, study or training module: {sorted(files - homes)}"


def test_plots_refuse_bad_axes(profile):
    with pytest.raises(TypeError, match="axes=.* sequence of 2 matplotlib Axes"):
        plots.plot_gsc_profile(profile, raw=True, ax=plt.subplots()[1])
    with pytest.raises(ValueError, match="axes=.* sequence of 2 matplotlib Axes"):
        plots.plot_gsc_profile(profile, raw=True, ax=[plt.subplots()[1]])
    with pytest.raises(TypeError, match="ax='left' is not allowed"):
        plots.plot_gsc_profile(profile, ax="left")
    with pytest.raises(
        TypeError, match="result: expected a SweepResult from explodegrad.training.sweep.sweep"
    ):
        plots.plot_sweep_heatmap([1, 2], x="a", y="b")
