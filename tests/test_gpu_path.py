"""The GPU path, checked on a CPU: experiments take their device from the data, the stacked
step stays on the device between sync points (no host round trip, one fused batch norm, an
operation count that does not grow with the number of models), and the acceptance dry run.

Two CPU stand-ins for a GPU: torch's ``meta`` device (tensors without values: anything built
on the default device instead of the data's shows up as a CPU tensor), and ``FakeTensorMode``,
which fakes CUDA tensors on a CPU-only build, refuses to mix devices in one operation and
raises when a value is read back to the host (``.item()``, ``bool()``, ``.nonzero()``).
"""

import collections
import contextlib
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import DataDependentOutputException, FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from explodegrad import NetConfig, build_from_config, load_digits
from explodegrad.studies import overflow, recurrent
from explodegrad.training.loop import (
    DivergenceFlags,
    TrainSettings,
    guarded_gradients,
    stack_hyperparameters,
    train,
)
from explodegrad.training.optimizers import apply_update, init_state
from explodegrad.training.stacked import NetStack, unit_runs
from explodegrad.training.sweep import RunSpec, sweep

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = TrainSettings(steps=12, batch_size=32, record_every=4, eval_size=128)


@pytest.fixture(scope="module")
def digits64():
    return load_digits(dtype=torch.float64)


def _meta_data(n: int = 40, features: int = 64, classes: int = 10) -> types.SimpleNamespace:
    """A stand-in for a Dataset on the meta device (a Dataset checks values, meta has none)."""
    x = torch.empty(n, features, device="meta")
    y = torch.zeros(n, dtype=torch.int64, device="meta")
    return types.SimpleNamespace(
        x_train=x,
        y_train=y,
        x_test=x,
        y_test=y,
        in_features=features,
        num_classes=classes,
        device=x.device,
        batch=lambda size, seed=0, split="train": (x[:size], y[:size]),
    )


# --- 1. the experiments take their device from the data -----------------------------------


def test_find_overflow_builds_its_networks_on_the_batchs_device(monkeypatch):
    asked, fed = [], []
    build_mlp = overflow.build_mlp

    def build_on_cpu(*args, device=None, **kwargs):  # the network is built where it is asked to be
        asked.append(torch.device(device))
        return build_mlp(*args, **kwargs)

    def first_nonfinite(net, x, y):
        fed.append((x.device, y.device))
        return None

    def sgd(net, x, y, steps, lr):
        fed.append((x.device, y.device))
        return np.array([1.0])

    monkeypatch.setattr(overflow, "resolve_data", lambda data, **kw: _meta_data())
    monkeypatch.setattr(overflow, "build_mlp", build_on_cpu)
    monkeypatch.setattr(overflow, "_first_nonfinite", first_nonfinite)
    monkeypatch.setattr(overflow, "_sgd_until_nonfinite", sgd)
    result = overflow.find_overflow(width=8, max_depth=3, data="digits", steps=1)
    assert result.depth is None and len(asked) == len(fed) == 2  # the search's network, the trained one
    assert [d.type for d in asked] == ["meta", "meta"]
    assert all(device.type == "meta" for devices in fed for device in devices)


def test_recurrent_gradients_builds_its_model_on_the_datas_device(monkeypatch):
    seen = []

    def input_gradients(model, sequences, labels):
        seen.append((next(model.parameters()).device, sequences.device, labels.device))
        return np.ones(8), 0.5

    monkeypatch.setattr(recurrent, "resolve_data", lambda data, **kw: _meta_data())
    monkeypatch.setattr(recurrent, "_input_gradients", input_gradients)
    result = recurrent.recurrent_gradients("gru", steps_trained=0, hidden=4, batch=8)
    assert len(seen) == 2 and all(device.type == "meta" for devices in seen for device in devices)
    assert result.train_losses.shape == (0,)


def test_recurrent_minibatches_are_drawn_once_on_the_cpu_and_live_on_the_datas_device():
    indices = recurrent.minibatch_indices(50, steps=4, batch=6, seed=3)
    generator = torch.Generator().manual_seed(3)
    one_by_one = [torch.randint(50, (6,), generator=generator) for _ in range(4)]
    torch.testing.assert_close(indices, torch.stack(one_by_one), rtol=0, atol=0)  # as drawn before
    assert recurrent.minibatch_indices(50, 4, 6, 3, device="meta").device.type == "meta"


