"""The course's explorers, headless: every control reruns the experiment and changes the figure,
view controls only redraw, a repeated setting comes from the cache, a bad combination shows a
message, and each explorer says where it runs."""

from pathlib import Path

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from helpers import CPU

from explodegrad import widgets
from explodegrad.measures.gsc import GSCProfile
from explodegrad.plots.theme import OVERFLOW_MARKER_GID
from explodegrad.widgets import base
from explodegrad.widgets.base import figure_data, render_png

SMALL = {"depth": 6, "width": 16, "device": CPU}


@pytest.fixture
def fast_render(monkeypatch):
    """Stand-in for PNG rendering (the slow part on a small CPU): bytes of what the figure
    shows, so that equal data gives equal 'images' and any change in the drawing changes them.
    Tests that compare real PNGs do not use it."""

    def render(fig, dpi=None, canvas=None):
        return repr(
            [
                (
                    p["title"],
                    p["xlabel"],
                    p["ylabel"],
                    p["texts"],
                    [(x.tolist(), y.tolist()) for x, y in p["lines"]],
                )
                for p in figure_data(fig)
            ]
        ).encode()

    monkeypatch.setattr(base, "render_png", render)


def change_each_control(explorer, new_values):
    """Set each control to a new value; every change must rerun and redraw a different image."""
    for name, value in new_values.items():
        runs, before = explorer.runs, explorer.last_drawing.png_hash
        explorer.controls[name].value = value
        assert explorer.last_error is None, (name, explorer.last_error)
        assert explorer.runs == runs + 1, name
        assert explorer.last_drawing.png_hash != before, name


# ----------------------------------------------------------------------------- GSC


@pytest.fixture
def gsc(fast_render):
    return widgets.gsc_explorer(**SMALL)


def test_gsc_explorer_every_control_reruns_and_redraws(gsc):
    assert isinstance(gsc.last_result, GSCProfile) and gsc.last_result.num_layers == 6
    change_each_control(
        gsc,
        {
            "depth": 8,
            "width": 24,
            "activation": "tanh",
            "norm": "batch",
            "init": "orthogonal",
            "residual": True,
            "residual_scale": 0.3,
        },
    )
    profile = gsc.last_result
    assert profile.label == "tanh/batch/orthogonal d8 w24 res x0.3"
    np.testing.assert_array_equal(gsc.last_figure_data[0]["lines"][0][1], profile.gsc)
    np.testing.assert_array_equal(gsc.last_figure_data[1]["lines"][0][1], profile.output_grad_norms)
    assert "d8 w24" in gsc.last_text and "GSC(L, 0)" in gsc.last_text


def test_gsc_explorer_measures_what_the_library_measures(gsc):
    from explodegrad.core.nets import build_mlp
    from explodegrad.measures.gsc import gsc_profile
    from explodegrad.widgets.controls import digits_batch

    x, y = digits_batch(CPU.device)
    expected = gsc_profile(build_mlp(6, 16, in_features=64, out_features=10), x, y)
    np.testing.assert_allclose(gsc.last_result.gsc, expected.gsc, rtol=1e-6)
    assert gsc.last_result.probe_is_exact and x.shape[0] == 128


def test_gsc_raw_toggle_only_redraws(gsc):
    runs = gsc.runs
    assert len(gsc.last_figure_data) == 2
    gsc.view_controls["raw"].value = False
    assert gsc.runs == runs and len(gsc.last_figure_data) == 1
    gsc.view_controls["raw"].value = True
    assert len(gsc.last_figure_data) == 2 and gsc.status.value.endswith("from cache")


def test_gsc_cache_returns_the_same_png_for_a_repeated_setting():
    gsc = widgets.gsc_explorer(**SMALL)  # real PNG rendering
    assert gsc.last_png.startswith(b"\x89PNG")
    first = gsc.last_drawing
    gsc.controls["depth"].value = 7
    assert gsc.last_drawing.png_hash != first.png_hash
    runs = gsc.runs
    gsc.controls["depth"].value = 6
    assert gsc.runs == runs and gsc.cache_hits >= 1
    assert gsc.last_drawing.png_hash == first.png_hash
    for (x0, y0), (x1, y1) in zip(first.data[0]["lines"], gsc.last_figure_data[0]["lines"]):
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(y0, y1)
    assert gsc.last_timings["experiment"] == 0.0


