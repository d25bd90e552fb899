"""Gradient clipping: training with and without clipping over several seeds
(:func:`clipping_comparison`), and the per-layer update sizes that show what clipping does and
does not change (chapters 01 and 07).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from explodegrad.core.checks import check_int, check_positive
from explodegrad.core.config import NetConfig
from explodegrad.core.data import Dataset, load_digits
from explodegrad.training.loop import TrainHistory, TrainSettings, train

#: The clipping comparison of chapter 01: name -> the clipping settings of the run.
CLIPPING_RUNS = {
    "no clipping": {},
    "clip_norm=1": {"clip_norm": 1.0},
    "clip_value=0.01": {"clip_value": 0.01},
}


def clipping_comparison(
    steps: int = 200,
    seeds: int | Sequence[int] = 3,
    *,
    depth: int = 10,
    width: int = 64,
    lr: float = 0.1,
    data: Dataset | None = None,
) -> dict[str, list[TrainHistory]]:
    """SGD (momentum 0.9) at a learning rate that diverges, without and with clipping, per seed.

    A ReLU network (He init, float64 on the bundled digits) is trained once per seed without
    clipping, with clipping by norm (1) and by value (0.01), from the same weights and
    minibatches. Divergence is a result (``history.diverged``), never an error.

    Returns:
        name (:data:`CLIPPING_RUNS`) -> one :class:`~explodegrad.training.loop.TrainHistory` per seed.
    """
    steps = check_int("steps", steps, 1)
    chosen = (
        tuple(range(check_int("seeds", seeds, 1)))
        if isinstance(seeds, int)
        else tuple(check_int("seeds", seed, 0) for seed in seeds)
    )
    if not chosen:
        raise ValueError("seeds=() is not allowed: give at least one seed")
    digits = load_digits(dtype=torch.float64) if data is None else data
    runs: dict[str, list[TrainHistory]] = {name: [] for name in CLIPPING_RUNS}
    for seed in chosen:
        config = NetConfig(
            depth=check_int("depth", depth, 1),
            width=check_int("width", width, 1),
            activation="relu",
            init="he",
            seed=seed,
        )
        settings = TrainSettings(
            optimizer="sgd",
            lr=check_positive("lr", lr),
            momentum=0.9,
            steps=steps,
            batch_size=128,
            record_every=10,
            seed=seed,
        )
        for name, clip in CLIPPING_RUNS.items():
            runs[name].append(train(config, digits, settings.with_(**clip), progress=False))
    return runs


def first_update_sizes(config: NetConfig, data: Dataset, settings: TrainSettings) -> np.ndarray:
    """``||delta theta_k|| / ||theta_k||`` of the very first update, for k = 1 ... L."""
    history = train(config, data, settings.with_(steps=1, epochs=None, record_every=1), progress=False)
    return np.asarray(history.update_ratio[-1], dtype=float)


def update_spread(sizes: np.ndarray) -> float:
    """First layer's relative update over the readout's, ``sizes[L - 1] / sizes[0]``."""
    sizes = np.asarray(sizes, dtype=float)
    if sizes.ndim != 1 or sizes.size < 2:
        raise ValueError(
            f"sizes: expected one relative update size per layer (at least 2), got shape {sizes.shape}"
        )
    return float(sizes[-1] / sizes[0])


def global_gradient_norms(history: TrainHistory) -> np.ndarray:
    """The recorded updates' whole-network gradient norms before clipping (step 0 has none)."""
    norms = np.sqrt(np.sum(np.asarray(history.grad_norms, dtype=float) ** 2, axis=1))
    return norms[np.asarray(history.steps) > 0]