def test_recurrent_gradients_records_every_training_loss():
    result = recurrent.recurrent_gradients("rnn", steps_trained=3, hidden=4, batch=8)
    assert result.train_losses.shape == (3,) and result.train_losses.dtype == np.float64
    assert np.isfinite(result.train_losses).all()


# --- 2. the stacked step: one fused batch norm, no host round trip, parity with train() ------


def test_one_batch_norm_over_the_models_side_by_side_is_each_models_own():
    """F.batch_norm over the (batch, models * width) view: every model's own statistics,
    output, gradients and running averages, to rounding (float64)."""
    models, batch, width = 5, 9, 7
    generator = torch.Generator().manual_seed(0)
    draw = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64)  # noqa: E731
    h, weight, bias, upstream = (
        draw(models, batch, width),
        draw(models, width),
        draw(models, width),
        draw(models, batch, width),
    )
    fused_stats = [
        torch.zeros(models, width, dtype=torch.float64),
        torch.ones(models, width, dtype=torch.float64),
    ]
    own_stats = [s.clone() for s in fused_stats]
    leaves = [t.clone().requires_grad_(True) for t in (h, weight, bias)]
    channels = leaves[0].transpose(0, 1).reshape(batch, models * width)
    fused = (
        F.batch_norm(
            channels,
            fused_stats[0].view(-1),
            fused_stats[1].view(-1),
            leaves[1].reshape(-1),
            leaves[2].reshape(-1),
            True,
            0.1,
            1e-5,
        )
        .view(batch, models, width)
        .transpose(0, 1)
    )
    fused_grads = torch.autograd.grad(fused, leaves, upstream)
    for m in range(models):
        own_leaves = [t[m].clone().requires_grad_(True) for t in (h, weight, bias)]
        own = F.batch_norm(
            own_leaves[0], own_stats[0][m], own_stats[1][m], own_leaves[1], own_leaves[2], True, 0.1, 1e-5
        )
        torch.testing.assert_close(fused[m], own, rtol=0, atol=1e-14)
        for fused_grad, own_grad in zip(fused_grads, torch.autograd.grad(own, own_leaves, upstream[m])):
            torch.testing.assert_close(fused_grad[m], own_grad, rtol=0, atol=1e-14)
    for fused_stat, own_stat in zip(fused_stats, own_stats):
        torch.testing.assert_close(fused_stat, own_stat, rtol=0, atol=1e-15)


class OperationCounter(TorchDispatchMode):
    """Counts the operations dispatched inside it (views, which launch nothing, left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _stacked_step(stack: NetStack, settings: list[TrainSettings], x, y, steps: int = 1, count: bool = False):
    """``steps`` training steps of the stack, as train_stack takes them between sync points;
    with ``count``, the operations of the last one."""
    hyper = stack_hyperparameters(settings, stack.device, stack.dtype)
    state = init_state(settings[0].optimizer, stack.params, hyper)
    flags = DivergenceFlags.fresh(stack.num_models, len(stack.layer_slices), stack.device)
    counter = OperationCounter()
    for step in range(1, steps + 1):
        with counter if count and step == steps else contextlib.nullcontext():
            grads = guarded_gradients(stack, x, y, step, flags)
            apply_update(stack.params, grads, state, hyper, hyper.lr * flags.active)
    return counter, flags


ARCHITECTURES = {
    "plain": NetConfig(depth=10, width=16, norm="none"),
    "batch norm": NetConfig(depth=10, width=16, norm="batch"),
    "layer norm": NetConfig(depth=10, width=16, norm="layer", activation="tanh"),
    "residual": NetConfig(depth=10, width=16, norm="batch", residual=True),
}


@pytest.mark.parametrize("models", [1, 3])
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_the_stacked_step_stays_on_the_device_and_never_reads_a_value_back(name, models):
    """On the meta device every tensor is a shape without values: an operation that mixes in
    a tensor made on the CPU raises, and so does any read of a value (``.item()``, ``bool()``,
    ``.cpu()``), so two steps run here only if they stay on the data's device throughout."""
    config = ARCHITECTURES[name].with_(in_features=12, out_features=4)
    settings = [SETTINGS.with_(optimizer="adam", lr=1e-3 * (m + 1), clip_norm=1.0) for m in range(models)]
    stack = NetStack([build_from_config(config.with_(seed=m)).to("meta") for m in range(models)])
    x, y = torch.empty(16, 12, device="meta"), torch.zeros(16, dtype=torch.int64, device="meta")
    _, flags = _stacked_step(stack, settings, x, y, steps=2)
    assert stack.params.device.type == "meta" and flags.active.device.type == "meta"
    with pytest.raises((RuntimeError, NotImplementedError)):
        bool(flags.active.all())  # the guard works: reading a value is refused
    with pytest.raises((RuntimeError, NotImplementedError)):
        stack.params + torch.ones(stack.params.shape[1])  # and so is mixing in a CPU tensor


