"""TF32 only by explicit choice, the GSC always at full precision, and the CUDA-graph step, on a CPU.

No GPU here: the TF32 switches are torch's global flags (settable without CUDA), the step that a
CUDA graph captures runs on the ``meta`` device (no values: any read back to the host raises),
and the capture machinery runs against a stand-in for ``torch.cuda`` whose graph replays the
step on the CPU, reading the same fixed buffers a real graph's kernels read.
"""

import contextlib
import dataclasses

import numpy as np
import pytest
import torch

from explodegrad import NetConfig, build_from_config, load_digits
from explodegrad.core.jsonable import to_jsonable
from explodegrad.measures import gsc
from explodegrad.measures.gsc import full_precision_matmuls, gsc_profile, tf32_matmuls
from explodegrad.training import graphs, loop
from explodegrad.training import sweep as sweep_module
from explodegrad.training.graphs import GraphedStep
from explodegrad.training.loop import (
    DivergenceFlags,
    TrainSettings,
    guarded_gradients,
    minibatches,
    stack_hyperparameters,
    stack_update,
    train,
    train_stack,
)
from explodegrad.training.optimizers import (
    adam_bias_corrections,
    apply_update,
    clip_gradients,
    init_state,
    schedule_factor,
)
from explodegrad.training.stacked import NetStack, per_layer_norms
from explodegrad.training.sweep import RunSpec, lr_search, sweep

CONFIG = NetConfig(depth=5, width=16, norm="batch")
SETTINGS = TrainSettings(steps=23, batch_size=32, record_every=10, eval_size=64, momentum=0.5)


@pytest.fixture(scope="module")
def digits32():
    return load_digits(dtype=torch.float32)


@pytest.fixture(autouse=True)
def torch_switches_restored():
    """Every test leaves torch's matmul switches as it found them."""
    before = gsc._matmul_switches()
    yield
    gsc._restore_matmul_switches(before)
    assert gsc._matmul_switches() == before


def _cuda_tf32() -> bool:
    return torch.backends.cuda.matmul.allow_tf32


# --- 1. TF32 only by explicit choice ---------------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("start", ["default", "high"])
def test_tf32_matmuls_sets_cudas_switch_and_restores_the_previous_one(start, enabled):
    if start == "high":
        torch.set_float32_matmul_precision("high")
    before = gsc._matmul_switches()
    precision_before = torch.get_float32_matmul_precision()
    with tf32_matmuls(enabled):
        assert _cuda_tf32() is enabled
    assert gsc._matmul_switches() == before
    assert torch.get_float32_matmul_precision() == precision_before
    with pytest.raises(KeyError), tf32_matmuls(not enabled):  # restored after an error too
        assert _cuda_tf32() is (not enabled)
        raise KeyError("inside")
    assert gsc._matmul_switches() == before and _cuda_tf32() is (start == "high")


def test_tf32_matmuls_leaves_cpu_matmuls_alone():
    mkldnn = getattr(torch.backends.mkldnn.matmul, "fp32_precision", None)
    with tf32_matmuls(True):
        assert getattr(torch.backends.mkldnn.matmul, "fp32_precision", None) == mkldnn


def test_tf32_matmuls_refuses_a_non_boolean():
    with pytest.raises(TypeError, match="enabled=1"), tf32_matmuls(1):
        pass


def test_full_precision_matmuls_turns_tf32_off_everywhere_and_restores():
    torch.set_float32_matmul_precision("high")  # a user's choice of TF32 everywhere
    before = gsc._matmul_switches()
    with full_precision_matmuls():
        assert _cuda_tf32() is False and torch.get_float32_matmul_precision() == "highest"
    assert gsc._matmul_switches() == before and torch.get_float32_matmul_precision() == "high"


