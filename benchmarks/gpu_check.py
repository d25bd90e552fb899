"""The GPU acceptance check of issue 16: everything the GPU path promises, in one run.

Sections (each writes its lines to the log and its rows to the summary table):

1. ``environment``: device, GPU, torch / CUDA / cuDNN versions, TF32 switches, commit.
2. ``parity``: the device against the CPU in float64: gsc_profile, domain_stats,
   path_contributions (effective depth), dilution_profile, taylor_compression, 30 steps of
   ``train()``, a sweep with one diverging rate, a sweep of ReLU, tanh and SELU networks stacked
   together on the device against apart on the CPU, ``recurrent_gradients`` and
   ``find_overflow`` (the two experiments that broke on a GPU).
3. ``repeatability``: a float32 sweep run twice gives bit-identical tables, and so does the
   same sweep with its steps replayed from a CUDA graph against eager steps, with SGD and with
   Adam (its bias corrections looked up by the device's step number), and ``train()``'s;
   activations stacked against apart is reported (equal to rounding is enough).
4. ``throughput``: microseconds per model-step of the stacked step (depth 50, width 100,
   3072 -> 10, batch 128, SGD with momentum) at N = 5, 64, 256, 1024 models, eager and replayed
   from a CUDA graph (:class:`explodegrad.training.graphs.GraphedStep`), at N = 1024 also with
   TF32 matmuls, and of one model eagerly, with the peak memory against
   :func:`explodegrad.training.sweep.estimate_memory`; and the paper plan's none/plain table
   group (4 activations x 5 rates) in one stack against 4.
5. ``benchmarks``: ``bench_sweep``, ``bench_gsc``, ``bench_lr_search``, ``gsc_table``.
6. ``report``: ``python -m explodegrad reproduce`` at ``--scale tiny`` and at paper sizes with few
   steps, on CIFAR-10 when ``--data-root`` holds it, else on a generated folder in CIFAR-10's
   format (random pixels, named ``generated-cifar-10-format-NOT-CIFAR``; the report says so).
7. ``extrapolation``: the paper-scale wall time, part by part from two paper-size runs
   (``--paper-steps`` and ``--paper-steps-2``; see ``paper_time.py``), or a lower bound from one.

Without CUDA, or with ``--dry-run``, every section runs a tiny version on the CPU (seconds),
so CI checks that the script itself works.

    bash benchmarks/gpu_check.sh                       # on the GPU machine, writes benchmarks/results/
    bash benchmarks/gpu_check.sh /tmp/check --dry-run   # the tiny CPU version
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import platform
import subprocess
import sys
import time
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # a script's own folder is on the path only when run

from paper_time import PartTimes, extrapolate, part_times  # noqa: E402

from explodegrad import NetConfig, build_from_config, load_digits  # noqa: E402
from explodegrad.core.jsonable import to_jsonable  # noqa: E402
from explodegrad.measures.gsc import tf32_matmuls  # noqa: E402
from explodegrad.training.graphs import WARMUP_STEPS, GraphedStep  # noqa: E402
from explodegrad.training.loop import (  # noqa: E402
    DivergenceFlags,
    TrainSettings,
    stack_hyperparameters,
    stack_update,
    train,
)
from explodegrad.training.optimizers import init_state  # noqa: E402
from explodegrad.training.stacked import NetStack  # noqa: E402
from explodegrad.training.sweep import RunSpec, estimate_memory, sweep  # noqa: E402

#: model-steps of ``reproduce --scale paper``: 1.88 M in the table, impact, width-depth,
#: optimizer, orthogonal and clipping parts (31 loops of 1-20 models), plus 2.73 M in the claims'
#: studies (154 loops, 94 of them 10,000 steps long, most of one model: counted by reading the
#: studies, 2026-11-30; not in the count before; since the paper scale trains the seeds of four
#: studies together, 92 loops, 32 of them 10,000 steps long: ``bench_claims_seeds.py``, 75 one-model
#: loops become 13 stacks). At the N = 5 stacked cost this is a floor: the
#: first H200 run measured the report's own steps at 35-78 ms per table part (eager), so the wall
#: time comes from ``paper_time.py`` instead.
PAPER_MODEL_STEPS = 4.61e6
#: float64 parity tolerance (relative to the largest magnitude of each compared quantity).
PARITY_RTOL = 1e-9
GENERATED_CIFAR = "generated-cifar-10-format-NOT-CIFAR"
#: Seconds after which no further command starts (9 minutes, less a margin for the summary).
DEADLINE_S = 520.0


class Check:
    """The log and the summary table of one run."""

    def __init__(self, out: Path, dry_run: bool, device: torch.device) -> None:
        self.out, self.dry_run, self.device = out, dry_run, device
        out.mkdir(parents=True, exist_ok=True)
        self.log_path = out / "gpu_check.log"
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 - open for the whole run
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.results: dict[str, float] = {}
        self.paper_runs: list[PartTimes] = []
        self.start = time.perf_counter()
        self.deadline = DEADLINE_S

    def remaining(self) -> float:
        """Seconds left before the deadline (the summary must be written within 9 minutes)."""
        return self.deadline - (time.perf_counter() - self.start)

    def log(self, *parts: Any) -> None:
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    def row(self, section: str, item: str, value: str, target: str = "", status: str = "") -> None:
        self.rows.append((section, item, value, target, status))
        self.log(f"  [{section}] {item}: {value}" + (f" (target {target})" if target else "") + f" {status}")

    def section(self, name: str, action: Callable[[], None]) -> None:
        self.log(f"\n== {name} (t = {time.perf_counter() - self.start:.1f} s)")
        began = time.perf_counter()
        try:
            action()
        except Exception as error:  # noqa: BLE001 - a failed section must not hide the others
            self.log(traceback.format_exc())
            self.row(name, "section", f"{type(error).__name__}: {error}", status="FAIL")
        self.log(f"   {name} took {time.perf_counter() - began:.1f} s")

    def finish(self) -> int:
        wall = time.perf_counter() - self.start
        self.row(
            "total", "wall time", f"{wall:.1f} s", "<= 540 s on one H200", "ok" if wall <= 540 else "SLOW"
        )
        lines = [
            f"# GPU check ({'dry run on the CPU' if self.dry_run else self.device})",
            "",
            "| section | item | value | target | status |",
            "|---|---|---|---|---|",
        ]
        lines += [f"| {' | '.join(cell.replace('|', '/') for cell in row)} |" for row in self.rows]
        (self.out / "summary.md").write_text("\n".join(lines) + "\n")
        self.log(f"\nlog: {self.log_path}\nsummary: {self.out / 'summary.md'}")
        self.log_file.close()
        return 1 if any(row[4] == "FAIL" for row in self.rows) else 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- 1. environment --------------------------------------------------------------------------


def _commit() -> str:
    """The checkout's commit, "+ uncommitted changes" when tracked files differ from it (a GPU
    machine's copy of the working tree can carry an older .git than its files)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
    )
    commit = head.stdout.strip() or "unknown"
    return commit + (" + uncommitted changes" if head.returncode == 0 and changed.stdout.strip() else "")