def test_the_step_also_runs_on_fake_cuda_tensors():
    """FakeTensorMode fakes CUDA tensors on a CPU-only build: ops that make new tensors (no
    views: those need a CUDA build) on fake CUDA data give CUDA results and mixing raises."""
    with FakeTensorMode(allow_non_fake_inputs=True):
        x = torch.randn(16, 12, device="cuda")
        weight = torch.randn(3, 12, 5, device="cuda")
        out = torch.baddbmm(torch.zeros(3, 1, 5, device="cuda"), x.expand(3, 16, 12), weight)
        assert out.device.type == "cuda"
        normalized = F.batch_norm(torch.randn(16, 15, device="cuda"), None, None, training=True)
        assert normalized.device.type == "cuda"
        with pytest.raises(DataDependentOutputException):
            bool(out.sum() > 0)
        with pytest.raises(RuntimeError, match="devices"):
            torch.mm(x, torch.ones(12, 2))


def test_divergence_is_read_at_sync_points_and_names_step_and_layer(digits64):
    """A model that diverges between records is found at the next one, with the step and the
    layer the per-step check of before found (loss 0 or the first layer, paper numbering)."""
    config = NetConfig(depth=4, width=16, norm="batch")
    runs = [
        RunSpec(config.with_(seed=1), SETTINGS.with_(lr=0.05, record_every=6)),
        RunSpec(config.with_(seed=2, residual_scale=2.0), SETTINGS.with_(lr=1e200, record_every=6)),
    ]
    result = sweep(runs, digits64, progress=False)
    alone = train(runs[1].config, digits64, runs[1].settings, progress=False)
    summary = result.summary.loc[1]
    assert (
        summary["diverged_step"] == alone.diverged_step and summary["diverged_layer"] == alone.diverged_layer
    )
    assert 1 < alone.diverged_step < 6 and alone.steps_done == alone.diverged_step - 1
    assert "diverged at step" in alone.message


def test_a_run_whose_models_all_diverge_stops_at_the_next_sync_point(digits64):
    history = train(NetConfig(depth=4, width=16), digits64, SETTINGS.with_(lr=1e200), progress=False)
    assert history.diverged and history.steps_done == history.diverged_step - 1
    assert list(history.steps) == [0]


def test_unit_runs_merge_equal_neighbours_in_forward_order():
    slices = [(24, 28), (14, 24), (4, 14), (0, 4)]  # by paper number: layer 1 = the readout, last
    assert unit_runs(slices) == [(0, 1, 4), (4, 2, 10), (24, 1, 4)]  # the readout's 4 stay apart
    config = NetConfig(depth=10, width=8, in_features=5, out_features=3, residual=True, block_depth=2)
    stack = NetStack.from_configs([config])
    assert [count for _, count, _ in stack.unit_runs] == [1, 4, 1]  # first layer, 4 blocks, readout
    assert sum(count * size for _, count, size in stack.unit_runs) == stack.params.shape[1]