@pytest.mark.parametrize("name", ["gsc_profile", "gsc_matrix", "relative_perturbation_gain"])
def test_the_gsc_measurements_run_without_tf32_whatever_the_user_chose(monkeypatch, name):
    torch.set_float32_matmul_precision("high")
    seen = []
    prepare = gsc._prepare

    def spy(*args):
        seen.append((_cuda_tf32(), torch.get_float32_matmul_precision()))
        return prepare(*args)

    monkeypatch.setattr(gsc, "_prepare", spy)
    net = build_from_config(NetConfig(depth=3, width=6, in_features=5, out_features=3), dtype=torch.float64)
    x, y = torch.randn(8, 5, dtype=torch.float64), torch.randint(0, 3, (8,))
    measure = getattr(gsc, name)
    measure(net, x, y, 2) if name == "relative_perturbation_gain" else measure(net, x, y)
    assert seen == [(False, "highest")]
    assert _cuda_tf32() is True and torch.get_float32_matmul_precision() == "high"


def test_the_guard_does_not_change_a_gsc_value():
    net = build_from_config(NetConfig(depth=4, width=8, in_features=5, out_features=3))
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    guarded = gsc_profile(net, x, y)
    unguarded = gsc_profile.__wrapped__(net, x, y)  # functools.wraps keeps the measurement itself
    np.testing.assert_array_equal(guarded.gsc, unguarded.gsc)


def test_a_sweep_records_tf32_and_on_the_cpu_it_has_no_effect(monkeypatch, digits32):
    seen = []
    train_chunk = sweep_module._train_chunk

    def spy(*args):
        seen.append(_cuda_tf32())
        return train_chunk(*args)

    monkeypatch.setattr(sweep_module, "_train_chunk", spy)
    runs = [RunSpec(CONFIG, SETTINGS.with_(steps=3))]
    plain, chosen = (sweep(runs, digits32, progress=False, tf32=tf32) for tf32 in (False, True))
    assert seen == [False, False]  # on the CPU the switch is never touched
    assert (plain.tf32, plain.tf32_used, chosen.tf32, chosen.tf32_used) == (False, False, True, False)
    assert "TF32 matmuls: off\n" in plain.describe() + "\n"
    assert "TF32 matmuls: off (tf32=True has no effect on cpu)" in chosen.describe()
    assert plain.table.equals(chosen.table)
    search = lr_search(CONFIG, digits32, [0.01, 0.1], SETTINGS.with_(steps=3), progress=False, tf32=True)
    assert search.sweep.tf32 is True and "TF32 matmuls: off (tf32=True" in search.describe()


@pytest.mark.parametrize("argument", ["tf32", "cuda_graphs"])
def test_a_sweep_refuses_a_non_boolean_switch(digits32, argument):
    with pytest.raises(TypeError, match=f"{argument}='yes'"):
        sweep([RunSpec(CONFIG, SETTINGS)], digits32, progress=False, **{argument: "yes"})


def test_a_cuda_sweep_runs_inside_the_tf32_switch_and_restores_it_after_an_error(monkeypatch, digits32):
    """The CUDA branch of sweep(), with the device resolved to "cuda" and training stubbed out."""
    seen = []

    def fail(*args):
        seen.append(_cuda_tf32())
        raise RuntimeError("out of memory (stand-in)")

    monkeypatch.setattr(sweep_module, "resolve_device", lambda device, data: torch.device("cuda"))
    monkeypatch.setattr(sweep_module, "memory_limit", lambda device: 2**30)
    monkeypatch.setattr(sweep_module, "_train_chunk", fail)
    fake = dataclasses.replace(digits32)
    monkeypatch.setattr(type(fake), "device", property(lambda self: torch.device("cuda")), raising=False)
    with pytest.raises(RuntimeError, match="stand-in"):
        sweep([RunSpec(CONFIG, SETTINGS)], fake, progress=False, tf32=True)
    assert seen == [True] and _cuda_tf32() is False


# --- 2. the step a CUDA graph captures ---------------------------------------------------------

