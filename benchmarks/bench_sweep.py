"""How much faster is one stacked sweep than training the same networks one after another?

Trains N depth-50 width-100 ReLU networks on CIFAR-10-shaped inputs (3072 features, 10
classes, synthetic Gaussian data, batch 128, SGD with momentum) two ways and prints
model-steps per second of both and their ratio:

1. end to end: ``train()`` N times versus one ``sweep()`` of the N runs (building the
   networks, evaluating at the first and last step on 256 examples, training);
2. the training step alone, as the median over steps (robust on a shared machine): a plain
   PyTorch loop (``torch.optim.SGD``) over the N networks versus one stacked step
   (:class:`explodegrad.training.stacked.NetStack` forward and backward plus the shared update).

The sweep's achieved TFLOP/s counts training matmuls only: forward ``2 * B * sum(in * out)``
per model and step, backward twice that.

``--before REV`` instead compares the stacked step with the one of an older commit (its
``StackedMLP``, read with ``git show REV:explodegrad/training/sweep.py``; ``ac41cf8`` is the
last commit that had it), step against step, interleaved, for N models at depth 20 (plain,
batch norm, layer norm, residual) and depth 50 (plain), and prints after / before.

    python benchmarks/bench_sweep.py                # auto device, N = 64 on cuda, 8 on cpu
    python benchmarks/bench_sweep.py --device cpu --n 4 --steps 5
    OMP_NUM_THREADS=1 python benchmarks/bench_sweep.py --device cpu --before ac41cf8 --steps 15
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch

from explodegrad import NetConfig, build_from_config, gaussian_data, per_example_loss, pick_device
from explodegrad.training.loop import TrainSettings, stack_hyperparameters, train
from explodegrad.training.optimizers import apply_update, init_state
from explodegrad.training.stacked import NetStack
from explodegrad.training.sweep import grid, sweep

DEPTH, WIDTH, IN_FEATURES, CLASSES, BATCH = 50, 100, 3072, 10, 128


def matmul_flops_per_step(config: NetConfig, batch: int) -> float:
    """Forward + backward matmul FLOPs of one model and one step (backward ~ 2x forward)."""
    shapes = [(config.width, config.in_features)] + [(config.width, config.width)] * (config.depth - 2)
    shapes.append((config.out_features, config.width))
    return 3.0 * 2 * batch * sum(o * i for o, i in shapes)


def _timed(device: torch.device, action: Callable[[], object]) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    action()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def median_step_times(
    configs: list[NetConfig], settings: TrainSettings, data, steps: int, device: torch.device
) -> tuple[float, float]:
    """Median seconds of one step of all N models: plain sequential loop, then stacked."""
    x, y = data.batch(BATCH)
    nets = [build_from_config(c, device=device) for c in configs]
    optimizers = [torch.optim.SGD(n.parameters(), lr=settings.lr, momentum=settings.momentum) for n in nets]

    def sequential_round() -> None:
        for net, optimizer in zip(nets, optimizers):
            optimizer.zero_grad(set_to_none=True)
            per_example_loss(net(x), y).mean().backward()
            optimizer.step()

    stacked_round = stacked_step(NetStack.from_configs(configs, device=device), settings, x, y)
    results = []
    for round_ in (sequential_round, stacked_round):
        round_()  # warm-up
        results.append(statistics.median(_timed(device, round_) for _ in range(steps)))
    return results[0], results[1]


def stacked_step(stacked, settings: TrainSettings, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One training step of every model of a stack (``NetStack`` or an old ``StackedMLP``)."""
    hyper = stack_hyperparameters([settings] * stacked.params.shape[0], x.device, stacked.params.dtype)
    state = init_state(settings.optimizer, stacked.params, hyper)

    def step() -> None:
        losses, _ = stacked.losses(x, y)
        grads = stacked.gradients(losses.sum())
        torch.isfinite(grads).all(dim=1)  # the per-model divergence check sweep() makes
        apply_update(stacked.params, grads, state, hyper, hyper.lr)

    return step


