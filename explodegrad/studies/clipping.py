"""Gradient clipping: training with and without clipping over several seeds
(:func:`clipping_comparison`), and the per-layer update sizes that show what clipping does and
does not change (chapters 01 and 07).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explodegrad.core.checks import check_int, check_positive
from explodegrad.core.config import NetConfig
from explodegrad.core.data import Dataset
from explodegrad.core.scales import Scale
from explodegrad.core.seeds import median_range, resolve_seeds
from explodegrad.studies.common import StudyResult, resolve_data, resolve_scale
from explodegrad.training.loop import TrainHistory, TrainSettings, train

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = ("01/clipping-rescues",)

#: The clipping comparison of chapter 01: name -> the clipping settings of the run.
CLIPPING_RUNS = {
    "no clipping": {},
    "clip_norm=1": {"clip_norm": 1.0},
    "clip_value=0.01": {"clip_value": 0.01},
}


@dataclass(frozen=True, eq=False)  # holds training histories: compare fields, not results
class ClippingResult(StudyResult, Mapping):
    """Training runs without and with clipping, per seed; reads like the dict name -> runs.

    Attributes:
        runs: name (:data:`CLIPPING_RUNS`) -> one :class:`~explodegrad.training.loop.TrainHistory`
            per seed, in the order of ``seeds``.
        seeds: the seeds (each seeds the weights and the minibatches, shared by every setting).
        lr: SGD's learning rate.
    """

    runs: dict[str, list[TrainHistory]]
    seeds: tuple[int, ...]
    lr: float

    def __getitem__(self, name: str) -> list[TrainHistory]:
        return self.runs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def summary(self) -> str:
        """One line per setting: how many runs diverged, and the final training error, as the median
        [min, max] over the seeds that did not diverge."""
        lines = [f"SGD (momentum 0.9) at lr {self.lr:g}, {len(self.seeds)} seeds"]
        for name, histories in self.runs.items():
            errors = [h.final_train_error for h in histories if not h.diverged]
            diverged = len(histories) - len(errors)
            error = median_range(errors, ".3f") if errors else "n/a"
            lines.append(f"{name:>16}: {diverged} diverged; final training error {error}")
        return "\n".join(lines)


def clipping_comparison(
    *,
    scale: Scale | None = None,
    device: Any = None,
    data: Dataset | str | None = None,
    seeds: int | Sequence[int] | None = None,
    steps: int | None = None,
    depth: int = 10,
    width: int = 64,
    lr: float = 0.1,
) -> ClippingResult:
    """SGD (momentum 0.9) at a learning rate that diverges, without and with clipping, per seed.

    A ReLU network (He init) is trained once per seed without clipping, with clipping by norm
    (1) and by value (0.01), from the same weights and minibatches (batch 128). Divergence is a
    result (``history.diverged``), never an error.

    Args:
        scale: sets the defaults of ``steps`` and ``seeds`` (default QUICK: 200 steps, 3 seeds).
        device: see :func:`~explodegrad.core.device.resolve_device`.
        data: a Dataset, a data set name, or None for the bundled digits (whatever the scale's
            data set: this is chapter 01's small demonstration), float64 on the CPU.
        seeds: a count or the seeds themselves (default: the scale's ``num_seeds``).
        steps: updates per run (default: the scale's ``train_steps``).
        depth, width: the network's size.
        lr: SGD's learning rate (0.1 diverges without clipping).
    """
    scale = resolve_scale(scale)
    chosen = resolve_seeds(seeds, scale.num_seeds)
    steps = check_int("steps", scale.train_steps if steps is None else steps, 1)
    lr = check_positive("lr", lr)
    digits = resolve_data("digits" if data is None else data, scale=scale, device=device)
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
            optimizer="sgd", lr=lr, momentum=0.9, steps=steps, batch_size=128, record_every=10, seed=seed
        )
        for name, clip in CLIPPING_RUNS.items():
            runs[name].append(train(config, digits, settings.with_(**clip), progress=False))
    return ClippingResult(runs=runs, seeds=chosen, lr=lr)


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