@pytest.mark.parametrize("config", [ARCHITECTURES["batch norm"], ARCHITECTURES["residual"]])
def test_a_float64_sweep_of_several_models_is_several_train_calls(digits64, config):
    """Parity: four models stacked (one diverging) against four separate train() calls."""
    config = config.with_(depth=6)
    runs = [
        RunSpec(config.with_(seed=s, residual_scale=0.5), SETTINGS.with_(lr=0.01 * (s + 1), momentum=0.4 * s))
        for s in range(3)
    ]
    runs.append(RunSpec(config.with_(seed=7), SETTINGS.with_(lr=1e200)))
    result = sweep(runs, digits64, progress=False)
    assert result.summary["diverged"].tolist() == [False, False, False, True]
    for i, run in enumerate(runs):
        alone = train(run.config, digits64, run.settings, progress=False)
        rows = result.table[result.table["run"] == i]
        np.testing.assert_array_equal(rows["step"].to_numpy(), alone.steps)
        for column in ("train_loss", "test_loss", "train_error", "test_error"):
            np.testing.assert_allclose(rows[column].to_numpy(), getattr(alone, column), rtol=0, atol=1e-10)
        summary = result.summary.loc[i]
        assert summary["steps_done"] == alone.steps_done
        assert (pd_value(summary["diverged_step"]), pd_value(summary["diverged_layer"])) == (
            alone.diverged_step,
            alone.diverged_layer,
        )


def pd_value(value):
    """A nullable integer cell as Python: None or int."""
    return None if value is None or value is np.nan or str(value) == "<NA>" else int(value)


# --- 3. the operations one stacked step dispatches ----------------------------------------

#: Operations (views left out) one training step may dispatch, per layer of depth: the
#: budget does not depend on the number of models. Measured at depth 10 (width 16, SGD with
#: momentum / Adam), before issue 16's stacked step (vmap, per-model batch norm, a host read
#: per step; a whole train_stack step) and after (guarded_gradients + apply_update):
#: plain 153 -> 94 / 111, batch norm 297 -> 176 / 193, layer norm 243 -> 175 / 192 (for 5 or
#: 20 models; depth 50: plain 633 -> 337, layer norm 1123 -> 778, batch norm 1417 -> 779).
#: The guard's per-unit extremes (``finite_units``: six reductions and a few small operations
#: instead of four full-size passes) added 8 to every count, so the fixed part is 38.
BUDGET_PER_LAYER = {"plain": 10, "batch norm": 18, "layer norm": 18, "residual": 18}
BUDGET_FIXED = 38
#: Operations that read a value back to the host (``.item()``, ``bool()``, ``.tolist()``) or
#: whose result's shape depends on values: none may run between sync points.
HOST_READS = {"_local_scalar_dense", "nonzero", "equal", "masked_select", "unique", "_unique2"}


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_a_stacked_step_dispatches_a_budget_of_operations_whatever_the_number_of_models(name, optimizer):
    config = ARCHITECTURES[name].with_(in_features=12, out_features=4)
    x, y = torch.randn(16, 12, dtype=torch.float64), torch.randint(0, 4, (16,))
    counts = {}
    for models in (1, 5, 20):
        nets = [build_from_config(config.with_(seed=m), dtype=torch.float64) for m in range(models)]
        settings = [SETTINGS.with_(optimizer=optimizer, lr=0.01 * (m + 1)) for m in range(models)]
        counts[models], _ = _stacked_step(NetStack(nets), settings, x, y, steps=2, count=True)
    totals = {models: counter.total for models, counter in counts.items()}
    assert totals[5] == totals[20], totals  # one operation serves every model
    assert totals[1] <= totals[5], totals  # a stack of one runs the network's own layers
    assert totals[20] <= BUDGET_FIXED + BUDGET_PER_LAYER[name] * config.depth, totals
    for counter in counts.values():
        assert not HOST_READS & set(counter.counts), counter.counts
    if config.norm == "batch":  # one fused batch norm per normalized layer, forward and backward
        normalized = 9  # depth 10: 9 dense layers, or the input layer and 4 blocks of 2
        assert counts[20].counts["native_batch_norm"] == normalized
        assert counts[20].counts["native_batch_norm_backward"] == normalized


# --- 4. the acceptance command's dry run ----------------------------------------------------


