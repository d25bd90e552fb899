"""The one definition of exploding applied to profiles, the derived mean-field rates, the honest
GSC figure and the explorers' clamping notice (issue 14, chapters 03, 05 and 06)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import CPU

from explodegrad import widgets
from explodegrad.claims import thresholds
from explodegrad.claims.explosion import (
    EXPLOSION_WORDS,
    explosion_verdict,
    explosion_word,
    justification,
)
from explodegrad.claims.verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE
from explodegrad.core.data import load_digits
from explodegrad.core.nets import build_mlp
from explodegrad.measures.gsc import fit_explosion_rate, gsc_profile
from explodegrad.plots.gsc import RATE_NOTE_GID, plot_gsc_profile, rate_note
from explodegrad.plots.theme import ACTIVATION_COLORS, NORM_COLORS
from explodegrad.studies.survey import (
    BATCHNORM_RELU_MEAN_FIELD_RATE,
    gaussian_moments,
    mean_field_rate,
)
from explodegrad.widgets.controls import clamp_notes


@pytest.fixture(scope="module")
def digits_batch():
    return load_digits(dtype=torch.float64).batch(128, seed=0)


def _profile(digits_batch, norm, depth=12, activation="relu", init="he"):
    net = build_mlp(depth, 48, activation, norm=norm, init=init, dtype=torch.float64)
    return gsc_profile(net, *digits_batch)


# ----------------------------------------------------------------------------- the definition


def test_explosion_verdict_reads_a_profile_a_fit_and_a_table_row():
    exploding = fit_explosion_rate(np.arange(1, 22), 0.3 * 1.2 ** np.arange(1, 22))
    flat = fit_explosion_rate(np.arange(1, 22), np.full(21, 0.4) * (1 + 0.01 * (-1) ** np.arange(21)))
    assert explosion_verdict(exploding, "steep").verdict == HOLDS
    assert explosion_verdict(flat, "flat").verdict == DOES_NOT_HOLD
    row = {"label": "x/y", "rate": thresholds.EXPLODING_RATE + 0.001, "r_squared": 0.99}
    edge = explosion_verdict(row)
    assert edge.verdict == INCONCLUSIVE and edge.line.startswith("x/y: r = 1.021")
    series = pd.Series({"label": "s/t", "rate": 1.2, "r_squared": 0.99})
    assert explosion_verdict(series).verdict == HOLDS and explosion_verdict(series).line.startswith("s/t")
    assert [explosion_word(m) for m in (exploding, flat, row)] == ["explodes", "no", "borderline"]
    assert set(EXPLOSION_WORDS) == {HOLDS, DOES_NOT_HOLD, INCONCLUSIVE}


def test_explosion_verdict_on_measured_profiles_and_overflow(digits_batch):
    batch = _profile(digits_batch, "batch")
    assert explosion_verdict(batch).verdict == HOLDS and batch.label in explosion_verdict(batch).line
    assert explosion_verdict({"rate": math.nan, "r_squared": math.nan}).verdict == INCONCLUSIVE


@pytest.mark.parametrize("bad", [1.2, "relu/batch", {"rate": 1.2}, None])
def test_explosion_verdict_refuses_what_holds_no_rate(bad):
    with pytest.raises(TypeError, match="measured="):
        explosion_verdict(bad)


def test_justification_quotes_the_thresholds():
    text = justification()
    assert f"r = {thresholds.EXPLODING_RATE:g}" in text and f"{thresholds.EXPLODING_RATE**50:.1f}" in text
    assert f"R^2 > {thresholds.EXPLODING_R_SQUARED:g}" in text and "per residual block" in text


# ----------------------------------------------------------------------------- mean-field rates


def test_gaussian_moments_of_relu_are_the_known_integrals():
    moments = gaussian_moments("relu")
    assert moments["mean"] == pytest.approx(1 / math.sqrt(2 * math.pi), abs=1e-13)
    assert moments["second_moment"] == pytest.approx(0.5, abs=1e-13)
    assert moments["slope_sq"] == pytest.approx(0.5, abs=1e-13)
    assert moments["variance"] == pytest.approx(0.5 - 1 / (2 * math.pi), abs=1e-13)
    assert gaussian_moments("linear")["second_moment"] == pytest.approx(1.0, abs=1e-13)


def test_mean_field_rates_derived():
    assert mean_field_rate("relu", "batch") == pytest.approx(BATCHNORM_RELU_MEAN_FIELD_RATE, abs=1e-12)
    assert mean_field_rate("relu", "layer") == pytest.approx(1.0, abs=1e-12)
    assert mean_field_rate("linear", "batch") == pytest.approx(1.0, abs=1e-12)
    tanh = mean_field_rate("tanh", "batch")
    assert tanh == pytest.approx(mean_field_rate("tanh", "layer"), abs=1e-12)  # tanh is odd: mean 0
    assert 1.08 < tanh < 1.09


def test_mean_field_rate_refuses_bad_names():
    with pytest.raises(ValueError, match="norm='none'"):
        mean_field_rate("relu", "none")
    with pytest.raises(ValueError, match="activation='swish'"):
        mean_field_rate("swish", "batch")


def test_derived_batch_norm_rate_matches_a_measured_profile(digits_batch):
    measured = _profile(digits_batch, "batch", depth=20).rate
    assert abs(measured - mean_field_rate("relu", "batch")) < thresholds.MEAN_FIELD_TOLERANCE
    layer = _profile(digits_batch, "layer", depth=20, activation="tanh", init="xavier").rate
    assert abs(layer - mean_field_rate("tanh", "layer")) < 2 * thresholds.MEAN_FIELD_TOLERANCE


# ----------------------------------------------------------------------------- figures


def test_gsc_figure_spans_two_decades_and_prints_the_rate_and_verdict(digits_batch):
    flat = _profile(digits_batch, "none")
    ax = plot_gsc_profile(flat).axes[0]
    low, high = ax.get_ylim()
    assert math.log10(high / low) >= 2.0 - 1e-9
    notes = [t.get_text() for t in ax.texts if t.get_gid() == RATE_NOTE_GID]
    assert notes[0] == f"r = {flat.rate:.3f} per layer"
    assert explosion_word(flat) in ("no", "borderline") and "explode" in rate_note(flat)
    steep = _profile(digits_batch, "batch", depth=30)
    low, high = plot_gsc_profile(steep).axes[0].get_ylim()
    assert low <= np.min(steep.gsc) and high >= np.max(steep.gsc)
    assert rate_note(steep).endswith(f"explodes (R² {steep.fit.r_squared:.2f})")


def test_one_palette_names_every_norm_and_activation_with_distinct_colours():
    colours = list(NORM_COLORS.values()) + list(ACTIVATION_COLORS.values())
    assert len(colours) == len(set(colours))
    assert set(NORM_COLORS) == {"none", "batch", "layer"}


# ----------------------------------------------------------------------------- explorers


def test_an_explorer_says_when_a_value_set_from_code_was_clamped():
    explorer = widgets.gsc_explorer(depth=6, width=16, device=CPU, max_depth=10)
    notice = next(x for x in explorer.widget.children if "explodegrad-clamp-notice" in x._dom_classes)
    assert clamp_notes(notice) == ""
    explorer.controls["depth"].value = 99
    assert explorer.controls["depth"].value == 10
    assert clamp_notes(notice) == "depth = 99 is outside its range 2 to 10: set to 10 instead"
    explorer.controls["depth"].value = 8
    assert clamp_notes(notice) == ""


def test_dilution_explorer_init_follows_the_activation_or_is_chosen():
    explorer = widgets.dilution_explorer(depth=6, width=16, device=CPU)
    assert explorer.controls["init"].value == "default" and "/he" in explorer.last_result.label
    explorer.controls["activation"].value = "tanh"
    assert "/xavier" in explorer.last_result.label
    explorer.controls["init"].value = "he"
    assert "tanh/batch/he" in explorer.last_result.label
    explorer.controls["residual_scale"].value = 1000.0
    notice = next(x for x in explorer.widget.children if "explodegrad-clamp-notice" in x._dom_classes)
    assert "residual scale = 1000 is outside its range" in clamp_notes(notice)


def test_gsc_explorer_line_gives_the_rate_with_its_verdict_before_the_level():
    explorer = widgets.gsc_explorer(depth=8, width=16, device=CPU, norm="batch")
    profile = explorer.last_result
    assert explorer.last_text.startswith(f"{profile.label}: {rate_note(profile)}; GSC(L, 0) = ")
    assert "a level" in explorer.last_text