def environment(check: Check) -> None:
    device = check.device
    check.row("environment", "device", str(device))
    check.row("environment", "python / torch", f"{platform.python_version()} / {torch.__version__}")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        check.row("environment", "GPU", f"{props.name}, {props.total_memory / 2**30:.0f} GiB")
        check.row("environment", "CUDA / cuDNN", f"{torch.version.cuda} / {torch.backends.cudnn.version()}")
        check.row(
            "environment",
            "TF32 (matmul / cudnn)",
            f"{torch.backends.cuda.matmul.allow_tf32} / {torch.backends.cudnn.allow_tf32}",
            "off unless chosen",
        )
    check.row("environment", "commit", _commit())
    check.row("environment", "CPU", platform.processor() or platform.machine())


# --- 2. parity -------------------------------------------------------------------------------


def _numbers(value: Any) -> np.ndarray:
    """Every number in a result (dataclasses, dicts, lists, arrays), flattened, as float64."""
    plain = to_jsonable(value) if not isinstance(value, (np.ndarray, list, tuple, dict)) else value
    out: list[float] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key in sorted(item, key=str):
                walk(item[key])
        elif isinstance(item, (list, tuple)):
            for element in item:
                walk(element)
        elif isinstance(item, np.ndarray):
            out.extend(np.asarray(item, dtype=np.float64).ravel().tolist())
        elif isinstance(item, torch.Tensor):
            out.extend(item.detach().double().cpu().ravel().tolist())
        elif isinstance(item, (bool, np.bool_, int, float, np.integer, np.floating)):
            out.append(float(item))
        elif item is None:
            out.append(math.nan)

    walk(plain)
    return np.array(out, dtype=np.float64)