@pytest.mark.slow
def test_the_acceptance_dry_run_writes_a_log_and_a_summary_without_failures(tmp_path):
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path), "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = (tmp_path / "summary.md").read_text()
    assert "dry run on the CPU" in summary and "FAIL" not in summary
    for section in (
        "environment",
        "parity",
        "repeatability",
        "throughput",
        "benchmarks",
        "report",
        "extrapolation",
    ):
        assert f"| {section} |" in summary, section
    assert "train(), 30 steps" in summary and "generated-cifar-10-format-NOT-CIFAR" in summary
    assert (tmp_path / "gpu_check.log").stat().st_size > 0


@pytest.mark.slow
def test_a_paper_slice_resumes_from_committed_parts_and_brings_everything_back(tmp_path):
    """``benchmarks/paper_slice.sh`` (a CPU dry run at the tiny scale): a slice that ends at its
    limit says so (status 124) and still brings back the part list; one limited to some parts
    brings back those; one started from them reuses them, finishes the rest and brings back
    the report."""

    def slice_(out: Path, seconds: int, parts_from: Path, **extra: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "DEVICE": "cpu"}
        env |= {"SCALE": "tiny", "JOBS": "1", "PARTS_FROM": str(parts_from), **extra}
        return subprocess.run(
            ["bash", str(ROOT / "benchmarks" / "paper_slice.sh"), str(out), str(seconds)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )

    cut = slice_(tmp_path / "cut", 1, tmp_path / "nothing-yet")  # ends before any part finishes
    assert cut.returncode == 124, cut.stdout[-3000:] + cut.stderr[-3000:]
    assert "exit status 124" in (tmp_path / "cut" / "reproduce.log").read_text()
    assert "stored" not in (tmp_path / "cut" / "parts-status.txt").read_text()
    first = slice_(tmp_path / "first", 300, tmp_path / "nothing-yet", PARTS="survey,dilution")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert sorted(path.name for path in (tmp_path / "first" / "parts").iterdir()) == [
        "dilution.json",
        "dilution.pkl",
        "survey.json",
        "survey.pkl",
    ]
    assert not (tmp_path / "first" / "report").exists()
    second = slice_(tmp_path / "second", 400, tmp_path / "first" / "parts")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "reusing 2 finished part(s)" in (tmp_path / "second" / "reproduce.log").read_text()
    assert (tmp_path / "second" / "report" / "report-tiny-scale.md").exists()
    assert (tmp_path / "second" / "report" / "figures-tiny").is_dir()
    assert "to compute" not in (tmp_path / "second" / "parts-status.txt").read_text()
    import tarfile

    with tarfile.open(tmp_path / "second" / "slice.tgz") as bundle:  # one file brings it all back
        names = bundle.getnames()
    assert {"parts/survey.json", "parts-status.txt", "reproduce.log", "report/report-tiny-scale.md"} <= set(
        names
    )
    assert not (tmp_path / "second" / "run").exists()  # the work folder is removed


def _benchmark_module(name: str):
    """A script of benchmarks/ loaded as a module (registered, as dataclasses need)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_under_test", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_acceptance_command_runs_chosen_sections_and_its_children_import_this_checkout(tmp_path):
    """``--only`` reruns a part of the check (a second H200 call is short); benchmark and report
    processes find explodegrad without an install (the GPU machine's python3 has none)."""
    gpu_check = _benchmark_module("gpu_check")
    child = gpu_check._child_environment()
    assert child["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT) and child["PYTHONUNBUFFERED"] == "1"
    threads = torch.get_num_threads()
    try:
        assert (
            gpu_check.main([str(tmp_path), "--dry-run", "--only", "extrapolation", "--step-us", "100"]) == 0
        )
    finally:
        torch.set_num_threads(threads)  # the dry run sets one thread
    summary = (tmp_path / "summary.md").read_text()
    assert "| environment |" in summary and "| parity |" not in summary
    assert "x 100.0 us): a floor" in summary and "no paper-size run finished a part" in summary
    for bad in (["--only", "parity,speed"], ["--paper-steps-2", "20"], ["--paper-steps", "0"]):
        with pytest.raises(SystemExit):
            gpu_check.main([str(tmp_path), "--dry-run", *bad])


SHORT_LOG = """  [1/3] rows: one rate search ...
  [1/3] rows: done in 15.0 s
  [2/3] claims: every claim ...
  [2/3] claims: done in 100.0 s
  [3/3] survey: every architecture ...
  [3/3] survey: done in 2.0 s
"""
LONG_LOG = """  [1/3] rows: one rate search ...
  [1/3] rows: done in 23.0 s
  [2/3] claims: every claim ...
terminated (SIGTERM): finished parts are kept
"""


def test_the_paper_time_is_extrapolated_part_by_part_and_says_when_it_is_a_floor():
    """Known values: rows cost 15 s + 0.1 s per step beyond 20; claims and survey never finished
    the long run, so they are charged their short run and the total is a lower bound."""
    paper_time = _benchmark_module("paper_time")
    short, long = paper_time.part_times(SHORT_LOG, 20), paper_time.part_times(LONG_LOG, 100)
    assert short.done == {"rows": 15.0, "claims": 100.0, "survey": 2.0} and short.unfinished == ()
    assert long.done == {"rows": 23.0} and long.unfinished == ("claims",)
    estimate = paper_time.extrapolate(short, long, target=1020)
    assert estimate.seconds == pytest.approx({"rows": 115.0, "claims": 100.0, "survey": 2.0})
    assert estimate.per_step_ms == pytest.approx({"rows": 100.0})
    assert estimate.lower_bound and estimate.lower_bound_parts == ("claims", "survey")
    assert estimate.describe().startswith("at least 3.6 min at 1,020 steps")
    finished = paper_time.part_times(SHORT_LOG.replace("15.0", "14.0"), 10)
    assert not paper_time.extrapolate(finished, short, target=20).lower_bound
    with pytest.raises(ValueError, match="short < long <= target"):
        paper_time.extrapolate(long, short)
    with pytest.raises(ValueError, match="finished no part"):
        paper_time.extrapolate(paper_time.part_times("", 5), long)
    with pytest.raises(ValueError, match="steps=0 is not allowed"):
        paper_time.part_times(SHORT_LOG, 0)


def test_a_process_stopped_at_its_limit_still_hands_back_what_it_printed(monkeypatch):
    """A paper-size run cut at its time limit must leave its progress lines for the
    extrapolation: the child is unbuffered and stopped with SIGTERM first."""
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    gpu_check = _benchmark_module("gpu_check")
    script = "import time\nprint('[1/2] rows: done in 1.0 s')\ntime.sleep(60)"
    printed, returncode = gpu_check._run_until([sys.executable, "-c", script], timeout=3)
    assert returncode is None and "[1/2] rows: done in 1.0 s" in printed


def test_the_paper_time_is_a_floor_when_the_short_run_stopped_and_refuses_parallel_logs():
    paper_time = _benchmark_module("paper_time")
    cut = paper_time.part_times(LONG_LOG, 20)  # 1 of 3 parts finished
    assert not cut.complete and cut.total_parts == 3
    estimate = paper_time.extrapolate(cut, paper_time.part_times(LONG_LOG.replace("23.0", "31.0"), 100))
    assert estimate.lower_bound and not estimate.lower_bound_parts
    assert "the short run did not finish every part" in estimate.describe()
    faster = paper_time.part_times(SHORT_LOG.replace("15.0", "25.0"), 10)  # rows: 25 s at 10, 15 s at 20
    noisy = paper_time.extrapolate(faster, paper_time.part_times(SHORT_LOG, 20), target=100)
    assert noisy.seconds["rows"] == 25.0 and noisy.clamped_parts == ("rows",)
    assert "no per-step cost measured for rows" in noisy.describe()
    with pytest.raises(ValueError, match="2 jobs is not allowed"):
        paper_time.part_times("  device: cuda; 2 job(s); parts in x\n" + SHORT_LOG, 20)


@pytest.mark.parametrize("name", ["plain", "residual"])
def test_activations_per_model_cost_operations_per_activation_not_per_model(name):
    """A stack of ReLU, tanh and SELU networks (sorted: three segments) dispatches the same
    operations for 6 models as for 24, and per layer at most a split, a concatenation and one
    activation per segment more than a stack of one activation, forward and backward
    (measured at depth 10 in float64: plain 97 -> 151, residual with batch norm 187 -> 267)."""
    config = ARCHITECTURES[name].with_(in_features=12, out_features=4)
    x, y = torch.randn(16, 12, dtype=torch.float64), torch.randint(0, 4, (16,))
    activations = ("relu", "tanh", "selu")
    totals = {}
    for models in (6, 24):
        nets = [
            build_from_config(
                config.with_(activation=activations[m * 3 // models], seed=m), dtype=torch.float64
            )
            for m in range(models)
        ]
        settings = [SETTINGS.with_(lr=0.01 * (m + 1)) for m in range(models)]
        stack = NetStack(nets)
        assert len(stack.activation_segments) == 3
        counter, _ = _stacked_step(stack, settings, x, y, steps=2, count=True)
        assert not HOST_READS & set(counter.counts), counter.counts
        totals[models] = counter.total
    one_activation = [build_from_config(config.with_(seed=m), dtype=torch.float64) for m in range(6)]
    single, _ = _stacked_step(NetStack(one_activation), [SETTINGS] * 6, x, y, steps=2, count=True)
    assert totals[6] == totals[24], totals
    activated_layers = config.depth - 1  # every layer but the readout has an activation
    assert totals[6] - single.total <= 2 * (2 + len(activations)) * activated_layers, (totals, single.total)


def test_the_guard_names_the_smallest_layer_with_a_nan_or_infinity_and_nothing_overflows():
    """Crafted gradients through the real guard: a NaN in layer 3 and an infinity in layer 2
    give 2 (the smallest paper number); entries near float32's largest, whose sum would
    overflow, are finite; a model already stopped keeps its first step and place."""
    config = NetConfig(depth=6, width=8, in_features=5, out_features=3, norm="batch")
    stack = NetStack.from_configs([config.with_(seed=m) for m in range(4)])
    slices = stack.layer_slices  # by paper number: slices[k - 1] is layer k's columns
    crafted = torch.zeros_like(stack.params)
    crafted[0, slices[2][0]] = float("nan")
    crafted[0, slices[1][1] - 1] = float("-inf")
    crafted[1, :] = 3e38  # finite, though no sum of them is
    crafted[2, slices[5][0] + 3] = float("inf")  # the first layer: paper number 6
    stack.gradients = lambda total_loss: crafted.clone()
    flags = DivergenceFlags.fresh(4, len(slices), stack.device)
    x, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    grads = guarded_gradients(stack, x, y, 7, flags)
    assert flags.read().tolist() == [[7, 0, 7, 0], [2, 0, 6, 0]]
    assert flags.active.squeeze(1).tolist() == [False, True, False, True]
    assert grads[[0, 2]].eq(0).all() and grads[1].eq(3e38).all()  # stopped models get no gradient
    crafted[3, slices[0][0]] = float("nan")  # the readout of model 3 at step 8; model 0 again
    guarded_gradients(stack, x, y, 8, flags)
    assert flags.read().tolist() == [[7, 0, 7, 8], [2, 0, 6, 1]]


def test_the_paper_claims_train_their_seeds_in_13_loops_instead_of_75(monkeypatch):
    """At the paper scale the effective-depth, orthogonal, optimizer and clipping studies train
    their seeds together (``EvidenceSetting.stack_seeds``): grouped as a GPU sweep groups, 75
    one-network loops of 10,000 steps become 13 (``benchmarks/bench_claims_seeds.py``)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    bench = _benchmark_module("bench_claims_seeds")
    apart, together = bench.loops(False), bench.loops(True)
    assert {study: len(plan) for study, plan in apart.items()} == {
        "effective-depth": 20,
        "orthogonal": 15,
        "optimizers": 15,
        "clipping-runs": 25,
    }
    assert {study: sorted(map(len, plan)) for study, plan in together.items()} == {
        "effective-depth": [5, 5, 5, 5],
        "orthogonal": [15],
        "optimizers": [5, 5, 5],
        "clipping-runs": [5, 5, 5, 5, 5],  # one per clipping setting: whether clipping is on must agree
    }
