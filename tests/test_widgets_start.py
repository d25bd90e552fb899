"""The explorer pattern and the start-here explorer, without a kernel or a browser."""

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import pytest
from helpers import CPU
from matplotlib.figure import Figure

from explodegrad import plots, widgets


def _power_explorer(**options):
    """An explorer of y = x^n that refuses n = 5."""
    calls = []

    def experiment(n, sign):
        calls.append((n, sign))
        if n == 5:
            raise ValueError("n=5 is not allowed: five is right out")
        return sign * np.linspace(0, 1, 11) ** n

    def draw(result):
        fig, ax = plt.subplots()
        ax.plot(np.linspace(0, 1, 11), result)
        return fig

    controls = {"n": w.IntSlider(value=2, min=0, max=9), "sign": w.Dropdown(options=[1, -1], value=1)}
    explorer = widgets.Explorer(controls, experiment, draw, "powers", device=CPU, **options)
    return explorer, calls


def test_explorer_runs_once_at_start_and_records_the_figure():
    explorer, calls = _power_explorer()
    assert calls == [(2, 1)] and explorer.runs == 1
    assert isinstance(explorer.last_figure, Figure)
    (panel,) = explorer.last_figure_data
    np.testing.assert_allclose(panel["lines"][0][1], np.linspace(0, 1, 11) ** 2)
    assert explorer.last_error is None
    assert explorer.controls["n"].continuous_update is False
    assert "ran in" in explorer.status.value


def test_setting_a_control_reruns_and_the_figure_data_changes():
    explorer, calls = _power_explorer()
    explorer.controls["n"].value = 3
    assert calls[-1] == (3, 1) and explorer.runs == 2
    np.testing.assert_allclose(explorer.last_figure_data[0]["lines"][0][1], np.linspace(0, 1, 11) ** 3)
    explorer.controls["sign"].value = -1
    np.testing.assert_allclose(explorer.last_result, -(np.linspace(0, 1, 11) ** 3))


def test_going_back_to_a_setting_hits_the_cache():
    explorer, calls = _power_explorer()
    explorer.controls["n"].value = 3
    explorer.controls["n"].value = 2
    assert explorer.runs == 2 and explorer.cache_hits == 1 and len(calls) == 2
    assert explorer.status.value.endswith("from cache")
    np.testing.assert_allclose(explorer.last_figure_data[0]["lines"][0][1], np.linspace(0, 1, 11) ** 2)


def test_an_argument_check_type_error_is_shown_in_plain_words_too():
    def experiment(n):
        if n == 2:
            raise TypeError("n=2 is not allowed: n must be odd (got an even int)")
        if n == 3:
            raise KeyError("n")
        return n

    explorer = widgets.Explorer(
        {"n": w.IntSlider(value=1)}, experiment, lambda r: plt.figure(), "t", device=CPU
    )
    explorer.controls["n"].value = 2
    assert (
        explorer.last_error
        == "Could not run this setting: n=2 — n=2 is not allowed: n must be odd (got an even int)"
    )
    explorer.controls["n"].value = 3
    assert explorer.last_error == "Could not run this setting: n=3 — KeyError: 'n'"


def test_cache_forgets_the_least_recently_used_setting():
    explorer, calls = _power_explorer(cache_size=2)
    explorer.controls["n"].value = 3  # cache: 2, 3
    explorer.controls["n"].value = 4  # cache: 3, 4 (2 forgotten)
    explorer.controls["n"].value = 2
    assert explorer.runs == 4 and explorer.cache_hits == 0
    assert len(explorer.cache) == 2


def test_a_bad_setting_shows_a_message_and_the_explorer_keeps_working():
    explorer, _ = _power_explorer()
    explorer.controls["n"].value = 5  # must not raise
    assert explorer.last_error == (
        "Could not run this setting: n=5, sign=1 — n=5 is not allowed: five is right out"
    )
    assert explorer.last_result is None and explorer.last_figure is None
    assert explorer.status.value.startswith("Could not run")
    explorer.controls["n"].value = 6
    assert explorer.last_error is None
    np.testing.assert_allclose(explorer.last_result, np.linspace(0, 1, 11) ** 6)


