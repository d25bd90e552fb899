"""What training the claims' seeds together saves at the paper scale: loops and launches.

The report's claims parts judge chapter 07's effective-depth study (4 architectures), chapter
08's orthogonal study (3 initial states) and chapter 04's optimizer study (SGD, Adam, RMSprop)
over 5 seeds, each network trained for 10,000 steps at depth 50, width 100, batch 128 on
CIFAR-10's 3072 inputs; and chapter 02's clipping runs (a depth-10, width-64 ReLU network
without clipping, clipped by norm and by value, and the depth-50 batch-normalized ReLU network
with and without clipping, on the 64-pixel digits) over the same 5 seeds and steps. One
``train()`` per network is 75 loops of one model; at the paper
scale the studies train their seeds together (``EvidenceSetting.stack_seeds``), grouped as a
sweep on a GPU groups them (:meth:`RunSpec.group_key`). For both plans this prints the loops,
the operations one training step dispatches per loop (counted on the CPU with a
``TorchDispatchMode``, views left out: what a GPU would launch), and the launches for 10,000
steps of every loop. With ``--quick-times`` it also times the studies at the quick scale on
this CPU, each way.

    OMP_NUM_THREADS=1 python benchmarks/bench_claims_seeds.py [--quick-times]
"""

from __future__ import annotations

import argparse
import collections
import platform
import time

import torch
from operation_counter import OperationCounter

from explodegrad.core.config import NetConfig
from explodegrad.core.scales import PAPER, QUICK
from explodegrad.studies.clipping import CLIPPING_RUNS, EXPLODING_CLIP_NORM, clipping_comparison
from explodegrad.studies.common import Architecture, study_settings
from explodegrad.studies.effective_depth import DEFAULT_ARCHITECTURES, effective_depth_study
from explodegrad.studies.optimizers import DEFAULT_LRS, optimizer_study
from explodegrad.studies.orthogonal import ORTHOGONAL_ARCHITECTURES, orthogonal_initial_state
from explodegrad.training.loop import DivergenceFlags, TrainSettings, guarded_gradients, stack_hyperparameters
from explodegrad.training.optimizers import apply_update, clip_gradients, init_state
from explodegrad.training.stacked import NetStack
from explodegrad.training.sweep import RunSpec

IN_FEATURES, CLASSES = 3072, 10
OPTIMIZERS = ("sgd", "adam", "rmsprop")
STUDIES = ("effective-depth", "orthogonal", "optimizers", "clipping-runs")
DIGITS_FEATURES = 64


def runs(study: str) -> list[tuple]:
    """The study's (configuration, settings) at the paper scale, one per trained network."""
    seeds = range(PAPER.num_seeds)
    settings = study_settings(PAPER)
    if study == "clipping-runs":  # clipping_comparison and clipping_on_exploding, on the digits
        sgd = TrainSettings(
            optimizer="sgd", lr=0.1, momentum=0.9, steps=PAPER.train_steps, batch_size=128, record_every=10
        )
        shallow = NetConfig(10, 64, "relu", init="he", in_features=DIGITS_FEATURES, out_features=CLASSES)
        deep = Architecture("relu", "batch").config(PAPER.depth, PAPER.width, DIGITS_FEATURES, CLASSES, 0)
        return [
            (shallow.with_(seed=seed), sgd.with_(**clip)) for clip in CLIPPING_RUNS.values() for seed in seeds
        ] + [
            (deep.with_(seed=seed), sgd.with_(clip_norm=clip))
            for clip in (EXPLODING_CLIP_NORM, None)
            for seed in seeds
        ]
    if study == "optimizers":  # batch-normalized ReLU, each optimizer at its default rate
        config = Architecture("relu", "batch").config(PAPER.depth, PAPER.width, IN_FEATURES, CLASSES, 0)
        return [
            (config.with_(seed=seed), settings.with_(optimizer=name, lr=DEFAULT_LRS[name]))
            for seed in seeds
            for name in OPTIMIZERS
        ]
    architectures = DEFAULT_ARCHITECTURES if study == "effective-depth" else ORTHOGONAL_ARCHITECTURES
    return [
        (a.config(PAPER.depth, PAPER.width, IN_FEATURES, CLASSES, seed), settings)
        for seed in seeds
        for a in architectures
    ]


