"""Tests of the gradient scale coefficient: identities, known rates, overflow and bad input."""

import copy
import json
import math

import numpy as np
import pytest
import torch

from explodegrad import build_mlp
from explodegrad.core.nets import per_example_loss
from explodegrad.measures.gsc import (
    DEFAULT_NUM_PROBES,
    default_num_probes,
    fit_explosion_rate,
    gsc_matrix,
    gsc_profile,
    relative_perturbation_gain,
)

MEAN_FIELD_RELU_BN_RATE = math.sqrt(math.pi / (math.pi - 1))  # ~1.2113 per layer


def gaussian_batch(
    batch: int, features: int, classes: int, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, features, generator=generator, dtype=torch.float64).to(dtype)
    y = torch.randint(0, classes, (batch,), generator=generator)
    return x, y


def small_net(
    activation: str = "tanh", norm: str = "none", init: str = "xavier", depth: int = 5, width: int = 8, **kw
) -> torch.nn.Module:
    return build_mlp(
        depth, width, activation, norm, init, in_features=6, out_features=4, dtype=torch.float64, **kw
    )


# ----------------------------------------------------------------------------- identities


def test_orthogonal_linear_network_has_gsc_one_for_every_pair_exact_and_probe():
    net = build_mlp(
        5, 12, "linear", "none", "orthogonal", in_features=12, out_features=12, dtype=torch.float64
    )
    x, _ = gaussian_batch(10, 12, 12, dtype=torch.float64)
    for method in ("exact", "probe"):
        table = gsc_matrix(net, x, method=method)  # no targets: layers 1 .. L + 1
        assert table.layers.tolist() == list(range(1, 7))
        below = np.tril(np.ones_like(table.gsc, dtype=bool), k=-1)
        # Rademacher probes are exact here too: ||Q^T v|| = ||v|| for orthogonal Q. (The
        # initializer draws Q in float32, so it is orthogonal to ~1e-8.)
        np.testing.assert_allclose(table.gsc[below], 1.0, rtol=1e-6)
        assert np.isnan(table.gsc[~below]).all()
        assert table.at(6, 1) == pytest.approx(1.0, rel=1e-6)


def test_rescaling_weights_leaves_gsc_unchanged_while_raw_gradients_scale_by_powers():
    # Weights x a and inputs x a^-depth: the logits and losses are unchanged, f_k shrinks by
    # a^(1 - k), so d loss / d f_k grows by exactly a^(k - 1) and every dL/dW shrinks by 1/a.
    a, depth = 3.0, 6
    net = build_mlp(depth, 10, "linear", "none", "he", in_features=10, out_features=5, dtype=torch.float64)
    scaled = copy.deepcopy(net)
    with torch.no_grad():
        for linear in scaled.linear_layers():
            linear.weight.mul_(a)
    x, y = gaussian_batch(16, 10, 5, dtype=torch.float64)
    before = gsc_profile(net, x, y, method="exact")
    after = gsc_profile(scaled, x * a**-depth, y, method="exact")
    np.testing.assert_allclose(after.gsc, before.gsc, rtol=1e-9)
    np.testing.assert_allclose(
        after.output_grad_norms / before.output_grad_norms, a ** (before.layers - 1.0), rtol=1e-9
    )
    np.testing.assert_allclose(after.weight_grad_norms[:-1] / before.weight_grad_norms[:-1], 1 / a, rtol=1e-9)
    assert np.isnan(after.weight_grad_norms[-1])  # the input has no weights
    # Plain rescaling of every weight, measured from the logits: GSC unchanged, raw gradient
    # of f_k w.r.t. the logits (jacobian norm) grows like a^(k - 1).
    ref1_before = gsc_profile(net, x, reference=1, method="exact")
    ref1_after = gsc_profile(scaled, x, reference=1, method="exact")
    np.testing.assert_allclose(ref1_after.gsc, ref1_before.gsc, rtol=1e-9)
    np.testing.assert_allclose(
        ref1_after.jacobian_qm_norms / ref1_before.jacobian_qm_norms,
        a ** (ref1_before.layers - 1.0),
        rtol=1e-9,
    )


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_single_rademacher_probe_is_exact_without_batch_coupling(norm):
    net = small_net(norm=norm)
    x, y = gaussian_batch(12, 6, 4, dtype=torch.float64)
    probe = gsc_profile(net, x, y)
    exact = gsc_profile(net, x, y, method="exact")
    assert probe.num_probes == 1 and probe.probe_is_exact
    np.testing.assert_allclose(probe.gsc, exact.gsc, rtol=1e-10)


