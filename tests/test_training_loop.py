"""The training loop: optimizers against torch.optim, clipping, schedules, divergence, records."""

import math

import numpy as np
import pytest
import torch

from explodegrad import NetConfig, build_mlp, gaussian_data, load_digits
from explodegrad.training.loop import (
    TrainSettings,
    layer_slices,
    minibatches,
    train,
    train_per_seed,
    train_several,
)
from explodegrad.training.optimizers import (
    Hyperparameters,
    apply_update,
    clip_gradients,
    init_state,
    schedule_factor,
)
from explodegrad.training.stacked import NetStack

SMALL = NetConfig(depth=4, width=16)
QUICK = TrainSettings(steps=12, batch_size=32, record_every=4, eval_size=256)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def digits64():
    return load_digits(dtype=torch.float64)


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, argument",
    [
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"betas": (0.9,)}, "betas"),
        ({"betas": (0.9, 1.5)}, "betas[1]"),
        ({"schedule": "linear"}, "schedule"),
        ({"clip_norm": 0}, "clip_norm"),
        ({"clip_value": -1.0}, "clip_value"),
        ({"steps": 0}, "steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"milestones": (0.5, 1.0)}, "milestones"),
    ],
)
def test_bad_settings_name_the_argument(changes, argument):
    with pytest.raises(ValueError, match=argument.replace("[", r"\[")):
        TrainSettings().with_(**changes)


def test_a_misspelt_setting_is_a_type_error_naming_it_and_the_known_ones(digits):
    with pytest.raises(
        TypeError, match="learning_rate=0.1 is not a training setting: known settings are .*lr"
    ):
        TrainSettings().with_(learning_rate=0.1)
    with pytest.raises(TypeError, match="learning_rate=0.1 is not a training setting"):
        train(SMALL, digits, QUICK, learning_rate=0.1, progress=False)


def test_train_refuses_mismatched_data_and_too_big_batches(digits):
    with pytest.raises(ValueError, match="config: in_features=32"):
        train(NetConfig(depth=3, width=8, in_features=32), digits, QUICK, progress=False)
    with pytest.raises(ValueError, match="batch_size=5000"):
        train(SMALL, digits, QUICK, batch_size=5000, progress=False)


@pytest.mark.parametrize(
    "call, argument",
    [
        (
            lambda d: train("relu", d, QUICK, progress=False),
            "net_or_config: expected a DeepMLP or a NetConfig",
        ),
        (lambda d: train(SMALL, "digits", QUICK, progress=False), "data: expected a Dataset"),
        (lambda d: train(SMALL, d, {"lr": 0.1}, progress=False), "settings: expected a TrainSettings"),
        (lambda d: train(SMALL, d, QUICK, callback=5, progress=False), "callback: expected a function"),
        (lambda d: QUICK.with_(betas="fast"), "betas='fast'"),
        (lambda d: QUICK.with_(milestones=0.5), "milestones=0.5"),
        (lambda d: QUICK.with_(lr="0.1"), "lr='0.1'"),
        (lambda d: QUICK.with_(steps=2.5), "steps=2.5"),
        (lambda d: QUICK.with_(optimizer=3), "optimizer=3"),
        (lambda d: layer_slices("net"), "net: expected a DeepMLP"),
        (lambda d: clip_gradients([1.0, 2.0], clip_norm=1.0), "grads: expected a torch.Tensor"),
        (lambda d: init_state("sgd", [0.0], _hyper(QUICK)), "params: expected a torch.Tensor"),
    ],
)
def test_wrong_types_raise_type_error(digits, call, argument):
    with pytest.raises(TypeError, match=argument):
        call(digits)