HOST_READS = {"_local_scalar_dense", "nonzero", "equal", "masked_select", "unique", "_unique2"}


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop", "adam"])
@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_the_captured_step_reads_nothing_back_with_its_inputs_as_device_buffers(norm, optimizer):
    """The graph's form of the step (index, step number and factor as 0-d device tensors) on the
    meta device: any value read back (``.item()``, ``bool()``, ``.cpu()``, ``.numpy()``) or any
    CPU tensor mixed in raises, so it runs here only if a graph could capture it."""
    config = NetConfig(depth=4, width=8, norm=norm, in_features=12, out_features=4, residual=norm == "batch")
    stack = NetStack([build_from_config(config.with_(seed=m)).to("meta") for m in range(3)])
    data = type("MetaData", (), {})()
    data.x_train = torch.empty(40, 12, device="meta")
    data.y_train = torch.zeros(40, dtype=torch.int64, device="meta")
    settings = [SETTINGS.with_(optimizer=optimizer, lr=0.01 * (m + 1), clip_norm=1.0) for m in range(3)]
    hyper = stack_hyperparameters(settings, "meta", stack.dtype)
    state = init_state(optimizer, stack.params, hyper)
    if optimizer == "adam":
        state.bias_corrections = adam_bias_corrections(hyper, 5)
    flags = DivergenceFlags.fresh(3, len(stack.layer_slices), stack.device)
    index = torch.zeros(16, dtype=torch.int64, device="meta")
    step = torch.zeros((), dtype=torch.int64, device="meta")
    factor = torch.ones((), device="meta")
    tensors = (flags.active, flags.step, flags.where, stack.params)
    for _ in range(2):
        assert stack_update(stack, data, index, step, factor, flags, state, hyper) is None
    assert all(a is b for a, b in zip(tensors, (flags.active, flags.step, flags.where, stack.params)))
    with pytest.raises((RuntimeError, NotImplementedError)):
        bool(flags.active.all())  # the guard works


def test_the_divergence_flags_change_in_place_with_the_same_values():
    """A CUDA graph reads and writes fixed addresses: the flags must never be replaced."""
    net = build_from_config(NetConfig(depth=3, width=8, in_features=6, out_features=3), dtype=torch.float64)
    stack = NetStack([net, build_from_config(net.config.with_(seed=5), dtype=torch.float64)])
    flags = DivergenceFlags.fresh(2, len(stack.layer_slices), stack.device)
    tensors = (flags.active, flags.step, flags.where)
    with torch.no_grad():
        stack.params[1, -3:] = float("inf")  # model 1's readout bias: its loss is not finite
    x, y = torch.randn(8, 6, dtype=torch.float64), torch.randint(0, 3, (8,))
    guarded_gradients(stack, x, y, torch.tensor(4), flags)
    guarded_gradients(stack, x, y, 5, flags)
    assert all(a is b for a, b in zip(tensors, (flags.active, flags.step, flags.where)))
    assert flags.active.squeeze(1).tolist() == [True, False]
    assert flags.read().tolist() == [[0, 4], [0, -1]]


def _old_train_stack_params(stack: NetStack, data, settings: list[TrainSettings]) -> DivergenceFlags:
    """The loop's steps as they were before graphs (flags replaced, ``masked_fill_``, the
    schedule's factor a Python float), records left out (they do not change the parameters)."""
    shared = settings[0]
    total = shared.total_steps(len(data.x_train))
    hyper = stack_hyperparameters(settings, stack.device, stack.dtype)
    state = init_state(shared.optimizer, stack.params, hyper)
    flags = DivergenceFlags.fresh(stack.num_models, len(stack.layer_slices), stack.device)
    batches = minibatches(len(data.x_train), shared.batch_size, shared.seed, device=data.device)
    columns = torch.arange(1, stack.params.shape[1] + 1, dtype=torch.int32)  # the old guard's
    for step in range(1, total + 1):
        index = next(batches)
        losses, _ = stack.losses(data.x_train[index], data.y_train[index])
        loss_finite = losses.mul(0).eq(0)
        grads = stack.gradients(torch.where(loss_finite, losses, 0.0).sum())
        last_bad = torch.where(grads.mul(0).eq(0), 0, columns).amax(dim=1)
        finite = loss_finite & (last_bad == 0)
        newly = flags.active.squeeze(1) & ~finite
        flags.step.masked_fill_(newly, step)
        flags.where = torch.where(newly, torch.where(loss_finite, last_bad, -1), flags.where)
        flags.active = flags.active & finite.unsqueeze(1)
        grads = torch.where(flags.active, grads, 0.0)
        if step % shared.record_every == 0 or step == total:
            per_layer_norms(grads, stack.layer_slices)
        grads = clip_gradients(grads, hyper.clip_norm, hyper.clip_value)
        factor = schedule_factor(shared.schedule, step, total, shared.gamma, shared.milestones)
        apply_update(stack.params, grads, state, hyper, hyper.lr * factor * flags.active)
    return flags