def old_stacked_class(rev: str) -> type:
    """``StackedMLP`` as commit ``rev`` had it, loaded from git into a throwaway module."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.check_output(
        ["git", "show", f"{rev}:explodegrad/training/sweep.py"], cwd=root, text=True
    )
    module = types.ModuleType(f"sweep_at_{rev}")
    sys.modules[module.__name__] = module
    exec(compile(source, f"{rev}:explodegrad/training/sweep.py", "exec"), module.__dict__)
    return module.StackedMLP


def compare_with_before(rev: str, n: int, steps: int, device: torch.device) -> None:
    """Median stacked-step time now versus at commit ``rev`` (interleaved rounds), per case."""
    old_class = old_stacked_class(rev)
    data = gaussian_data(n_train=512, n_test=64, in_features=IN_FEATURES, num_classes=CLASSES, device=device)
    x, y = data.batch(BATCH)
    settings = TrainSettings(optimizer="sgd", lr=0.01, momentum=0.9)
    cases = [
        ("depth 20, plain", dict(depth=20)),
        ("depth 20, batch norm", dict(depth=20, norm="batch")),
        ("depth 20, layer norm", dict(depth=20, norm="layer")),
        ("depth 20, residual", dict(depth=20, residual=True)),
        ("depth 50, plain", dict(depth=DEPTH)),
    ]
    print(
        f"stacked step, {n} models, width {WIDTH}, {IN_FEATURES} -> {CLASSES}, batch {BATCH}, SGD+momentum:"
    )
    print(f"{'case':22s} {'before (ms)':>12s} {'after (ms)':>11s} {'after/before':>13s}")
    for name, shape in cases:
        configs = [
            NetConfig(width=WIDTH, in_features=IN_FEATURES, out_features=CLASSES, seed=i, **shape)
            for i in range(n)
        ]
        rounds = {
            "before": stacked_step(old_class(configs, device=device), settings, x, y),
            "after": stacked_step(NetStack.from_configs(configs, device=device), settings, x, y),
        }
        times: dict[str, list[float]] = {key: [] for key in rounds}
        for round_ in rounds.values():
            round_()  # warm-up
        for _ in range(steps):
            for key, round_ in rounds.items():
                times[key].append(_timed(device, round_))
        before, after = (statistics.median(times[key]) for key in ("before", "after"))
        print(f"{name:22s} {before * 1e3:12.1f} {after * 1e3:11.1f} {after / before:12.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    parser.add_argument("--n", type=int, default=None, help="networks (default 64 on cuda, 8 otherwise)")
    parser.add_argument(
        "--steps", type=int, default=None, help="updates per network (default 20 on cuda, 5 otherwise)"
    )
    parser.add_argument("--before", default=None, help="compare the stacked step with this commit's")
    args = parser.parse_args()
    choice = pick_device(args.device)
    device = choice.device
    n = args.n or (64 if device.type == "cuda" else 8)
    steps = args.steps or (20 if device.type == "cuda" else 5)
    if args.before:
        print(
            f"device: {choice}; torch {torch.__version__}; {platform.machine()}; "
            f"{torch.get_num_threads()} CPU thread(s)"
        )
        compare_with_before(args.before, n, steps, device)
        return
    data = gaussian_data(
        n_train=1024, n_test=256, in_features=IN_FEATURES, num_classes=CLASSES, device=device
    )
    config = NetConfig(
        depth=DEPTH, width=WIDTH, activation="relu", in_features=IN_FEATURES, out_features=CLASSES
    )
    settings = TrainSettings(
        optimizer="sgd",
        lr=0.01,
        momentum=0.9,
        steps=steps,
        batch_size=BATCH,
        record_every=steps,
        eval_size=256,
    )
    runs = grid(config, settings, init_seed=list(range(n)))
    print(
        f"device: {choice}; torch {torch.__version__}; {platform.machine()}; "
        f"{torch.get_num_threads()} CPU thread(s)"
    )
    print(
        f"{n} networks x {steps} steps, depth {DEPTH}, width {WIDTH}, {IN_FEATURES} -> {CLASSES}, "
        f"batch {BATCH}"
    )
    sweep(runs[:1], data, settings.with_(steps=1), progress=False)  # warm-up (kernels, allocator)

    model_steps = n * steps
    sequential = _timed(device, lambda: [train(r.config, data, r.settings, progress=False) for r in runs])
    stacked = _timed(device, lambda: sweep(runs, data, progress=False))
    print(f"end to end   train() x {n}: {model_steps / sequential:9.2f} model-steps/s ({sequential:.2f} s)")
    print(f"end to end   sweep():      {model_steps / stacked:9.2f} model-steps/s ({stacked:.2f} s)")
    print(f"  speed-up {sequential / stacked:.2f}x")

    loop_step, stacked_step = median_step_times([r.config for r in runs], settings, data, steps, device)
    tflops = n * matmul_flops_per_step(config, BATCH) / stacked_step / 1e12
    for name, seconds in (("plain loop:", loop_step), ("stacked:", stacked_step)):
        print(f"median step  {name:13s} {n / seconds:9.2f} model-steps/s ({seconds * 1e3:.1f} ms for {n})")
    print(f"  speed-up {loop_step / stacked_step:.2f}x; stacked training matmuls {tflops:.3f} TFLOP/s")


if __name__ == "__main__":
    main()