def test_gsc_bad_residual_depth_shows_a_message_and_keeps_working(gsc):
    gsc.controls["residual"].value = True  # depth 6 = 2 + 2 blocks of 2: fine
    assert gsc.last_error is None
    gsc.controls["depth"].value = 7
    assert gsc.last_error.startswith("Could not run this setting: depth=7")
    assert "depth must be 2 + a positive multiple of block_depth" in gsc.last_error
    assert "Traceback" not in gsc.last_error and gsc.last_drawing is None
    assert gsc.status.value.startswith("Could not run")
    gsc.controls["depth"].value = 8
    assert gsc.last_error is None and gsc.last_result.num_layers == 5  # input, 3 blocks, readout


def test_gsc_looks_linear_needs_relu(gsc):
    gsc.set(activation="tanh", init="looks_linear")
    assert "cannot be served by init='looks_linear'" in gsc.last_error


def test_gsc_overflow_is_drawn_not_raised(fast_render):
    # linear layers of gain sqrt(128) ~ 11 per layer: 11^40 is past float32's 3e38
    explorer = widgets.gsc_explorer(depth=40, width=128, activation="linear", init="gaussian", device=CPU)
    assert explorer.last_error is None and explorer.last_result.overflowed
    panel = explorer.last_figure_data[0]
    assert any("overflowed" in text for text in panel["texts"])


def test_gsc_residual_scale_follows_the_checkbox(gsc):
    assert gsc.controls["residual_scale"].disabled
    gsc.controls["residual"].value = True
    assert not gsc.controls["residual_scale"].disabled


def test_gsc_explorer_is_findable_and_shows_the_device(gsc):
    assert gsc.controls["depth"].description == "depth"
    assert "explodegrad-gsc" in gsc.widget._dom_classes
    assert gsc.device_label.value.startswith(f"Runs on: {CPU}")
    assert all(getattr(c, "continuous_update", False) is False for c in gsc.controls.values())
    bundle = gsc._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_set_changes_several_controls_with_one_run(gsc):
    runs = gsc.runs
    gsc.set(depth=9, width=8, raw=False)
    assert gsc.runs == runs + 1 and gsc.last_result.label == "relu/none/he d9 w8"
    with pytest.raises(ValueError, match="lr=0.1 is not a control of this explorer"):
        gsc.set(lr=0.1)


# ----------------------------------------------------------------------------- the others


def test_domain_explorer_every_control_reruns_and_redraws(fast_render):
    explorer = widgets.domain_explorer(**SMALL)
    change_each_control(
        explorer,
        {
            "depth": 8,
            "width": 24,
            "activation": "relu",
            "norm": "layer",
            "init": "he",
            "residual": True,
            "residual_scale": 0.5,
        },
    )
    stats = explorer.last_result
    for panel, field in zip(
        explorer.last_figure_data, ("preact_std_relative", "sign_diversity", "linear_fit_error")
    ):
        np.testing.assert_array_equal(panel["lines"][0][1], getattr(stats, field))
    assert "layer k = 2" in explorer.last_text


def test_dilution_explorer_steps_through_valid_depths_only(fast_render):
    explorer = widgets.dilution_explorer(**SMALL)
    depth = explorer.controls["depth"]
    assert (depth.min, depth.step, (depth.max - 2) % 2) == (4, 2, 0)
    change_each_control(
        explorer, {"depth": 8, "width": 24, "activation": "tanh", "norm": "none", "residual_scale": 0.1}
    )
    result = explorer.last_result
    np.testing.assert_array_equal(explorer.last_figure_data[0]["lines"][1][1], result.predicted_block_gsc)
    assert result.method == "probe" and result.layers.size == 3
    with pytest.raises(ValueError, match="depth=7 is not allowed"):
        widgets.dilution_explorer(depth=7, device=CPU)


def test_chain_explorer_reruns_and_runs_on_the_cpu(fast_render):
    explorer = widgets.chain_explorer(depth=10, weight=1.5)
    change_each_control(explorer, {"depth": 12, "weight": 0.8})
    scalar = explorer.last_result.scalar
    np.testing.assert_allclose(explorer.last_figure_data[0]["lines"][0][1], 0.8 ** np.arange(1, 13))
    assert scalar.depth == 12 and "w^12" in explorer.last_text
    assert "cpu" in explorer.device_label.value and "float64" in explorer.device_label.value