def test_errors_are_not_cached():
    explorer, calls = _power_explorer()
    explorer.controls["n"].value = 5
    explorer.controls["n"].value = 2
    explorer.controls["n"].value = 5
    assert calls.count((5, 1)) == 2


def test_explorer_shows_the_device_and_displays_as_a_widget():
    explorer, _ = _power_explorer()
    assert explorer.device_label.value.startswith(f"Runs on: {CPU}")
    assert explorer.device_label in explorer.widget.children
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_explorer_refuses_bad_construction():
    with pytest.raises(ValueError, match="controls="):
        widgets.Explorer({}, lambda: 0, lambda r: None, "empty", device=CPU)
    with pytest.raises(TypeError, match=r"controls\['n'\]=3 is not allowed: a control needs a .value"):
        widgets.Explorer({"n": 3}, lambda n: 0, lambda r: None, "bad", device=CPU)
    with pytest.raises(ValueError, match="cache_size=0"):
        _power_explorer(cache_size=0)


def test_start_here_explorer_redraws_per_layer_rms_when_depth_changes():
    explorer = widgets.start_here_explorer(device=CPU)
    assert explorer.last_result.num_layers == 10
    before = explorer.last_figure_data[0]["lines"][0]
    explorer.controls["depth"].value = 14
    result = explorer.last_result
    x, y = explorer.last_figure_data[0]["lines"][0]
    assert result.num_layers == 14 and "d14" in result.label
    np.testing.assert_array_equal(x, np.arange(1, 15))
    np.testing.assert_allclose(y, result.rms)
    assert len(before[1]) == 10
    assert "d14" in explorer.last_text and "of f_1 (logits)" in explorer.last_text
    assert "k = 1: logits" in explorer.last_figure_data[0]["xlabel"]


def test_start_here_explorer_explains_an_impossible_combination():
    explorer = widgets.start_here_explorer(device=CPU)
    explorer.controls["activation"].value = "tanh"
    explorer.controls["init"].value = "looks_linear"
    assert "Could not run this setting" in explorer.last_error
    assert "init='looks_linear'" in explorer.last_error
    explorer.controls["init"].value = "xavier"
    assert explorer.last_error is None and explorer.last_result.label.startswith("tanh/none/xavier")


def test_start_here_explorer_bad_arguments():
    with pytest.raises(ValueError, match="depth=99"):
        widgets.start_here_explorer(device=CPU, depth=99)


def test_plot_layer_rms_draws_the_values_against_k():
    rms = np.array([4.0, 2.0, 1.0, 0.5, 0.25, 0.125])
    fig = plots.plot_layer_rms(rms, title="t", label="net")
    (ax,) = fig.axes
    x, y = ax.get_lines()[0].get_data()
    np.testing.assert_array_equal(x, np.arange(1, 7))
    np.testing.assert_array_equal(y, rms)
    assert ax.get_yscale() == "log"  # spans a factor 32
    assert ax.get_title() == "t" and ax.get_legend() is not None


def test_plot_layer_rms_uses_a_linear_axis_for_a_narrow_range_and_a_given_ax():
    fig, ax = plt.subplots()
    assert plots.plot_layer_rms(np.array([1.0, 1.2, 0.9]), ax=ax) is fig
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0.0


def test_plot_layer_rms_reports_overflow_instead_of_drawing_it():
    fig = plots.plot_layer_rms(np.array([np.inf, np.nan, 3.0, 1.0]))
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [3, 4])
    assert any("overflow (inf/NaN) at k = 1, 2" in text.get_text() for text in ax.texts)


@pytest.mark.parametrize(
    "rms, ax, error, message",
    [
        (np.array([]), None, ValueError, "rms: expected a non-empty 1-d array"),
        (np.ones((2, 2)), None, ValueError, "rms: expected"),
        (np.ones(3), "axes", TypeError, "ax='axes'"),
    ],
)
def test_plot_layer_rms_bad_input(rms, ax, error, message):
    with pytest.raises(error, match=message):
        plots.plot_layer_rms(rms, ax=ax)