def _compare(check: Check, name: str, on_device: Any, on_cpu: Any, rtol: float = PARITY_RTOL) -> None:
    a, b = _numbers(on_device), _numbers(on_cpu)
    if a.shape != b.shape:
        check.row("parity", name, f"{a.size} vs {b.size} numbers", "same shape", "FAIL")
        return
    same_nan = np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(np.isinf(a), np.isinf(b))
    finite = np.isfinite(a) & np.isfinite(b)
    scale = max(np.abs(b[finite]).max(initial=0.0), 1e-300)
    diff = np.abs(a[finite] - b[finite]).max(initial=0.0) / scale
    ok = same_nan and diff <= rtol
    check.row(
        "parity",
        name,
        f"max diff / max |value| = {diff:.2e} ({a.size} numbers)",
        f"<= {rtol:g}",
        "ok" if ok else "FAIL",
    )


def parity(check: Check) -> None:
    from explodegrad.measures.dilution import dilution_profile
    from explodegrad.measures.domain import domain_stats
    from explodegrad.measures.gsc import gsc_profile
    from explodegrad.measures.paths import path_contributions
    from explodegrad.measures.taylor import taylor_compression
    from explodegrad.studies.overflow import find_overflow
    from explodegrad.studies.recurrent import recurrent_gradients

    device, cpu = check.device, torch.device("cpu")
    digits = load_digits(dtype=torch.float64)
    data = {cpu: digits, device: digits.to(device)}
    plain = NetConfig(depth=8, width=32, norm="batch")
    residual = NetConfig(depth=8, width=32, residual=True, norm="layer")
    x, y = digits.batch(64, seed=1)

    def on(
        where: torch.device, measure: Callable[[Any, torch.Tensor, torch.Tensor], Any], config: NetConfig
    ) -> Any:
        net = build_from_config(config, device=where, dtype=torch.float64)
        return measure(net, x.to(where), y.to(where))

    measures = {
        "gsc_profile (exact)": (plain, lambda n, a, b: gsc_profile(n, a, b, method="exact")),
        "gsc_profile (probes)": (plain, lambda n, a, b: gsc_profile(n, a, b)),
        "domain_stats": (plain, lambda n, a, b: domain_stats(n, a)),
        "path_contributions": (residual, lambda n, a, b: path_contributions(n, a, b)),
        "dilution_profile": (residual, lambda n, a, b: dilution_profile(n, a)),
        "taylor_compression": (plain, lambda n, a, b: taylor_compression(n, a, b, ks=[2, 4])),
    }
    for name, (config, measure) in measures.items():
        _compare(check, name, on(device, measure, config), on(cpu, measure, config))
    settings = TrainSettings(steps=30, batch_size=32, record_every=10, eval_size=256, lr=0.05)
    histories = {where: train(plain, data[where], settings, progress=False) for where in (device, cpu)}
    keep = ("train_loss", "test_loss", "grad_norms", "update_ratio")
    _compare(
        check,
        "train(), 30 steps",
        [getattr(histories[device], k) for k in keep],
        [getattr(histories[cpu], k) for k in keep],
    )
    runs = [RunSpec(plain.with_(seed=s), settings.with_(lr=lr)) for s, lr in enumerate((0.01, 0.05, 1e200))]
    tables = {}
    for where in (device, cpu):
        result = sweep(runs, data[where], progress=False, cuda_graphs=True)
        tables[where] = result
        check.log(f"   sweep on {where}: " + result.describe().replace("\n", "; "))
    check.row(
        "parity",
        "sweep training step",
        tables[device].step_path
        + (f" ({'; '.join(tables[device].step_notes)})" if tables[device].step_notes else ""),
        "cuda-graph on a GPU",
        "" if device.type != "cuda" else ("ok" if tables[device].step_path == "cuda-graph" else "EAGER"),
    )
    columns = ["train_loss", "test_loss", "train_error", "test_error"]
    _compare(
        check,
        "sweep, one rate diverging",
        tables[device].table[columns].to_numpy(),
        tables[cpu].table[columns].to_numpy(),
    )
    summary = ["diverged", "diverged_step", "diverged_layer", "steps_done"]
    same = tables[device].summary[summary].astype(str).equals(tables[cpu].summary[summary].astype(str))
    check.row(
        "parity",
        "sweep divergence (step, layer)",
        str(tables[device].summary["diverged_step"].tolist()),
        "as on the CPU",
        "ok" if same else "FAIL",
    )
    mixed = [
        RunSpec(plain.with_(activation=a, seed=s), settings.with_(lr=lr))
        for s, a in enumerate(("relu", "tanh", "selu"))
        for lr in (0.01, 0.05)
    ]
    stacked = sweep(mixed, data[device], progress=False, cuda_graphs=True, stack_activations=True)
    apart = sweep(mixed, data[cpu], progress=False, stack_activations=False)
    check.row(
        "parity",
        "sweep, activations stacked: groups",
        f"{len(stacked.groups)} on {device}, {len(apart.groups)} on the CPU (apart)",
        "1 and 3",
        "ok" if (len(stacked.groups), len(apart.groups)) == (1, 3) else "FAIL",
    )
    _compare(
        check,
        "sweep, ReLU/tanh/SELU stacked vs apart",
        stacked.table[columns].to_numpy(),
        apart.table[columns].to_numpy(),
    )
    rnn = {where: recurrent_gradients("lstm", steps_trained=5, data=data[where]) for where in (device, cpu)}
    _compare(
        check,
        "recurrent_gradients (float64 data)",
        rnn[device].gradient_trained,
        rnn[cpu].gradient_trained,
        rtol=1e-6,
    )
    overflow = {
        where: find_overflow(width=16, sigma=10.0, max_depth=40, data=data[where], steps=3)
        for where in (device, cpu)
    }
    same = (overflow[device].depth, overflow[device].layer) == (overflow[cpu].depth, overflow[cpu].layer)
    check.row(
        "parity",
        "find_overflow (float32)",
        overflow[device].message,
        "same depth and layer as on the CPU",
        "ok" if same else "FAIL",
    )


