"""What the divergence guard costs: one read of the gradient instead of four full passes.

Every training step checks each model's gradient for NaN and infinities and names the smallest
paper layer that has one (:func:`explodegrad.training.loop.guarded_gradients`). The guard
before this change marked every entry (``x * 0 == 0``), replaced the bad ones by their column
number and took each row's largest: three full-size writes and four reads of the
``(models x scalars)`` matrix. Now each unit's smallest and largest entry (``amin``, ``amax``:
two reads, no full-size write) decide, six reductions for a DeepMLP of any depth.

This prints, per size, the median time of each guard alone on one gradient matrix, their
ratio and the operations each dispatches (what a GPU launches), both run in the same process,
interleaved; and the median time of one whole training step now (forward, backward, guard, SGD
update, batch 128 of random data), to put the saving in proportion.

    OMP_NUM_THREADS=1 python benchmarks/bench_guard.py --repeats 15
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import time

import torch
from operation_counter import OperationCounter

from explodegrad import NetConfig
from explodegrad.training.loop import (
    DivergenceFlags,
    TrainSettings,
    finite_units,
    guarded_gradients,
    stack_hyperparameters,
)
from explodegrad.training.optimizers import apply_update, init_state
from explodegrad.training.stacked import NetStack

SIZES = {  # name: (configuration, models)
    "paper plain, 5 models": (NetConfig(depth=50, width=100, in_features=3072, out_features=10), 5),
    "paper plain, 20 models": (NetConfig(depth=50, width=100, in_features=3072, out_features=10), 20),
    "paper batch norm + residual, 5": (
        NetConfig(depth=50, width=100, in_features=3072, out_features=10, norm="batch", residual=True),
        5,
    ),
    "quick plain, 5 models": (NetConfig(depth=20, width=64, in_features=64, out_features=10), 5),
}


def before(grads: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """The guard's check before: 1 + the last column with a non-finite entry, per row."""
    return torch.where(grads.mul(0).eq(0), 0, columns).amax(dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls of each guard per size")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}; torch {torch.__version__}; "
        f"threads {torch.get_num_threads()}"
    )
    print("size | models x scalars | before ms | after ms | ratio | operations before/after | step ms now")
    for name, (config, models) in SIZES.items():
        stack = NetStack.from_configs([config.with_(seed=m) for m in range(models)])
        grads = torch.randn_like(stack.params)
        grads[models - 1, 7] = float("nan")
        columns = torch.arange(1, grads.shape[1] + 1, dtype=torch.int32)
        guards = {
            "before": functools.partial(before, grads, columns),
            "after": functools.partial(finite_units, grads, stack.unit_runs),
        }
        counts = []
        for guard in guards.values():
            with OperationCounter() as counter:
                guard()
            counts.append(counter.total)
        times: dict[str, list[float]] = {label: [] for label in guards}
        for _ in range(args.repeats):
            for label, guard in guards.items():
                start = time.perf_counter()
                guard()
                times[label].append(time.perf_counter() - start)
        old, new = (statistics.median(times[k]) * 1e3 for k in ("before", "after"))
        step = _step_time(stack, config, args.repeats) * 1e3
        print(
            f"{name} | {models} x {grads.shape[1]:,} | {old:.2f} | {new:.2f} | {old / new:.1f}x | "
            f"{counts[0]}/{counts[1]} | {step:.1f}"
        )


def _step_time(stack: NetStack, config: NetConfig, repeats: int) -> float:
    """Median seconds of one whole training step of ``stack`` (after a first, untimed one)."""
    settings = [TrainSettings(lr=0.01)] * stack.num_models
    hyper = stack_hyperparameters(settings, "cpu", torch.float32)
    state = init_state("sgd", stack.params, hyper)
    flags = DivergenceFlags.fresh(stack.num_models, len(stack.layer_slices), "cpu")
    x, y = torch.randn(128, config.in_features), torch.randint(0, config.out_features, (128,))
    times = []
    for step in range(1, repeats + 2):
        start = time.perf_counter()
        grads = guarded_gradients(stack, x, y, step, flags)
        apply_update(stack.params, grads, state, hyper, hyper.lr * flags.active)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


if __name__ == "__main__":
    main()