def loops(together: bool) -> dict[str, list[list[tuple]]]:
    """Study -> its training loops (lists of (configuration, settings)): one per network, or
    the groups a GPU sweep makes of all of them (:meth:`RunSpec.group_key`)."""
    plans = {}
    for study in STUDIES:
        pairs = runs(study)
        if not together:
            plans[study] = [[pair] for pair in pairs]
            continue
        groups: dict[tuple, list] = collections.defaultdict(list)
        for config, settings in pairs:
            groups[RunSpec(config, settings).group_key(stack_activations=True)].append((config, settings))
        plans[study] = list(groups.values())
    return plans


def operations_per_step(group: list[tuple]) -> int:
    """The operations one training step of these networks, stacked, dispatches (a non-first step),
    on a random batch of the paper's size."""
    configs, settings = [config for config, _ in group], [s for _, s in group]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(PAPER.batch_size, configs[0].in_features, generator=generator)
    y = torch.randint(0, CLASSES, (PAPER.batch_size,), generator=generator)
    stack = NetStack.from_configs(configs)
    hyper = stack_hyperparameters(settings, "cpu", torch.float32)
    state = init_state(settings[0].optimizer, stack.params, hyper)
    flags = DivergenceFlags.fresh(stack.num_models, len(stack.layer_slices), "cpu")
    for step in (1, 2):
        with OperationCounter() as counter:
            grads = guarded_gradients(stack, x, y, step, flags)  # as stack_update takes a step
            grads = clip_gradients(grads, hyper.clip_norm, hyper.clip_value)
            apply_update(stack.params, grads, state, hyper, hyper.lr * flags.active, step)
    return counter.total


def quick_times() -> None:
    """Wall time of each study at the quick scale on the CPU, per network and seeds together."""
    print("\nquick scale on this CPU (3 seeds, 200 steps, float64):")
    studies = {
        "effective-depth": effective_depth_study,
        "orthogonal": orthogonal_initial_state,
        "optimizers": optimizer_study,
        "clipping-runs": clipping_comparison,
    }
    for study, run in studies.items():
        seconds = {}
        for together in (False, True):
            start = time.perf_counter()
            run(scale=QUICK, device="cpu", stack_seeds=together)
            seconds[together] = time.perf_counter() - start
        print(
            f"  {study}: {seconds[False]:.1f} s per network, {seconds[True]:.1f} s together "
            f"({seconds[False] / seconds[True]:.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick-times", action="store_true", help="also time the studies at the quick scale")
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''}; torch {torch.__version__}")
    totals = {}
    for name, together in (("one train() per network", False), ("seeds together", True)):
        launches, count = 0, 0
        print(f"\n{name}:")
        for study, plan in loops(together).items():
            ops = [operations_per_step(group) for group in plan]
            study_launches = sum(ops) * PAPER.train_steps
            sizes = collections.Counter(len(group) for group in plan)
            print(
                f"  {study}: {len(plan)} loops ({', '.join(f'{n} of {m}' for m, n in sorted(sizes.items()))} "
                f"models), operations per step {min(ops)}-{max(ops)}, "
                f"launches {study_launches / 1e6:.1f} M"
            )
            launches += study_launches
            count += len(plan)
        totals[name] = (count, launches)
        print(
            f"  in all: {count} loops, {launches / 1e6:.1f} M launches for {PAPER.train_steps:,} steps each"
        )
    (before_loops, before), (after_loops, after) = totals.values()
    print(f"\nloops {before_loops} -> {after_loops}; launches {before / after:.2f}x fewer")
    if args.quick_times:
        quick_times()


if __name__ == "__main__":
    main()