# --- 3. repeatability ------------------------------------------------------------------------


def repeatability(check: Check) -> None:
    device = check.device
    data = load_digits(dtype=torch.float32).to(device)
    config = NetConfig(depth=10, width=64, norm="batch")
    settings = TrainSettings(
        steps=40 if not check.dry_run else 4, batch_size=64, record_every=10, eval_size=256
    )
    runs = [RunSpec(config.with_(seed=s), settings.with_(lr=lr)) for s in range(2) for lr in (0.01, 0.1)]
    first, second = (sweep(runs, data, progress=False, cuda_graphs=True).table for _ in range(2))
    _bitwise_row(check, "float32 sweep twice", first, second)
    eager = sweep(runs, data, progress=False, cuda_graphs=False).table
    _bitwise_row(check, "float32 sweep, CUDA graph vs eager steps", first, eager)
    adam = [RunSpec(r.config, r.settings.with_(optimizer="adam", lr=r.settings.lr / 10)) for r in runs]
    graphed, eager = (sweep(adam, data, progress=False, cuda_graphs=g).table for g in (True, False))
    _bitwise_row(check, "float32 Adam sweep, CUDA graph vs eager steps", graphed, eager)
    mixed = [
        RunSpec(r.config.with_(activation=("relu", "tanh")[i % 2]), r.settings) for i, r in enumerate(runs)
    ]
    stacked, apart = (
        sweep(mixed, data, progress=False, cuda_graphs=True, stack_activations=s).table for s in (True, False)
    )
    _bitwise_row(check, "float32 sweep, activations stacked vs apart", stacked, apart, required=False)
    histories = [
        train(config, data, settings.with_(lr=0.05), progress=False, cuda_graphs=g) for g in (True, False)
    ]
    frames = [h.as_frame() for h in histories]
    _bitwise_row(check, f"float32 train(), CUDA graph ({histories[0].step_path}) vs eager", *frames)


