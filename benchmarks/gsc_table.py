"""Fitted GSC explosion rates of popular architectures at initialization (the paper's Table 1 idea).

Run: ``python benchmarks/gsc_table.py [--device auto] [--batch 256] [--seed 0]``.

Depth 50 (linear layers), width 100, Gaussian inputs (100 features, 10 random labels), batch
256. Initialization: He for ReLU, Xavier for tanh, LeCun for SELU. Plain networks and residual
ones (``residual=True``, ``residual_scale=1``, 2 linear layers per block: 24 blocks, so the
rate is per block). Printed per network: the fitted rate r of GSC(k, 0) per addressable layer
(see ``explodegrad.measures.gsc.fit_explosion_rate`` for the window), its R^2, log10 GSC(L, 0) (from the
first layer's output) and, from ``explodegrad.measures.domain``, the sign diversity and linear fit error
at layer 2 (the hidden layer nearest the output), which show a collapsing domain.
"""

from __future__ import annotations

import argparse
import math

import torch

from explodegrad import build_mlp, pick_device
from explodegrad.measures.domain import domain_stats
from explodegrad.measures.gsc import gsc_profile

INIT_FOR = {"relu": "he", "tanh": "xavier", "selu": "lecun"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = pick_device(args.device).device
    generator = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch, 100, generator=generator).to(device)
    y = torch.randint(0, 10, (args.batch,), generator=generator).to(device)
    print(
        f"device {device}, torch {torch.__version__}, depth 50, width 100, batch {args.batch}, "
        f"seed {args.seed}"
    )
    print(
        f"{'network':34s} {'L':>3s} {'rate r':>8s} {'R^2':>6s} {'log10 GSC(L,0)':>15s} "
        f"{'sign div k=2':>12s} {'lin.err k=2':>11s}"
    )
    for residual in (False, True):
        for activation, init in INIT_FOR.items():
            for norm in ("none", "batch", "layer"):
                net = build_mlp(
                    50,
                    100,
                    activation,
                    norm,
                    init,
                    residual=residual,
                    in_features=100,
                    out_features=10,
                    seed=args.seed,
                    device=device,
                )
                profile = gsc_profile(net, x, y)
                domain = domain_stats(net, x)
                head = profile.first_layer_gsc
                log_head = f"{math.log10(head):15.2f}" if head > 0 and math.isfinite(head) else f"{head:15}"
                rate = f"{profile.rate:8.3f}" if profile.fit.ok else f"{'-':>8s}"
                print(
                    f"{profile.label:34s} {profile.num_layers:3d} {rate} {profile.fit.r_squared:6.3f} "
                    f"{log_head} {domain.sign_diversity[0]:12.3f} {domain.linear_fit_error[0]:11.4f}"
                    + (f"  [{profile.message}]" if profile.overflowed else "")
                )


if __name__ == "__main__":
    main()