def test_train_updates_the_networks_own_parameters_in_place(digits64):
    """No rebinding of ``p.data``: the same tensors, the same storage, new values, and the
    batch-norm running statistics of the run."""
    net = build_mlp(depth=4, width=16, norm="batch", seed=1, dtype=torch.float64)
    params = list(net.parameters())
    storage = [p.data_ptr() for p in params]
    before = [p.detach().clone() for p in params]
    history = train(net, digits64, QUICK, progress=False)
    assert all(p is q for p, q in zip(net.parameters(), params))
    assert [p.data_ptr() for p in net.parameters()] == storage
    assert all(not torch.equal(p, b) for p, b in zip(params, before))
    assert int(net.units[0].norm.num_batches_tracked) == history.steps_done == QUICK.steps
    assert not torch.equal(net.units[0].norm.running_mean, torch.zeros(16, dtype=torch.float64))


def test_epochs_replace_steps(digits):
    history = train(SMALL, digits, QUICK, epochs=1, batch_size=256, record_every=100, progress=False)
    assert history.steps_done == len(digits.x_train) // 256
    assert list(history.steps) == [0, len(digits.x_train) // 256]


# --- optimizers, clipping, schedules --------------------------------------------------------


def _hyper(settings: TrainSettings, models: int = 1, lrs=None) -> Hyperparameters:
    from explodegrad.training.loop import stack_hyperparameters

    lrs = lrs or [settings.lr] * models
    return stack_hyperparameters([settings.with_(lr=lr) for lr in lrs], None, torch.float64)


@pytest.mark.parametrize(
    "name, make",
    [
        ("sgd", lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.9, weight_decay=0.01)),
        ("adam", lambda p, lr: torch.optim.Adam([p], lr=lr, betas=(0.8, 0.99), weight_decay=0.01)),
        ("rmsprop", lambda p, lr: torch.optim.RMSprop([p], lr=lr, alpha=0.9, weight_decay=0.01)),
    ],
)
def test_updates_match_torch_optim_per_model(name, make):
    settings = TrainSettings(optimizer=name, momentum=0.9, betas=(0.8, 0.99), alpha=0.9, weight_decay=0.01)
    lrs = [0.1, 0.003]
    generator = torch.Generator().manual_seed(1)
    start = torch.randn(2, 7, generator=generator, dtype=torch.float64)
    flat = start.clone()
    hyper = _hyper(settings, lrs=lrs)
    state = init_state(name, flat, hyper)
    references = [start[m].clone().requires_grad_(True) for m in range(2)]
    optimizers = [make(p, lr) for p, lr in zip(references, lrs)]
    for _ in range(4):
        grads = torch.randn(2, 7, generator=generator, dtype=torch.float64)
        apply_update(flat, grads, state, hyper, hyper.lr)
        for m, (p, opt) in enumerate(zip(references, optimizers)):
            p.grad = grads[m].clone()
            opt.step()
    for m in range(2):
        torch.testing.assert_close(flat[m], references[m].detach(), rtol=1e-12, atol=1e-14)


def test_clip_by_norm_bounds_every_models_global_norm():
    grads = torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.4, 0.0]], dtype=torch.float64)
    clipped = clip_gradients(grads, clip_norm=torch.tensor([[1.0], [1.0]], dtype=torch.float64))
    norms = torch.linalg.vector_norm(clipped, dim=1)
    assert norms[0] <= 1.0 and norms[0] == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(clipped[1], grads[1])  # already inside the bound: unchanged
    torch.testing.assert_close(clipped[0] / norms[0], grads[0] / 5.0)  # direction kept


def test_clip_by_value_bounds_every_entry():
    grads = torch.tensor([[3.0, -4.0, 0.5], [-0.2, 9.0, -7.0]])
    clipped = clip_gradients(grads, clip_value=1.0)
    assert clipped.abs().max() <= 1.0
    torch.testing.assert_close(clipped, torch.tensor([[1.0, -1.0, 0.5], [-0.2, 1.0, -1.0]]))