def _bitwise_row(check: Check, item: str, first: Any, second: Any, required: bool = True) -> None:
    """A summary row: are two sweep tables' losses and errors bit-identical? (``required``: a
    difference fails; else it is reported with its size, as equal to rounding is enough.)"""
    columns = ["train_loss", "test_loss", "train_error", "test_error"]
    a, b = first[columns].to_numpy(), second[columns].to_numpy()
    if np.array_equal(a, b):
        value, status = "bit-identical", "ok"
    else:
        value = f"differs (largest difference {np.nanmax(np.abs(a - b)):.2e})"
        status = "FAIL" if required else "rounding"
    check.row("repeatability", item, value, "bit-identical" if required else "equal to rounding", status)


# --- 4. throughput ---------------------------------------------------------------------------


def _step_time(
    stack: NetStack,
    settings: list[TrainSettings],
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    graphs: bool = False,
) -> tuple[float, str]:
    """Seconds per stacked step (``stack_update``: guarded gradients, clipping, the update) and
    the path it took (``"cuda-graph"`` or ``"eager"``, with the reason), after the warm-up steps
    (with ``graphs``, the capture among them)."""
    hyper = stack_hyperparameters(settings, stack.device, stack.dtype)
    state = init_state(settings[0].optimizer, stack.params, hyper)
    flags = DivergenceFlags.fresh(stack.num_models, len(stack.layer_slices), stack.device)
    batch = types.SimpleNamespace(x_train=x, y_train=y)
    index = torch.arange(len(x), device=stack.device)

    def body(i: torch.Tensor, step: Any, factor: Any) -> None:
        stack_update(stack, batch, i, step, factor, flags, state, hyper)

    graphed = GraphedStep(body, len(x), stack.device, stack.dtype, enabled=graphs)
    warmup = WARMUP_STEPS + 1
    for step in range(1, warmup + steps + 1):
        if step == warmup + 1:
            _sync(stack.device)
            began = time.perf_counter()
        graphed(index, step, 1.0)
    _sync(stack.device)
    path = graphed.path + (f" ({graphed.note})" if graphed.note else "")
    return (time.perf_counter() - began) / steps, path


def throughput(check: Check) -> None:
    device = check.device
    if check.dry_run:
        config, batch, sizes, steps = (
            NetConfig(depth=4, width=8, in_features=3072, out_features=10),
            16,
            (2, 5),
            2,
        )
    else:
        config, batch, sizes, steps = (
            NetConfig(depth=50, width=100, in_features=3072, out_features=10),
            128,
            (5, 64, 256, 1024),
            10,
        )
    x = torch.randn(batch, config.in_features, device=device)
    y = torch.randint(0, config.out_features, (batch,), device=device)
    settings = TrainSettings(batch_size=batch, lr=0.01)
    single, _ = _step_time(NetStack([build_from_config(config, device=device)]), [settings], x, y, steps)
    check.row("throughput", "1 model (train()'s stack of one)", f"{single * 1e6:.0f} us per step")
    for models in sizes:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        stack = NetStack.from_configs([config.with_(seed=m) for m in range(models)], device=device)
        rates = [settings.with_(lr=0.01 * (1 + m % 5)) for m in range(models)]
        seconds, _ = _step_time(stack, rates, x, y, steps)
        per_model = seconds / models * 1e6
        check.row(
            "throughput",
            f"N = {models}, eager",
            f"{per_model:.1f} us per model-step ({single / seconds * models:.0f}x one model)",
        )
        graph_seconds, path = _step_time(stack, rates, x, y, steps, graphs=True)
        per_model_graph = graph_seconds / models * 1e6
        target = "<= 27 us, >= 100x one model at N >= 256" if models >= 256 else ""
        best = min(per_model, per_model_graph)
        ok = "" if not target else ("ok" if best <= 27 and single * 1e6 / best >= 100 else "SLOW")
        check.row(
            "throughput",
            f"N = {models}, CUDA graph",
            f"{per_model_graph:.1f} us per model-step ({seconds / graph_seconds:.2f}x eager; "
            f"{single / graph_seconds * models:.0f}x one model; path {path})",
            target,
            ok,
        )
        if models == sizes[-1]:
            with tf32_matmuls(True):
                tf32_seconds, path = _step_time(stack, rates, x, y, steps, graphs=True)
            check.row(
                "throughput",
                f"N = {models}, CUDA graph + TF32",
                f"{tf32_seconds / models * 1e6:.1f} us per model-step (path {path}; "
                + ("TF32 has no effect on the CPU)" if device.type != "cuda" else "TF32 matmuls on)"),
                "goal 10 us",
            )
        estimate = estimate_memory(config, settings, n_eval=batch).total(models)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
            check.row(
                "throughput",
                f"N = {models} peak memory",
                f"{peak / 2**20:,.0f} MiB (estimate {estimate / 2**20:,.0f} MiB)",
                "<= estimate",
                "ok" if peak <= estimate else "OVER",
            )
        else:
            check.row(
                "throughput",
                f"N = {models} memory estimate",
                f"{estimate / 2**20:,.1f} MiB (peak not measured on the CPU)",
            )
        del stack
        check.results[f"us_per_model_step_{models}"] = best
    check.results["us_single"] = single * 1e6
    _table_group_time(check, config, settings, x, y, steps)