def test_training_explorer_progress_rerun_and_divergence(fast_render):
    explorer = widgets.training_explorer(depth=3, width=8, steps=20, **{"device": CPU})
    progress = explorer.progress
    assert progress.widget in explorer.widget.children
    assert progress.bar.value == progress.bar.max == 20 and progress.bar.bar_style == "success"
    assert progress.first_update_at is not None and progress.first_update_at - progress.started_at < 1.0
    history = explorer.last_result
    np.testing.assert_array_equal(explorer.last_figure_data[0]["lines"][0][1], history.train_loss)
    change_each_control(
        explorer,
        {
            "lr": 0.1,
            "optimizer": "adam",
            "clipping": "norm",
            "clip": 0.1,
            "depth": 4,
            "width": 16,
            "norm": "batch",
            "activation": "tanh",
            "init": "xavier",
            "residual": True,
        },
    )
    assert explorer.last_result.settings.clip_norm == pytest.approx(0.1)
    explorer.set(
        residual=False,
        init="gaussian",
        norm="none",
        activation="linear",
        optimizer="sgd",
        clipping="none",
        lr=3.0,
        depth=8,
        width=64,
    )
    assert explorer.last_error is None and explorer.last_result.diverged
    assert progress.bar.bar_style == "danger" and "diverged at step" in explorer.last_text
    markers = [panel for panel in explorer.last_figure_data if any("diverged" in t for t in panel["texts"])]
    assert markers


def test_training_explorer_bad_setting_resets_progress(fast_render):
    explorer = widgets.training_explorer(depth=3, width=8, steps=5, device=CPU)
    explorer.set(residual=True, depth=5)
    assert "depth=5 is not allowed" in explorer.last_error
    assert explorer.progress.bar.bar_style == "danger"


# ----------------------------------------------------------------------------- the pattern itself


def test_cpu_experiments_run_with_limited_threads_and_threads_are_restored(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # as on a 2-core machine
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    explorer = widgets.Explorer(
        {"n": w.IntSlider(value=1)}, lambda n: n, lambda r: plt.figure(), "t", device=CPU
    )
    assert calls == [1, 2]  # one thread while the experiment runs, then back to two
    assert explorer.device_label.value == f"Runs on: {CPU}; experiments use 1 thread(s)"
    calls.clear()
    widgets.Explorer(
        {"n": w.IntSlider(value=1)}, lambda n: n, lambda r: plt.figure(), "t", device=CPU, cpu_threads=None
    )
    assert calls == []


def test_view_controls_must_not_clash_and_render_png_is_deterministic():
    with pytest.raises(ValueError, match="view_controls: 'n' is also an experiment control"):
        widgets.Explorer(
            {"n": w.IntSlider()},
            lambda n: n,
            lambda r, n: None,
            "t",
            device=CPU,
            view_controls={"n": w.Checkbox()},
        )
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 2])
    assert render_png(fig) == render_png(fig)


def test_an_error_while_drawing_is_shown_too():
    def draw(result):
        raise RuntimeError("no canvas")

    explorer = widgets.Explorer({"n": w.IntSlider(value=1)}, lambda n: n, draw, "t", device=CPU)
    assert explorer.last_error == "Could not run this setting: n=1 — RuntimeError: no canvas"


def test_overflow_marker_survives_into_the_explorer_figure():
    explorer = widgets.gsc_explorer(
        depth=40, width=128, activation="linear", init="gaussian", device=CPU, raw=False
    )  # real PNG rendering of an overflow
    fig = explorer.last_figure
    assert any(line.get_gid() == OVERFLOW_MARKER_GID for line in fig.axes[0].get_lines())


def test_explorer_files_mirror_the_measures_studies_and_training_they_rerun():
    """widgets/<name>.py reruns measures/, studies/ or training/<name>.py and draws with plots/<name>.py."""
    root = Path(widgets.__file__).parent.parent
    homes = {p.stem for layer in ("measures", "studies", "training") for p in (root / layer).glob("[!_]*.py")}
    explorers = {p.stem for p in (root / "widgets").glob("[!_]*.py")} - {"base", "controls"}
    assert explorers <= homes, f"explorer files without a home: {sorted(explorers - homes)}"
    plot_files = {p.stem for p in (root / "plots").glob("[!_]*.py")}
    assert explorers <= plot_files, f"explorer files without a plot file: {sorted(explorers - plot_files)}"


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_an_explorer_takes_a_device_by_name_as_studies_do(device):
    explorer = widgets.gsc_explorer(depth=6, width=16, device=device)  # was an AttributeError
    assert explorer.device.device == torch.device("cpu")
    assert explorer.device_label.value.startswith("Runs on: cpu (CPU")