@pytest.mark.parametrize("clip", [{"clip_norm": 0.05}, {"clip_value": 1e-3}])
def test_clipping_bounds_the_actual_update(digits64, clip):
    net = build_mlp(depth=4, width=16, seed=3, dtype=torch.float64)
    before = torch.cat([p.detach().reshape(-1).clone() for p in layer_slices(net)[0]])
    train(net, digits64, QUICK, optimizer="sgd", momentum=0.0, lr=1.0, steps=1, progress=False, **clip)
    change = torch.cat([p.detach().reshape(-1) for p in layer_slices(net)[0]]) - before
    if "clip_norm" in clip:  # plain SGD with lr 1: the update is minus the clipped gradient
        assert float(torch.linalg.vector_norm(change)) <= clip["clip_norm"] * (1 + 1e-6)
    else:
        assert float(change.abs().max()) <= clip["clip_value"] * (1 + 1e-6)
    assert float(change.abs().max()) > 0


def test_schedules_known_values():
    assert schedule_factor("constant", 7, 10) == 1.0
    factors = [schedule_factor("step", t, 8, gamma=0.5, milestones=(0.5, 0.75)) for t in range(1, 9)]
    assert factors == [1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25]
    assert schedule_factor("cosine", 1, 10) == 1.0
    assert schedule_factor("cosine", 6, 10) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="step=11"):
        schedule_factor("cosine", 11, 10)


def test_minibatches_are_seeded_full_and_cover_each_epoch():
    first = minibatches(10, 3, seed=4)
    batches = [next(first) for _ in range(6)]
    assert all(len(b) == 3 for b in batches)
    epoch = torch.cat(batches[:3])
    assert len(set(epoch.tolist())) == 9  # 3 full batches of a permutation; the 10th dropped
    again = minibatches(10, 3, seed=4)
    assert all(torch.equal(b, next(again)) for b in batches)
    other = minibatches(10, 3, seed=5)
    assert not all(torch.equal(b, next(other)) for b in batches)
    with pytest.raises(ValueError, match="batch_size=11"):
        next(minibatches(10, 11, seed=0))


# --- history --------------------------------------------------------------------------------


def test_history_records_known_gradient_norms_and_update_ratios(digits64):
    settings = QUICK.with_(optimizer="sgd", momentum=0.0, lr=0.05, record_every=1, steps=2)
    config = SMALL.with_(norm="batch")
    history = train(config, digits64, settings, progress=False)
    assert list(history.steps) == [0, 1, 2]
    assert list(history.layers) == [1, 2, 3, 4]
    assert history.grad_norms.shape == history.update_ratio.shape == (3, 4)
    assert np.isnan(history.grad_norms[0]).all() and np.isnan(history.learning_rate[0])
    # recompute update 1 by hand: the gradient of minibatch 1 at the initial weights
    from explodegrad import build_from_config
    from explodegrad.core.nets import per_example_loss

    net = build_from_config(config, dtype=torch.float64)
    index = next(minibatches(len(digits64.x_train), settings.batch_size, settings.seed))
    loss = per_example_loss(net(digits64.x_train[index]), digits64.y_train[index]).mean()
    loss.backward()
    for k in range(1, 5):
        params = list(net.layer(k).parameters())
        grad_norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params))
        weight_norm = math.sqrt(sum(float(p.detach().pow(2).sum()) for p in params))
        assert history.grad_norms[1, k - 1] == pytest.approx(grad_norm, rel=1e-9)
        # plain SGD: ||delta theta_k|| = lr * ||g_k||
        assert history.update_ratio[1, k - 1] == pytest.approx(0.05 * grad_norm / weight_norm, rel=1e-9)
    assert history.final_train_error == history.train_error[-1] and not history.diverged