def _table_group_time(
    check: Check, config: NetConfig, settings: TrainSettings, x: torch.Tensor, y: torch.Tensor, steps: int
) -> None:
    """The paper plan's none/plain table group: ReLU, tanh, SELU and GELU x 5 rates in one stack
    (``stack_activations``) against 4 stacks of 5, graphed, per model-step."""
    rates = [settings.with_(lr=0.001 * 3**k) for k in range(5)]
    per_activation = [[config.with_(activation=a)] * 5 for a in ("relu", "tanh", "selu", "gelu")]
    together = NetStack.from_configs([c for group in per_activation for c in group], device=check.device)
    one, path = _step_time(together, rates * 4, x, y, steps, graphs=True)
    apart = 0.0
    for group in per_activation:
        seconds, _ = _step_time(
            NetStack.from_configs(group, device=check.device), rates, x, y, steps, graphs=True
        )
        apart += seconds
    check.row(
        "throughput",
        "table group: 4 activations x 5 rates, one stack vs 4",
        f"{one / 20 * 1e6:.1f} vs {apart / 20 * 1e6:.1f} us per model-step ({apart / one:.2f}x; path {path})",
        "one stack faster on a GPU",
        "" if check.device.type != "cuda" else ("ok" if one < apart else "SLOW"),
    )


# --- 5. benchmarks ---------------------------------------------------------------------------