def test_single_probe_is_exact_in_float32_to_float_precision():
    net = build_mlp(6, 16, "relu", "none", "he", in_features=6, out_features=4)
    x, y = gaussian_batch(12, 6, 4)
    np.testing.assert_allclose(
        gsc_profile(net, x, y).gsc, gsc_profile(net, x, y, method="exact").gsc, rtol=1e-5
    )


@pytest.mark.parametrize("reference", [0, 1])
def test_probes_agree_with_exact_jacobian_on_batch_norm_network(reference):
    net = small_net("relu", "batch", "he", depth=6, width=16)
    x, y = gaussian_batch(16, 6, 4, dtype=torch.float64)
    exact = gsc_profile(net, x, y, reference=reference, method="exact")
    probe = gsc_profile(net, x, y, reference=reference, num_probes=64, seed=3)
    assert not probe.probe_is_exact and probe.num_probes == 64
    assert np.max(np.abs(probe.gsc / exact.gsc - 1)) < 0.05


def test_default_probe_counts():
    plain, batch_norm = small_net(), small_net(norm="batch")
    assert default_num_probes(plain, 0) == 1
    assert default_num_probes(plain, 0, "gaussian") == DEFAULT_NUM_PROBES
    assert default_num_probes(plain, 1) == DEFAULT_NUM_PROBES
    assert default_num_probes(batch_norm, 0) == DEFAULT_NUM_PROBES


def test_matrix_columns_match_profiles_and_residual_numbering():
    net = small_net("relu", "none", "he", depth=6, residual=True)  # input layer, 2 blocks, readout
    x, y = gaussian_batch(10, 6, 4, dtype=torch.float64)
    table = gsc_matrix(net, x, y, method="exact")
    assert table.layers.tolist() == list(range(0, net.num_layers + 2))
    for reference in (0, 2):
        profile = gsc_profile(net, x, y, reference=reference, method="exact")
        column = [table.at(k, reference) for k in profile.layers]
        np.testing.assert_allclose(column, profile.gsc, rtol=1e-10)
    # and the probe path on the residual net (reference 0, one probe: exact)
    np.testing.assert_allclose(gsc_profile(net, x, y).gsc, table.gsc[1:, 0], rtol=1e-10)


@pytest.mark.parametrize("norm, residual", [("none", False), ("batch", False), ("batch", True)])
def test_raw_gradient_norms_match_an_ordinary_backward_pass(norm, residual):
    net = small_net("relu", norm, "he", depth=6, residual=residual)
    x, y = gaussian_batch(12, 6, 4, dtype=torch.float64)
    profile = gsc_profile(net, x, y)
    reference_net = copy.deepcopy(net)
    outputs, h = [], x.clone().requires_grad_(True)
    outputs.append(h)
    for unit in reference_net.units:
        h = unit(h)
        outputs.append(h)
    loss = per_example_loss(h, y).mean()
    linears = [unit for unit in reference_net.units]
    weights = [[m.weight for m in unit.modules() if isinstance(m, torch.nn.Linear)] for unit in linears]
    flat = [w for group in weights for w in group]
    grads = torch.autograd.grad(loss, outputs + flat)
    # outputs run input -> logits; the profile runs k = 1 (logits) -> L + 1 (input)
    expected_out = [float(g.norm()) for g in grads[: len(outputs)]][::-1]
    np.testing.assert_allclose(profile.output_grad_norms, expected_out, rtol=1e-10)
    weight_grads = iter(grads[len(outputs) :])
    per_unit = [math.sqrt(sum(float(next(weight_grads).pow(2).sum()) for _ in group)) for group in weights]
    np.testing.assert_allclose(profile.weight_grad_norms[:-1], per_unit[::-1], rtol=1e-10)


