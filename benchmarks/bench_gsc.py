"""How much a GSC profile costs, as a multiple of one training step's forward + backward pass.

Run: ``python benchmarks/bench_gsc.py [--device cpu|cuda|auto] [--repeats 7]``.

For a depth-50, width-100 ReLU network (He init) on a Gaussian batch of 256, with and without
batch norm, it prints the median time of

* one forward + backward pass of the mean loss (parameter gradients), the unit;
* ``gsc_profile`` (all k, reference 0, probe method, default probes) and its ratio to the unit
  (target: <= 3x), plus the ratio for other probe counts with batch norm;
* the exact method, for contrast, on a batch of 16 (full Jacobians grow with batch^2 x width,
  so batch 256 would take minutes), as a ratio to a forward + backward pass at batch 16.

With ``--accuracy`` it also prints how far probe estimates of ||J_l^k||_F (hence of the GSC)
fall from the exact values with batch norm, for 1 ... 16 probes (5 probe seeds each), at
references 0 and 1; the exact values come from the identity basis as "probes" (a minute on a
CPU). This is how ``DEFAULT_NUM_PROBES`` was chosen.

Ratios are what matter: absolute times depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from explodegrad import build_mlp, pick_device, trace
from explodegrad.core.device import cpu_model
from explodegrad.core.jacobian import frobenius_sq_from_probes
from explodegrad.core.nets import per_example_loss
from explodegrad.measures.gsc import gsc_profile

DEPTH, WIDTH, BATCH, EXACT_BATCH, FEATURES, CLASSES = 50, 100, 256, 16, 100, 10


def clock_for(device: torch.device) -> Callable[[], float]:
    """Process CPU time on a CPU (robust when other jobs share the machine), wall time on a GPU."""
    return time.perf_counter if device.type != "cpu" else time.process_time


def median_times(
    actions: dict[str, Callable[[], object]], device: torch.device, repeats: int
) -> dict[str, float]:
    """Median time of each action; the actions are interleaved so load changes hit all alike."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    clock = clock_for(device)
    times: dict[str, list[float]] = {name: [] for name in actions}
    for action in actions.values():  # warm-up
        action()
    for _ in range(repeats):
        for name, action in actions.items():
            sync()
            start = clock()
            action()
            sync()
            times[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def make_batch(batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded Gaussian batch with random labels."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, FEATURES, generator=generator)
    y = torch.randint(0, CLASSES, (batch,), generator=generator)
    return x.to(device), y.to(device)


def forward_backward(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One training step's gradient computation (no optimizer update)."""

    def step() -> None:
        net.zero_grad(set_to_none=True)
        per_example_loss(net(x), y).mean().backward()

    return step


def exact_frobenius_sq(
    net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, reference: int, chunk: int = 64
) -> np.ndarray:
    """||J_reference^k||_F^2 for k = reference + 1 ... L + 1, summing the identity basis in chunks."""
    net = copy.deepcopy(net)
    for module in net.modules():  # batch statistics without touching (or restoring) running ones
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.track_running_stats = False
    recorded = trace(net, x, y, keep_graph=True)
    f_ref = recorded.f(reference)
    layers = range(reference + 1, net.num_layers + 2)
    total = np.zeros(len(layers))
    basis = torch.eye(f_ref.numel(), device=f_ref.device).reshape(-1, *f_ref.shape)
    for start in range(0, len(basis), chunk):
        rows = basis[start : start + chunk]
        squares = frobenius_sq_from_probes(f_ref, [recorded.f(k) for k in layers], rows, retain_graph=True)
        total += np.array([float(s) for s in squares]) * len(rows)
    return total


def probe_accuracy(device: torch.device) -> None:
    """Relative error of probe estimates of ||J||_F against the exact values, batch norm on."""
    x, y = make_batch(BATCH, device)
    net = build_mlp(
        DEPTH, WIDTH, "relu", "batch", "he", in_features=FEATURES, out_features=CLASSES, device=device
    )
    print(
        "probe accuracy, relu/batch/he: relative error of ||J_l^k||_F (= of GSC(k, l)) over all k"
        " and 5 probe seeds"
    )
    for reference in (0, 1):
        exact = np.sqrt(exact_frobenius_sq(net, x, y, reference))
        for count in (1, 2, 4, 8, 16):
            errors = []
            for seed in range(5):
                profile = gsc_profile(net, x, y, reference=reference, num_probes=count, seed=seed)
                numels = np.array(
                    [x.shape[0] * (WIDTH if k <= DEPTH else FEATURES) for k in profile.layers], dtype=float
                )
                numels[profile.layers == 1] = x.shape[0] * CLASSES
                errors.append(profile.jacobian_qm_norms * np.sqrt(numels) / exact - 1)
            errors = np.abs(np.array(errors))
            print(
                f"  reference {reference}, {count:2d} probe(s): rms {np.sqrt((errors**2).mean()):.4f}, "
                f"max {errors.max():.4f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per measurement")
    parser.add_argument("--accuracy", action="store_true", help="also measure probe accuracy")
    args = parser.parse_args()
    choice = pick_device(args.device)
    device = choice.device
    print(f"device: {choice}")
    print(
        f"cpu: {cpu_model()}, torch threads {torch.get_num_threads()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(f"torch {torch.__version__}, python {platform.python_version()}")
    clock = "process CPU time" if device.type == "cpu" else "wall time"
    print(
        f"network: relu, He init, depth {DEPTH}, width {WIDTH}; Gaussian batch {BATCH}; "
        f"median {clock} of {args.repeats} interleaved runs"
    )
    x, y = make_batch(BATCH, device)
    for norm in ("none", "batch"):
        net = build_mlp(
            DEPTH, WIDTH, "relu", norm, "he", in_features=FEATURES, out_features=CLASSES, device=device
        )
        counts = (1, 2, 4, 8, 16) if norm == "batch" else ()
        actions: dict[str, Callable[[], object]] = {
            "unit": forward_backward(net, x, y),
            "default": lambda net=net: gsc_profile(net, x, y),
        }
        actions.update({f"{c}": (lambda net=net, c=c: gsc_profile(net, x, y, num_probes=c)) for c in counts})
        times = median_times(actions, device, args.repeats)
        unit = times["unit"]
        profile = gsc_profile(net, x, y)
        print(
            f"norm={norm:5s}: forward+backward {unit * 1e3:7.2f} ms | gsc_profile (probe, "
            f"{profile.num_probes} probe(s)) {times['default'] * 1e3:7.2f} ms = "
            f"{times['default'] / unit:4.2f}x | rate {profile.rate:.3f}"
        )
        for count in counts:
            print(f"             {count:2d} probe(s): {times[str(count)] / unit:4.2f}x")
    x_small, y_small = make_batch(EXACT_BATCH, device)
    for norm in ("none", "batch"):
        net = build_mlp(
            DEPTH, WIDTH, "relu", norm, "he", in_features=FEATURES, out_features=CLASSES, device=device
        )
        times = median_times(
            {
                "unit": forward_backward(net, x_small, y_small),
                "probe": lambda net=net: gsc_profile(net, x_small, y_small),
                "exact": lambda net=net: gsc_profile(net, x_small, y_small, method="exact"),
            },
            device,
            max(1, args.repeats // 3),
        )
        print(
            f"norm={norm:5s}, batch {EXACT_BATCH}: exact {times['exact'] * 1e3:8.1f} ms = "
            f"{times['exact'] / times['unit']:6.0f}x a forward+backward "
            f"(probe: {times['probe'] / times['unit']:4.2f}x)"
        )
    if args.accuracy:
        probe_accuracy(device)


if __name__ == "__main__":
    main()