def _child_environment() -> dict[str, str]:
    """The environment of a benchmark or report process: this checkout importable even where
    explodegrad is not installed (the GPU machine runs the image's own python3; the first H200
    run failed each benchmark with ModuleNotFoundError), and its output unbuffered, so that a
    process stopped at its time limit has still printed every progress line."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}


def _run(
    check: Check, section: str, name: str, command: list[str], timeout: float, output: list[str] | None = None
) -> bool:
    """Run ``command`` for at most ``timeout`` s (and within the 9 minutes); log its end and a
    row. ``output`` (a list) receives everything it printed, also when it was stopped."""
    timeout = min(timeout, check.remaining() - 10)
    if timeout < 10:
        check.row(section, name, "skipped: the 9 minutes are used up", status="SKIPPED")
        return False
    check.log("   $", " ".join(command))
    began = time.perf_counter()
    printed, returncode = _run_until(command, timeout)
    if output is not None:
        output.append(printed)
    if returncode is None:
        check.log(printed[-4000:])
        check.row(section, name, f"stopped after {timeout:.0f} s", f"< {timeout:.0f} s", "FAIL")
        return False
    check.log(printed[-6000:])
    seconds = time.perf_counter() - began
    check.row(
        section, name, f"{seconds:.1f} s, exit {returncode}", "exit 0", "ok" if returncode == 0 else "FAIL"
    )
    return returncode == 0


def _run_until(command: list[str], timeout: float) -> tuple[str, int | None]:
    """Its output (stdout and stderr together) and exit code; None when it was stopped at
    ``timeout``: first with SIGTERM, which ``reproduce`` answers by keeping its finished parts,
    then, 20 s later, with SIGKILL."""
    with subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_child_environment(),
    ) as process:
        try:
            printed, _ = process.communicate(timeout=timeout)
            return printed, process.returncode
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                printed, _ = process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                printed, _ = process.communicate()
            return printed, None


def benchmarks(check: Check) -> None:
    names = ("bench_sweep", "bench_gsc", "bench_lr_search", "gsc_table")
    if check.dry_run:  # each script loaded, not run: a fresh process alone costs seconds on a CPU
        import importlib.util

        for name in names:
            spec = importlib.util.spec_from_file_location(
                f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py"
            )
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loads = hasattr(module, "main")
            check.row("benchmarks", name, "loads (runs on the GPU)", status="ok" if loads else "FAIL")
        return
    options = {
        "bench_sweep": [],
        "bench_gsc": ["--repeats", "3"],
        "bench_lr_search": ["--steps", "100"],
        "gsc_table": [],
    }
    for name in names:
        command = [sys.executable, f"benchmarks/{name}.py", "--device", check.device.type, *options[name]]
        _run(check, "benchmarks", name, command, timeout=90)


# --- 6. the report pipeline ------------------------------------------------------------------


def generate_cifar_format(root: Path, per_batch: int, seed: int = 0) -> Path:
    """A folder in CIFAR-10's format (5 training batches, a test batch, batches.meta) holding
    random pixels with a weak class signal: NOT CIFAR-10, for timing the pipeline only."""
    folder = root / GENERATED_CIFAR / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, size=(10, 3072))
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        labels = rng.integers(0, 10, size=per_batch)
        pixels = (0.3 * centres[labels] + 0.7 * rng.integers(0, 256, size=(per_batch, 3072))).astype(np.uint8)
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": pixels, b"labels": labels.tolist()}, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [f"generated-{i}".encode() for i in range(10)]}, handle)
    return folder.parent


def report(
    check: Check,
    data_root: str | None,
    paper_steps: int,
    with_tiny: bool = True,
    paper_timeout: float = 300,
    second_paper_steps: int = 0,
) -> None:
    from explodegrad.core.data import load_cifar10

    python, dev = sys.executable, check.device.type
    out = check.out / "report"
    tiny = [
        python,
        "-m",
        "explodegrad",
        "reproduce",
        "--scale",
        "tiny",
        "--device",
        dev,
        "--out",
        str(out / "tiny"),
        "--fresh",
        "--quiet",
        "--jobs",
        "1",
    ]
    if check.dry_run:  # a minute on a 2-core CPU; tests/test_reproduce.py runs it there
        check.row("report", "--scale tiny", "skipped in the dry run (runs on the GPU)")
    elif not with_tiny:
        check.row("report", "--scale tiny", "skipped (--no-tiny)")
    else:
        _run(check, "report", "--scale tiny", tiny, timeout=120)
    root: Path | None = Path(data_root) if data_root else None
    name = "CIFAR-10"
    if root is None:
        root = generate_cifar_format(check.out / "data", per_batch=200 if check.dry_run else 10000)
        name = f"{GENERATED_CIFAR} (random pixels in CIFAR-10's format, not CIFAR-10)"
    loaded = load_cifar10(root, download=False, n_train=64, n_test=16)
    check.row("report", "data for paper sizes", f"{name}: {loaded.source}")
    if check.dry_run:
        check.row("report", "--scale paper", "skipped in the dry run (the data folder above loads)")
        return
    for steps in [paper_steps] + ([second_paper_steps] if second_paper_steps else []):
        paper = [
            python,
            "-m",
            "explodegrad",
            "reproduce",
            "--scale",
            "paper",
            "--device",
            dev,
            "--steps",
            str(steps),
            "--data-root",
            str(root),
            "--out",
            str(out / ("paper" if steps == paper_steps else f"paper-{steps}-steps")),
            "--fresh",
            "--jobs",
            "1",
        ]  # not --quiet: the log keeps each part's progress line, also when the time runs out
        printed: list[str] = []
        _run(check, "report", f"--scale paper --steps {steps}", paper, paper_timeout, printed)
        check.paper_runs.append(part_times("".join(printed), steps))


# --- 7. extrapolation ------------------------------------------------------------------------


def extrapolation(check: Check, step_us: float | None = None) -> None:
    """Two rows: training alone at the stacked step's cost (a floor the report's path does not
    reach), and the report's wall time extrapolated part by part from its paper-size runs
    (``paper_time.py``; with one run only its fixed costs are known: a lower bound)."""
    us = check.results.get("us_per_model_step_5", step_us)
    if us is not None:
        check.row(
            "extrapolation",
            "training only, every model-step at the N = 5 stacked cost",
            f"{PAPER_MODEL_STEPS * us * 1e-6 / 60:.1f} min ({PAPER_MODEL_STEPS:.3g} model-steps x "
            f"{us:.1f} us): a floor, not the report's path",
        )
    runs = sorted((run for run in check.paper_runs if run.done), key=lambda run: run.steps)
    target = "<= 15 min (goal 5)"
    if len(runs) >= 2 and runs[0].steps < runs[-1].steps:
        estimate = extrapolate(runs[0], runs[-1])
        slow = estimate.total > 900
        status = "SLOW" if slow else ("" if estimate.lower_bound else "ok")
        check.row("extrapolation", "reproduce --scale paper", estimate.describe(), target, status)
    elif runs:
        floor = sum(runs[0].done.values())
        check.row(
            "extrapolation",
            "reproduce --scale paper",
            f"at least {floor / 60:.1f} min: the fixed costs of the {runs[0].steps}-step run; the "
            "per-step costs need a second run (--paper-steps-2)",
            target,
            "SLOW" if floor > 900 else "",
        )
    else:
        check.row("extrapolation", "reproduce --scale paper", "no paper-size run finished a part", target)


SECTIONS = ("environment", "parity", "repeatability", "throughput", "benchmarks", "report", "extrapolation")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "out",
        nargs="?",
        default=str(ROOT / "benchmarks" / "results"),
        help="folder for the log and the summary",
    )
    parser.add_argument("--dry-run", action="store_true", help="a tiny version of every section on the CPU")
    parser.add_argument(
        "--data-root",
        default=os.environ.get("EXPLODEGRAD_DATA"),
        help="a CIFAR-10 folder (default: generate one in its format)",
    )
    parser.add_argument(
        "--paper-steps", type=int, default=20, help="training steps of the paper-size report run"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"the sections to run, in this order (comma-separated; default {','.join(SECTIONS)}); "
        "environment always runs first",
    )
    parser.add_argument(
        "--paper-steps-2",
        type=int,
        default=0,
        help="a second paper-size report run with this many steps, so that the extrapolation "
        "separates each part's fixed and per-step cost (default 0: none; it rarely fits in the 9 "
        "minutes with every other section: run it with --only report,extrapolation --no-tiny)",
    )
    parser.add_argument("--no-tiny", action="store_true", help="leave out the --scale tiny report run")
    parser.add_argument(
        "--paper-timeout",
        type=float,
        default=300,
        help="seconds the paper-size report run may take (default 300; the 9 minutes still bound it)",
    )
    parser.add_argument(
        "--step-us",
        type=float,
        default=None,
        help="us per model-step at N = 5 for the extrapolation's floor row, used only when the "
        "throughput section does not run (e.g. from an earlier check)",
    )
    args = parser.parse_args(argv)
    if args.paper_steps < 1:
        parser.error(f"argument --paper-steps: {args.paper_steps} is not allowed: a positive number of steps")
    if args.paper_steps_2 and args.paper_steps_2 <= args.paper_steps:
        parser.error(
            f"argument --paper-steps-2: {args.paper_steps_2} is not allowed: 0 (no second run) or more "
            f"than --paper-steps ({args.paper_steps})"
        )
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"argument --only: {', '.join(unknown)} not among {', '.join(SECTIONS)}")
    dry_run = args.dry_run or not torch.cuda.is_available()
    device = torch.device("cpu" if dry_run else "cuda")
    check = Check(Path(args.out), dry_run, device)
    if dry_run:
        check.log("dry run on the CPU" + ("" if args.dry_run else ": no CUDA device found"))
        torch.set_num_threads(1)
    actions = {
        "parity": lambda: parity(check),
        "repeatability": lambda: repeatability(check),
        "throughput": lambda: throughput(check),
        "benchmarks": lambda: benchmarks(check),
        "report": lambda: report(
            check, args.data_root, args.paper_steps, not args.no_tiny, args.paper_timeout, args.paper_steps_2
        ),
        "extrapolation": lambda: extrapolation(check, args.step_us),
    }
    check.section("environment", lambda: environment(check))
    for name in dict.fromkeys(chosen):
        if name != "environment":
            check.section(name, actions[name])
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
