"""Wall time of one batched learning-rate search: 8 rates x 9 architectures at depth 50.

The paper picked a learning rate per architecture. ``explodegrad.training.sweep.lr_search`` trains
every (architecture, rate) pair in one stacked sweep. This script times that search for
relu / tanh / selu x no / batch / layer normalization (He, Xavier and LeCun initialization),
depth 50, width 100, on CIFAR-10-shaped data (3072 -> 10, batch 128): synthetic Gaussian
inputs by default, or CIFAR-10 itself with ``--data-root``.

    python benchmarks/bench_lr_search.py --device cuda               # 72 runs, 500 steps each
    python benchmarks/bench_lr_search.py --device cpu --steps 2      # a smoke run
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from explodegrad import NetConfig, gaussian_data, load_cifar10, pick_device
from explodegrad.training.loop import TrainSettings
from explodegrad.training.sweep import lr_search

DEPTH, WIDTH, IN_FEATURES, CLASSES, BATCH = 50, 100, 3072, 10, 128
INITS = {"relu": "he", "tanh": "xavier", "selu": "lecun"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    parser.add_argument(
        "--steps", type=int, default=None, help="SGD steps per run (default 500 on cuda, 3 otherwise)"
    )
    parser.add_argument("--rates", type=int, default=8, help="learning rates, log-spaced from 1e-4 to 1")
    parser.add_argument("--data-root", default=None, help="a CIFAR-10 folder (default: Gaussian inputs)")
    args = parser.parse_args()
    choice = pick_device(args.device)
    device = choice.device
    steps = args.steps or (500 if device.type == "cuda" else 3)
    if args.data_root:
        data = load_cifar10(args.data_root, download=False, device=device)
    else:
        data = gaussian_data(
            n_train=10_000, n_test=1_000, in_features=IN_FEATURES, num_classes=CLASSES, device=device
        )
    configs = [
        NetConfig(
            depth=DEPTH,
            width=WIDTH,
            activation=act,
            norm=norm,
            init=INITS[act],
            in_features=data.in_features,
            out_features=CLASSES,
        )
        for act in INITS
        for norm in ("none", "batch", "layer")
    ]
    lrs = [float(r) for r in np.logspace(-4, 0, args.rates)]
    settings = TrainSettings(
        optimizer="sgd",
        lr=lrs[0],
        momentum=0.9,
        steps=steps,
        batch_size=BATCH,
        record_every=steps,
        eval_size=1000,
    )
    print(
        f"device: {choice}; torch {torch.__version__}; {platform.machine()}; "
        f"{torch.get_num_threads()} CPU thread(s); data: {data.source}"
    )
    print(
        f"{len(configs)} architectures x {len(lrs)} rates = {len(configs) * len(lrs)} runs, "
        f"{steps} steps, depth {DEPTH}, width {WIDTH}, batch {BATCH}"
    )
    start = time.perf_counter()
    result = lr_search(configs, data, lrs, settings, device=device, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    print(result.best[["label", "best_lr", "final_train_error"]].to_string(index=False))
    model_steps = len(configs) * len(lrs) * steps
    print(f"wall time of the search: {wall:.1f} s ({model_steps / wall:.1f} model-steps/s)")


if __name__ == "__main__":
    main()