def test_same_seed_same_history_and_the_seed_matters(digits):
    settings = QUICK.with_(optimizer="adam", lr=3e-3, schedule="cosine")
    first = train(SMALL, digits, settings, progress=False)
    second = train(SMALL, digits, settings, progress=False)
    for name in ("train_loss", "test_loss", "train_error", "grad_norms", "update_ratio"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    reseeded = train(SMALL, digits, settings, seed=1, progress=False)
    assert not np.array_equal(first.train_loss[1:], reseeded.train_loss[1:])


def test_callback_sees_each_record_and_can_stop(digits):
    seen = []

    def callback(step, history):
        seen.append((step, len(history.steps)))
        return step >= 4

    history = train(SMALL, digits, QUICK, callback=callback, progress=False)
    assert seen == [(0, 1), (4, 2)]
    assert history.steps_done == 4 and "callback" in history.message and not history.diverged


# --- divergence -----------------------------------------------------------------------------


def test_huge_learning_rate_overflows_the_loss_at_step_two():
    """lr = 1e30 in float32: update 1 makes every weight ~1e28-1e30 (finite); the next forward
    pass multiplies two such layers (~1e58 > 3.4e38), so step 2's loss is not finite."""
    data = gaussian_data(n_train=128, n_test=64, in_features=16, seed=2)
    config = NetConfig(depth=2, width=16, activation="linear", in_features=16)
    history = train(
        config, data, QUICK, optimizer="sgd", momentum=0.0, lr=1e30, record_every=1, progress=False
    )
    assert history.diverged and history.diverged_step == 2 and history.diverged_layer == 0
    assert history.steps_done == 1 and list(history.steps) == [0, 1]
    # the record after update 1 already sees the overflow on the evaluation set: reported, not raised
    assert np.isfinite(history.train_loss[0]) and not np.isfinite(history.train_loss[1])
    assert math.isnan(history.final_train_error)
    assert "step 2" in history.message and "layer 1" in history.message


@pytest.mark.parametrize(
    "scales, expected_layer",
    [
        # layer k's gradient is ~ (s_1 ... s_{k-1}) * |dL/df_1| with |dL/df_1| ~ 1/16: the first
        # k where that product passes float32's 3.4e38 is the layer to report
        ({1: 1e15, 2: 1e15, 3: 1e15, 4: 1e-20}, 4),  # 1e45/16 overflows, 1e30/16 does not
        ({1: 1e21, 2: 1e21, 3: 1e-30, 4: 1.0}, 3),  # 1e42/16 overflows, 1e21/16 does not
    ],
)
def test_divergence_reports_the_first_layer_whose_gradient_overflowed(scales, expected_layer):
    data = gaussian_data(n_train=64, n_test=32, in_features=8, seed=0)
    net = build_mlp(depth=4, width=8, activation="linear", in_features=8)
    with torch.no_grad():
        for k, scale in scales.items():
            linear = net.layer(k).linear
            linear.weight.copy_(scale * torch.eye(*linear.weight.shape))
            linear.bias.zero_()
    history = train(net, data, QUICK, batch_size=16, progress=False)
    assert history.diverged_step == 1 and history.diverged_layer == expected_layer
    assert f"layer {expected_layer}" in history.message and history.steps_done == 0


# --- measurements (GSC and domain statistics, from other modules) ---------------------------


def test_measurements_every_n_steps(digits):
    pytest.importorskip("explodegrad.measures.gsc")
    pytest.importorskip("explodegrad.measures.domain")
    history = train(SMALL, digits, QUICK, measure_every=6, measure_size=64, progress=False)
    assert [m.step for m in history.measurements] == [0, 6, 12]
    assert len(history.measurements[0].gsc.layers) >= SMALL.depth
    assert hasattr(history.measurements[-1].domain, "sign_diversity")


# --- several networks of one shape together -------------------------------------------------


def test_train_several_records_each_network_as_train_does(digits64):
    settings = QUICK.with_(measure_every=6, measure_size=64)
    (alone,) = train_several([SMALL], digits64, settings)
    reference = train(SMALL, digits64, settings, progress=False)
    for name in ("steps", "train_loss", "test_error", "grad_norms", "update_ratio"):
        np.testing.assert_array_equal(getattr(alone, name), getattr(reference, name))
    assert [m.gsc.first_layer_gsc for m in alone.measurements] == [
        m.gsc.first_layer_gsc for m in reference.measurements
    ]
    # two seeds in one stack: each is the network train() makes from its weights on the shared
    # minibatches, to the rounding of batched products
    other = SMALL.with_(seed=5)
    pair = train_several([SMALL, other], digits64, settings)
    second = train(other, digits64, settings, progress=False)
    np.testing.assert_allclose(pair[1].train_loss, second.train_loss, rtol=1e-9)
    np.testing.assert_allclose(pair[1].grad_norms, second.grad_norms, rtol=1e-9)
    assert [m.step for m in pair[1].measurements] == [0, 6, 12] and pair[1].config == other
    assert pair[1].measurements[-1].gsc.first_layer_gsc == pytest.approx(
        second.measurements[-1].gsc.first_layer_gsc, rel=1e-9
    )
    assert not np.array_equal(pair[0].train_loss, pair[1].train_loss)


def test_train_per_seed_trains_alone_on_each_seed_or_together_on_the_first(digits64):
    settings = QUICK.with_(steps=8, record_every=4)
    configs = [SMALL, SMALL.with_(seed=5)]
    alone = train_per_seed(configs, [3, 4], digits64, settings)
    together = train_per_seed(configs, [3, 4], digits64, settings, together=True)
    for config, seed, history in zip(configs, (3, 4), alone):  # each on its own minibatches
        expected = train(config, digits64, settings.with_(seed=seed), progress=False)
        np.testing.assert_array_equal(history.train_loss, expected.train_loss)
        assert history.settings.seed == seed
    stacked = train_several(configs, digits64, settings.with_(seed=3))  # both on seed 3's
    for history, expected in zip(together, stacked):
        np.testing.assert_array_equal(history.train_loss, expected.train_loss)
        assert history.settings.seed == 3
    np.testing.assert_array_equal(together[0].train_loss, alone[0].train_loss)  # the first: one order
    assert not np.array_equal(together[1].train_loss, alone[1].train_loss)  # the second: another
    with pytest.raises(ValueError, match=r"seeds=\[3\] is not allowed with 2 networks"):
        train_per_seed(configs, [3], digits64, settings)
    with pytest.raises(ValueError, match="seeds=\\[\\] is not allowed with 0 networks"):
        train_per_seed([], [], digits64, settings)
    with pytest.raises(TypeError, match="together"):
        train_per_seed(configs, [3, 4], digits64, settings, together="yes")


def test_train_several_refuses_what_cannot_stack(digits):
    with pytest.raises(ValueError, match="nets_or_configs: give a non-empty list"):
        train_several([], digits)
    with pytest.raises(ValueError, match="nets_or_configs: give a non-empty list"):
        train_several(SMALL, digits)
    with pytest.raises(ValueError, match="do not share one shape"):
        train_several([SMALL, SMALL.with_(width=SMALL.width + 2)], digits)
    with pytest.raises(TypeError, match="settings: expected a TrainSettings"):
        train_several([SMALL], digits, {"lr": 0.1})


def test_an_update_that_leaves_a_non_finite_loss_counts_as_diverged():
    # the guard checks each minibatch before its update; the last update itself can overflow
    data = load_digits(dtype=torch.float32)
    config = NetConfig(depth=6, width=16, activation="linear", init="lecun", in_features=64, out_features=10)
    history = train(
        config, data, TrainSettings(lr=30.0, steps=2, batch_size=64, record_every=2), progress=False
    )
    assert history.diverged and history.diverged_step == 2 and history.diverged_layer == 0
    assert math.isnan(history.final_train_loss) and math.isnan(history.final_train_error)
    assert history.message.startswith("diverged at step 2: the loss is not finite")
    assert list(history.steps) == [0]  # the non-finite record is not kept as a result


def test_a_network_with_nan_logits_gets_every_example_wrong():
    net = build_mlp(3, 8, "relu", in_features=5, out_features=3)
    with torch.no_grad():
        net.units[-1].linear.weight.fill_(math.nan)
    x, y = torch.randn(10, 5), torch.tensor([0] * 5 + [1] * 5)  # argmax of a NaN row is 0
    loss, error = NetStack([net]).evaluate(x, y)
    assert math.isnan(loss[0]) and error[0] == 1.0