GROUP = [
    (CONFIG.with_(seed=s), SETTINGS.with_(lr=lr, schedule=schedule, clip_norm=clip))
    for s, lr, schedule, clip in (
        (0, 0.05, "cosine", None),
        (1, 0.3, "cosine", None),
        (2, 1e30, "cosine", None),
    )
]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_default_cpu_path_is_bit_identical_to_the_loop_before_graphs(digits32, optimizer):
    configs = [c for c, _ in GROUP]
    settings = [s.with_(optimizer=optimizer, lr=s.lr / (30 if optimizer == "adam" else 1)) for _, s in GROUP]
    stacks = [NetStack.from_configs(configs) for _ in range(2)]
    runs = train_stack(stacks[0], digits32, settings)
    flags = _old_train_stack_params(stacks[1], digits32, settings)
    assert runs[2].diverged_step is not None and runs[0].diverged_step is None
    assert torch.equal(stacks[0].params, stacks[1].params)  # bit for bit, float32
    for name, buffer in stacks[0].buffers.items():
        torch.testing.assert_close(buffer, stacks[1].buffers[name], rtol=0, atol=0, equal_nan=True)
    assert [r.diverged_step or 0 for r in runs] == flags.step.tolist()
    assert {r.step_path for r in runs} == {"eager"} and {r.step_note for r in runs} == {""}


def test_a_sweep_says_its_step_path_and_graphs_change_nothing_on_the_cpu(digits32):
    runs = [RunSpec(c, s) for c, s in GROUP]
    default, off = (sweep(runs, digits32, progress=False, cuda_graphs=g) for g in (True, False))
    assert default.step_path == off.step_path == "eager" and default.step_notes == []
    assert "training step: eager" in default.describe()
    columns = ["train_loss", "test_loss", "train_error", "test_error"]
    assert np.array_equal(default.table[columns].to_numpy(), off.table[columns].to_numpy())


class FakeGraph:
    """A stand-in for ``torch.cuda.CUDAGraph``: capture records the step without running it
    (as a real capture runs nothing); each replay runs it again on the same fixed buffers."""

    captured = 0

    def __init__(self) -> None:
        self.body = None

    def replay(self) -> None:
        self.body()


class FakeCuda:
    """The parts of ``torch.cuda`` GraphedStep uses, on the CPU."""

    def __init__(self, fail: bool) -> None:
        self.fail, self.capturing = fail, None

    @contextlib.contextmanager
    def graph(self, graph):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing (stand-in)")
        self.capturing = graph
        yield
        self.capturing = None
        FakeGraph.captured += 1

    def install(self, monkeypatch) -> None:
        stream = type("Stream", (), {"wait_stream": lambda self, other: None})
        monkeypatch.setattr(graphs, "_is_cuda", lambda device: True)
        monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
        monkeypatch.setattr(torch.cuda, "graph", self.graph)
        monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: stream())
        monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
        monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: stream())
        monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)