def test_measurement_leaves_modes_and_running_statistics_alone():
    net = small_net("relu", "batch", "he")
    x, y = gaussian_batch(12, 6, 4, dtype=torch.float64)
    train_profile = gsc_profile(net, x, y, method="exact")
    net.eval()
    saved = copy.deepcopy(net.state_dict())
    eval_profile = gsc_profile(net, x, y, method="exact")
    assert not net.training and not any(m.training for m in net.modules())
    for key, value in net.state_dict().items():
        assert torch.equal(value, saved[key]), key
    np.testing.assert_allclose(eval_profile.gsc, train_profile.gsc, rtol=1e-12)  # batch statistics


def test_relative_perturbation_gain_matches_gsc_in_mean_square():
    net = build_mlp(6, 32, "tanh", "none", "xavier", in_features=16, out_features=4, dtype=torch.float64)
    x, y = gaussian_batch(64, 16, 4, dtype=torch.float64)
    profile = gsc_profile(net, x, y, method="exact")
    for k in (2, 4, 7):
        gains = np.array([relative_perturbation_gain(net, x, y, k, seed=s) for s in range(12)])
        assert np.sqrt(np.mean(gains**2)) == pytest.approx(profile.gsc_at(k), rel=0.1)
    logits_gain = np.mean([relative_perturbation_gain(net, x, None, 5, l=1, seed=s) for s in range(12)])
    expected = gsc_profile(net, x, reference=1, method="exact").gsc_at(5)
    assert logits_gain == pytest.approx(expected, rel=0.1)


# ----------------------------------------------------------------------------- known rates


def test_relu_batch_norm_explodes_at_mean_field_rate_and_plain_relu_does_not():
    x, y = gaussian_batch(256, 100, 10)
    for seed in (0, 1):
        net = build_mlp(50, 100, "relu", "batch", "he", in_features=100, seed=seed)
        profile = gsc_profile(net, x, y)
        assert profile.fit.ok and profile.fit.r_squared > 0.99
        assert 1.15 < profile.rate < 1.27, (profile.rate, MEAN_FIELD_RELU_BN_RATE)
    plain = gsc_profile(build_mlp(50, 100, "relu", "none", "he", in_features=100), x, y)
    assert plain.fit.ok and plain.rate < 1.05
    assert plain.overflow_layer is None and plain.num_layers == 50 and plain.layers[-1] == 51


def test_fit_recovers_a_known_geometric_law_and_its_window():
    layers = np.arange(1, 12)  # reference 0, L = 10
    gsc = 2.0 * 1.3**layers
    gsc[0] = 1e-3  # k = 1 (the loss alone) is left out of the default window
    gsc[-1] = 1e6  # so is the input k = L + 1
    fit = fit_explosion_rate(layers, gsc)
    assert fit.ok and fit.fit_range == (2, 10) and fit.num_points == 9
    assert fit.rate == pytest.approx(1.3, rel=1e-12) and fit.intercept == pytest.approx(2.0, rel=1e-12)
    assert fit.r_squared == pytest.approx(1.0)
    assert fit.predict(5) == pytest.approx(2.0 * 1.3**5)
    narrow = fit_explosion_rate(layers, gsc, fit_range=(4, 6))
    assert narrow.num_points == 3 and narrow.rate == pytest.approx(1.3)
    flat = fit_explosion_rate(layers, np.ones(11))
    assert flat.ok and flat.rate == pytest.approx(1.0) and flat.r_squared == 1.0


