"""What searching the table's rows of one shape together saves: loops, launches, CPU time.

The paper-scale report searches 5 learning rates for each of the 19 table rows (depth 50,
width 100, CIFAR-10's 3072 inputs, 10 classes, batch 128, SGD with momentum, 10,000 steps).
Searched one row at a time that is 19 stacked loops of 5 models; since networks that differ
only in activation stack together (:meth:`NetConfig.stack_key`), the paper plan searches the
rows of one shape in one sweep (``ReportPlan.stack_table_rows``): 6 loops of 15 or 20 models.

For both plans this prints, per loop, the operations one training step dispatches (counted
with a ``TorchDispatchMode`` on the CPU, views left out: what a GPU would launch per step),
the launches of the table's searches (operations x 10,000 steps, summed over the loops), and
the CPU wall time of one step per model (median over steps, the two plans interleaved; on a
CPU the work, not the launches, sets the time), then the none/plain group taken apart: the
stack's width alone (20 ReLU networks in one stack or in 4) and mixing alone (4 activations).

    OMP_NUM_THREADS=1 python benchmarks/bench_table_groups.py --steps 5
"""

from __future__ import annotations

import argparse
import collections
import platform
import statistics
import time

import torch
from operation_counter import OperationCounter

from explodegrad.reproduce.plan import PAPER_LRS, PAPER_SIZE, TABLE_ARCHITECTURES
from explodegrad.training.loop import DivergenceFlags, TrainSettings, guarded_gradients, stack_hyperparameters
from explodegrad.training.optimizers import apply_update, init_state
from explodegrad.training.stacked import NetStack

IN_FEATURES, CLASSES, BATCH, PAPER_STEPS = 3072, 10, 128, 10_000


def _loops(together: bool) -> list[list]:
    """The table's rows as the searches run them: each row alone, or rows of one shape together."""
    depth, width = PAPER_SIZE
    configs = [a.config(depth, width, IN_FEATURES, CLASSES, seed=0) for a in TABLE_ARCHITECTURES]
    if not together:
        return [[c] for c in configs]
    groups: dict[tuple, list] = collections.defaultdict(list)
    for config in configs:
        groups[config.stack_key()].append(config)
    return list(groups.values())


class Loop:
    """One search's stack (its configurations x the paper's rates) and one training step of it."""

    def __init__(self, configs: list, x: torch.Tensor, y: torch.Tensor) -> None:
        runs = [c for c in configs for _ in PAPER_LRS]
        # the order the sweep stacks them in: rows of one activation side by side
        runs.sort(key=lambda c: [r.activation for r in configs].index(c.activation))
        settings = [TrainSettings(lr=lr) for _ in configs for lr in PAPER_LRS]
        self.stack = NetStack.from_configs(runs)
        self.hyper = stack_hyperparameters(settings, "cpu", torch.float32)
        self.state = init_state("sgd", self.stack.params, self.hyper)
        self.flags = DivergenceFlags.fresh(self.stack.num_models, len(self.stack.layer_slices), "cpu")
        self.x, self.y, self.step_number = x, y, 0
        self.models = len(runs)

    def step(self) -> None:
        self.step_number += 1
        grads = guarded_gradients(self.stack, self.x, self.y, self.step_number, self.flags)
        apply_update(self.stack.params, grads, self.state, self.hyper, self.hyper.lr * self.flags.active)

    def operations(self) -> int:
        self.step()  # the first step allocates optimizer state: count a later one
        with OperationCounter() as counter:
            self.step()
        return counter.total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per loop")
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = torch.randn(BATCH, IN_FEATURES), torch.randint(0, CLASSES, (BATCH,))
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}; torch {torch.__version__}; "
        f"threads {torch.get_num_threads()}"
    )
    summary = {}
    for name, together in (("one row per search", False), ("rows of one shape together", True)):
        loops = [Loop(configs, x, y) for configs in _loops(together)]
        ops = [loop.operations() for loop in loops]
        launches = sum(ops) * PAPER_STEPS
        summary[name] = (loops, ops, launches)
        print(f"\n{name}: {len(loops)} loops of {sorted({loop.models for loop in loops})} models")
        for loop, count in zip(loops, ops):
            label = ", ".join(dict.fromkeys(c.label() for c in loop.stack.configs))
            print(f"  {loop.models:3d} models, {count:5d} operations per step  ({label})")
        print(f"  launches for {PAPER_STEPS:,} steps of every loop: {launches / 1e6:.1f} M")
    # CPU time per model-step, the two plans interleaved step by step
    times: dict[str, list[float]] = {name: [] for name in summary}
    for _ in range(args.steps):
        for name, (loops, _, _) in summary.items():
            start = time.perf_counter()
            for loop in loops:
                loop.step()
            times[name].append((time.perf_counter() - start) / sum(loop.models for loop in loops))
    print("\nCPU time of one step, per model (median over steps):")
    for name, values in times.items():
        print(f"  {name}: {statistics.median(values) * 1e3:.2f} ms")
    before, after = (summary[n][2] for n in summary)
    ratio = statistics.median(times["rows of one shape together"]) / statistics.median(
        times["one row per search"]
    )
    print(
        f"\nlaunches: {before / 1e6:.1f} M -> {after / 1e6:.1f} M ({before / after:.2f}x fewer); "
        f"CPU time per model-step, together / apart: {ratio:.2f}"
    )
    _width_and_mixing(x, y, args.steps)


def _width_and_mixing(x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    """The none/plain group's 20 models taken apart: stack width alone, and mixing alone."""
    depth, width = PAPER_SIZE
    relu = TABLE_ARCHITECTURES[0].config(depth, width, IN_FEATURES, CLASSES, seed=0)
    mixed = [relu.with_(activation=a) for a in ("relu", "tanh", "selu", "gelu")]
    seeds = [relu.with_(seed=s) for s in range(4)]
    variants = {
        "20 ReLU networks, one stack": [Loop(seeds, x, y)],
        "20 ReLU networks, 4 stacks of 5": [Loop([c], x, y) for c in seeds],
        "20 networks of 4 activations, one stack": [Loop(mixed, x, y)],
        "20 networks of 4 activations, 4 stacks of 5": [Loop([c], x, y) for c in mixed],
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(steps):
        for name, loops in variants.items():
            start = time.perf_counter()
            for loop in loops:
                loop.step()
            times[name].append((time.perf_counter() - start) / 20)
    print("\nthe none/plain group taken apart, CPU time per model-step (median):")
    for name, values in times.items():
        print(f"  {name}: {statistics.median(values) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