def _fake_capturing_body(fake: FakeCuda, body):
    """The step body, except that under capture it is recorded for the replays instead of run."""

    def run(index, step, factor):
        if fake.capturing is not None:
            fake.capturing.body = lambda: body(index, step, factor)
            return
        body(index, step, factor)

    return run


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("fail", [False, True])
def test_graph_replays_and_the_capture_fallback_give_the_eager_numbers(
    monkeypatch, digits32, fail, optimizer
):
    """The capture machinery against a CPU stand-in: warm-up, capture, replays on the fixed
    buffers (indices, step number, factor), record steps eagerly in between; or a failed capture
    and eager steps from then on. Either way the numbers are the eager path's, bit for bit; for
    Adam too, whose replayed steps look their bias corrections up by the device's step number."""
    configs = [c for c, _ in GROUP]
    settings = [s.with_(record_every=7, optimizer=optimizer) for _, s in GROUP]
    if optimizer == "adam":
        settings = [s.with_(lr=s.lr / 50) for s in settings]
    reference = NetStack.from_configs(configs)
    expected = train_stack(reference, digits32, settings)
    fake = FakeCuda(fail)
    fake.install(monkeypatch)
    made = []

    class Step(GraphedStep):
        def __init__(self, body, *args, **kwargs):
            super().__init__(_fake_capturing_body(fake, body), *args, **kwargs)
            made.append(self)

    monkeypatch.setattr(loop, "GraphedStep", Step)
    FakeGraph.captured = 0
    stack = NetStack.from_configs(configs)
    runs = train_stack(stack, digits32, settings, cuda_graphs=True)
    assert torch.equal(stack.params, reference.params)
    assert [r.rows for r in runs] == [r.rows for r in expected]
    assert [r.diverged_step for r in runs] == [r.diverged_step for r in expected]
    (step,) = made
    if fail:
        assert FakeGraph.captured == 0 and step.path == "eager"
        assert step.note.startswith("capture failed (RuntimeError: operation not permitted")
    else:
        assert FakeGraph.captured == 1 and step.path == "cuda-graph" and step.note == ""
        assert {r.step_path for r in runs} == {"cuda-graph"}


def test_switched_off_graphs_and_named_reasons_run_eagerly_on_cuda_with_the_reason(monkeypatch):
    FakeCuda(fail=False).install(monkeypatch)
    calls = []
    body = lambda index, step, factor: calls.append((index, step, factor))  # noqa: E731
    for kwargs, note in (
        ({"enabled": False}, "CUDA graphs switched off"),
        ({"enabled": True, "reason": "a reason of the caller's"}, "a reason of the caller's"),
    ):
        step = GraphedStep(body, 4, torch.device("cuda"), torch.float32, **kwargs)
        index = torch.arange(4)
        step(index, 3, 0.5)
        assert (step.path, step.note) == ("eager", note) and calls[-1] == (index, 3, 0.5)
        assert not step.wanted


def test_adams_bias_correction_table_is_the_host_counts_bits():
    """Looked up by a device step number, Adam's update is the host-count update bit for bit;
    without the table a device step number is refused."""
    hyper = stack_hyperparameters(
        [SETTINGS.with_(optimizer="adam", betas=b) for b in ((0.9, 0.999), (0.5, 0.9))], None, torch.float32
    )
    table = adam_bias_corrections(hyper, 12)
    assert table.shape == (2, 13, 2, 1)
    generator = torch.Generator().manual_seed(0)
    params = torch.randn(2, 7, generator=generator)
    grads = [torch.randn(2, 7, generator=generator) for _ in range(12)]
    by_host, by_device = params.clone(), params.clone()
    host_state = init_state("adam", by_host, hyper)
    device_state = init_state("adam", by_device, hyper)
    device_state.bias_corrections = table
    for t, g in enumerate(grads, start=1):
        apply_update(by_host, g, host_state, hyper, hyper.lr)
        apply_update(by_device, g, device_state, hyper, hyper.lr, torch.tensor(t))
    assert torch.equal(by_host, by_device)
    with pytest.raises(ValueError, match="needs state.bias_corrections"):
        apply_update(by_host, grads[0], host_state, hyper, hyper.lr, torch.tensor(13))
    with pytest.raises(ValueError, match="beta1 and beta2"):
        adam_bias_corrections(dataclasses.replace(hyper, beta1=None), 3)