def test_fit_reports_non_finite_and_too_few_points():
    layers = np.arange(1, 12)
    gsc = 1.2**layers
    gsc[5] = np.inf
    broken = fit_explosion_rate(layers, gsc)
    assert not broken.ok and np.isnan(broken.rate) and "6" in broken.message
    zero = fit_explosion_rate(layers, np.where(layers == 3, 0.0, 1.0))
    assert not zero.ok
    short = fit_explosion_rate([1, 2, 3], [1.0, 2.0, 4.0])
    assert not short.ok and "at least" in short.message


# ----------------------------------------------------------------------------- overflow


def test_forward_overflow_is_reported_not_raised():
    net = build_mlp(50, 100, "linear", "none", "gaussian", init_scale=1.0, in_features=100)
    x, y = gaussian_batch(16, 100, 10)
    profile = gsc_profile(net, x, y)  # the gain per layer is ~10: f_k passes 1e38 near k = 13
    assert profile.overflowed and 5 < profile.overflow_layer < 25
    assert f"overflowed to inf at layer {profile.overflow_layer}" in profile.message
    assert not profile.fit.ok and "no rate fitted" in profile.message
    json.dumps(profile.to_dict(), allow_nan=False)


def test_gradient_overflow_is_reported_with_its_layer():
    net = build_mlp(50, 100, "linear", "none", "gaussian", init_scale=1.0, in_features=100)
    x, y = gaussian_batch(16, 100, 10)
    # Tiny inputs keep the forward pass finite (~1e25) while the backward gain 10^k overflows.
    for method in ("probe", "exact"):
        profile = gsc_profile(net, x * 1e-25, y, method=method)
        assert profile.overflowed and 30 < profile.overflow_layer < 45
        assert f"gradient overflowed to inf at layer {profile.overflow_layer}" in profile.message
        below = profile.layers < profile.overflow_layer
        assert np.isfinite(profile.gsc[below]).all() and not profile.fit.ok
    table = gsc_matrix(net, x * 1e-25, y, method="probe")
    assert table.overflow_layer == profile.overflow_layer and "not finite" in table.message


# ----------------------------------------------------------------------------- results and bad input