def test_on_the_cpu_the_step_is_the_body_called_with_the_values_as_given():
    calls = []
    step = GraphedStep(lambda *a: calls.append(a), 4, torch.device("cpu"), torch.float32, enabled=True)
    index = torch.arange(4)
    step(index, 7, 0.25)
    assert calls == [(index, 7, 0.25)] and (step.path, step.note) == ("eager", "")
    with pytest.raises(TypeError, match="enabled='yes'"):
        GraphedStep(lambda *a: None, 4, torch.device("cpu"), torch.float32, enabled="yes")
    with pytest.raises(TypeError, match="body"):
        GraphedStep(None, 4, torch.device("cpu"), torch.float32, enabled=True)


def test_train_is_unchanged_by_the_graph_machinery(digits32):
    """train() is a stack of one through the same loop; by default it never asks for graphs."""
    history = train(CONFIG, digits32, SETTINGS, progress=False)
    (run,) = train_stack(NetStack.from_configs([CONFIG]), digits32, [SETTINGS])
    np.testing.assert_array_equal(history.train_loss, np.array(run.rows)[:, 1])
    assert history.step_path == "eager" and history.step_note == ""
    assert "step_path" not in to_jsonable(history)  # how it ran is not a result
    with pytest.raises(TypeError, match="cuda_graphs='yes' is not allowed"):
        train(CONFIG, digits32, SETTINGS, progress=False, cuda_graphs="yes")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_train_with_graphs_replays_its_steps_and_gives_the_eager_numbers(monkeypatch, digits32, optimizer):
    """train(cuda_graphs=True) against the CPU stand-in: captured once, replayed between records
    and measurements, and the history (losses, gradient norms, GSC measurements, the network)
    is the eager run's bit for bit."""
    settings = SETTINGS.with_(optimizer=optimizer, lr=1e-3 if optimizer == "adam" else 0.05, measure_every=11)
    eager_net = build_from_config(CONFIG)
    eager = train(eager_net, digits32, settings, progress=False)
    fake = FakeCuda(fail=False)
    fake.install(monkeypatch)

    class Step(GraphedStep):
        def __init__(self, body, *args, **kwargs):
            super().__init__(_fake_capturing_body(fake, body), *args, **kwargs)

    monkeypatch.setattr(loop, "GraphedStep", Step)
    FakeGraph.captured = 0
    graphed_net = build_from_config(CONFIG)
    graphed = train(graphed_net, digits32, settings, progress=False, cuda_graphs=True)
    assert FakeGraph.captured == 1 and graphed.step_path == "cuda-graph"
    for name in ("train_loss", "test_loss", "grad_norms", "update_ratio"):
        np.testing.assert_array_equal(getattr(graphed, name), getattr(eager, name), err_msg=name)
    assert [m.step for m in graphed.measurements] == [m.step for m in eager.measurements] == [0, 11, 22, 23]
    for a, b in zip(graphed_net.state_dict().values(), eager_net.state_dict().values()):
        assert torch.equal(a, b)


# --- 3. the search's own trained networks, kept to be measured ---------------------------------


@pytest.fixture(scope="module")
def digits64():
    return load_digits(dtype=torch.float64)


def test_a_sweep_of_one_keeps_train_s_network_bit_for_bit(digits64):
    """A stack of one is train()'s own path: its kept final network is train()'s, exactly."""
    run = RunSpec(CONFIG.with_(seed=3), SETTINGS.with_(lr=0.05))
    result = sweep([run], digits64, progress=False, keep_checkpoints=True)
    net = build_from_config(run.config, dtype=torch.float64)
    history = train(net, digits64, run.settings, progress=False)
    assert [c.step for c in result.checkpoints[0]] == list(history.steps) == [0, 10, 20, 23]
    kept = result.network_at(0, 23)
    for (name, mine), theirs in zip(kept.state_dict().items(), net.state_dict().values()):
        assert torch.equal(mine, theirs), name
    initial = result.network_at(0, 0)
    fresh = build_from_config(run.config, dtype=torch.float64)
    assert all(torch.equal(a, b) for a, b in zip(initial.state_dict().values(), fresh.state_dict().values()))


def test_a_searchs_chosen_network_is_the_one_it_trained(digits64):
    """Stacked with other rates, the chosen run's kept network gives the losses the search recorded."""
    config = CONFIG.with_(seed=4)
    search = lr_search(config, digits64, [0.01, 0.1, 1e30], SETTINGS, progress=False, keep_checkpoints=True)
    run = search.best_run(0)
    assert search.sweep.runs[run].settings.lr == search.best_lr(0)
    assert [c.step for c in search.sweep.checkpoints[2]] == [0]  # the diverged rate: no more records
    rows = search.sweep.table[search.sweep.table["run"] == run]
    x, y = loop.evaluation_sets(digits64, SETTINGS.eval_size, SETTINGS.seed)["train"]
    for step, recorded in zip(rows["step"], rows["train_loss"]):
        net = search.sweep.network_at(run, int(step))
        (loss,), _ = NetStack([net]).evaluate(x, y)
        assert loss == pytest.approx(recorded, rel=1e-12)
    with pytest.raises(ValueError, match="step=5"):
        search.sweep.network_at(run, 5)
    with pytest.raises(ValueError, match="keep_checkpoints=True"):
        sweep([RunSpec(config, SETTINGS.with_(steps=2))], digits64, progress=False).network_at(0, 0)
    assert (
        search.sweep.checkpoints
        and not lr_search(config, digits64, [0.1], SETTINGS.with_(steps=2), progress=False).sweep.checkpoints
    )


def test_keeping_checkpoints_changes_no_number(digits32):
    runs = [RunSpec(c, s) for c, s in GROUP]
    kept, plain = (sweep(runs, digits32, progress=False, keep_checkpoints=k) for k in (True, False))
    assert kept.table.equals(plain.table) and kept.summary.equals(plain.summary)


@pytest.mark.parametrize("guard", ["full_precision", "tf32_on", "tf32_off"])
def test_a_users_medium_precision_is_restored_readable(guard):
    torch.set_float32_matmul_precision("medium")  # CUDA in TF32, the CPU's oneDNN in bf16
    before = gsc._matmul_switches()
    block = {"full_precision": full_precision_matmuls, "tf32_on": lambda: tf32_matmuls(True)}.get(
        guard, lambda: tf32_matmuls(False)
    )
    with block():
        pass
    # was: torch.get_float32_matmul_precision() raised "a mix of the legacy and new APIs"
    assert torch.get_float32_matmul_precision() == "medium"
    assert gsc._matmul_switches() == before


@pytest.mark.parametrize(
    "name", ["domain_stats", "path_contributions", "dilution_profile", "taylor_compression"]
)
def test_the_function_measures_run_without_tf32_whatever_the_user_chose(name):
    from explodegrad.measures import dilution, domain, paths, taylor

    measure = {
        "domain_stats": domain.domain_stats,
        "path_contributions": paths.path_contributions,
        "dilution_profile": dilution.dilution_profile,
        "taylor_compression": taylor.taylor_compression,
    }[name]
    torch.set_float32_matmul_precision("high")
    residual = name == "dilution_profile"
    config = NetConfig(depth=6, width=6, in_features=5, out_features=3, residual=residual)
    net = build_from_config(config, dtype=torch.float64)
    seen = set()
    for module in net.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(lambda *_: seen.add(torch.get_float32_matmul_precision()))
    x, y = torch.randn(8, 5, dtype=torch.float64), torch.randint(0, 3, (8,))
    if name == "taylor_compression":
        measure(net, x, y)
    elif name == "path_contributions":
        measure(net, x, skip="linear_fit")
    else:
        measure(net, x)
    assert seen == {"highest"}
    assert torch.get_float32_matmul_precision() == "high"