def test_profile_accessors_and_json():
    net = small_net()
    x, y = gaussian_batch(8, 6, 4, dtype=torch.float64)
    profile = gsc_profile(net, x, y)
    assert profile.layers.tolist() == list(range(1, 7)) and profile.num_layers == 5
    assert profile.input_gsc == profile.gsc[-1] and profile.first_layer_gsc == profile.gsc[-2]
    assert profile.gsc_at(3) == profile.gsc[2]
    assert profile.label == net.config.label()
    np.testing.assert_allclose(
        profile.gsc, profile.jacobian_qm_norms * profile.value_norms / profile.reference_norm
    )
    data = json.loads(json.dumps(profile.to_dict(), allow_nan=False))
    assert data["weight_grad_norms"][-1] is None and data["fit"]["ok"] == profile.fit.ok
    json.dumps(gsc_matrix(net, x, y).to_dict(), allow_nan=False)
    without_targets = gsc_profile(net, x, reference=2)
    assert without_targets.layers[0] == 3 and np.isnan(without_targets.output_grad_norms).all()


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda net, x, y: gsc_profile(net, x, y, reference=7), "reference"),
        (lambda net, x, y: gsc_profile(net, x, y, reference=-1), "reference"),
        (lambda net, x, y: gsc_profile(net, x), "targets"),
        (lambda net, x, y: gsc_profile(net, x[:0], y[:0]), "inputs"),
        (lambda net, x, y: gsc_profile(net, x[:, :5], y), "inputs"),
        (lambda net, x, y: gsc_profile(net, x * float("nan"), y), "inputs"),
        (lambda net, x, y: gsc_profile(net, x, y + 10), "targets"),
        (lambda net, x, y: gsc_profile(net, x, y[:3]), "targets"),
        (lambda net, x, y: gsc_profile(net, x, y, method="magic"), "method"),
        (lambda net, x, y: gsc_profile(net, x, y, probe="uniform"), "probe"),
        (lambda net, x, y: gsc_profile(net, x, y, num_probes=0), "num_probes"),
        (lambda net, x, y: gsc_profile(net, x, y).gsc_at(0), "k"),
        (lambda net, x, y: gsc_matrix(net, x, y).at(2, 3), "l"),
        (lambda net, x, y: gsc_matrix(net, x, y, num_probes=-2, method="probe"), "num_probes"),
        (lambda net, x, y: relative_perturbation_gain(net, x, y, 2, l=3), "k"),
        (lambda net, x, y: relative_perturbation_gain(net, x, y, 9), "k"),
        (lambda net, x, y: relative_perturbation_gain(net, x, y, 3, epsilon=0), "epsilon"),
        (lambda net, x, y: relative_perturbation_gain(net, x, None, 3, l=0), "targets"),
        (lambda net, x, y: fit_explosion_rate([1, 2], [1.0]), "layers"),
        (lambda net, x, y: fit_explosion_rate([1, 2, 3], [1.0, 2.0, 3.0], reference=1), "layers"),
        (lambda net, x, y: fit_explosion_rate([1, 2, 3, 4], [1.0] * 4, fit_range=(3, 2)), "fit_range"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, argument):
    net = small_net()
    x, y = gaussian_batch(8, 6, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=argument):
        call(net, x, y)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda net, x, y: gsc_profile(net, x, y.double()), "targets"),
        (lambda net, x, y: gsc_profile(torch.nn.Linear(6, 4), x, y), "net"),
        (lambda net, x, y: gsc_profile(net, x, y, num_probes=2.0), "num_probes"),
        (lambda net, x, y: gsc_profile(net, x, y, method=None), "method"),
        (lambda net, x, y: relative_perturbation_gain(net, x, y, 3, epsilon="small"), "epsilon"),
    ],
)
def test_wrong_types_raise_type_error_naming_the_argument(call, argument):
    net = small_net()
    x, y = gaussian_batch(8, 6, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match=argument):
        call(net, x, y)


def test_an_exact_jacobian_too_big_for_the_machine_is_refused_before_it_is_built(monkeypatch):
    import explodegrad.core.checks as checks

    net = small_net(depth=4)
    x, y = gaussian_batch(10, 6, 4, dtype=torch.float64)
    monkeypatch.setattr(checks, "machine_memory_bytes", lambda: 10_000)  # a 10 kB machine
    for measure in (gsc_profile, gsc_matrix):
        with pytest.raises(ValueError, match="method='exact' is not allowed: the largest full Jacobian"):
            measure(net, x, y, method="exact")
    assert np.isfinite(gsc_profile(net, x, y).gsc).all()  # the probe method builds no Jacobian


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_networks_are_measured_not_crashed(dtype):
    """build_mlp accepts half precision (chapter 01's overflow uses float16): the measures
    must give numbers for it, not numpy's or pinv's dtype errors."""
    from explodegrad.measures.paths import path_contributions

    net = build_mlp(4, 16, in_features=8, out_features=3, dtype=dtype)
    x, y = torch.randn(64, 8, generator=torch.Generator().manual_seed(0)), torch.arange(64) % 3
    reference = gsc_profile(build_mlp(4, 16, in_features=8, out_features=3, dtype=torch.float64), x, y)
    profile = gsc_profile(net, x, y)
    np.testing.assert_allclose(profile.gsc, reference.gsc, rtol=0.1)  # a few digits, the same network
    assert np.isfinite(gsc_matrix(net, x, y, method="probe").gsc[2, 0])
    assert path_contributions(net, x, y, skip="linear_fit").effective_depth >= 0
