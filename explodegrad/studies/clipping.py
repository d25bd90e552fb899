"""Gradient clipping: training with and without clipping over several seeds
(:func:`clipping_comparison`), clipping on a network whose gradients explode with depth
(:func:`clipping_on_exploding`), and the per-layer update sizes that show what clipping does and
does not change (chapters 02 and 08).

Two different failures are kept apart. The 10-layer ReLU network of :data:`CLIPPING_RUNS` at
learning rate 0.1 fails because the *step* is too large (learning-rate instability, as on the
quadratic of :mod:`explodegrad.studies.gradient_descent`); its gradients do not grow with depth.
The batch-normalized ReLU network of :func:`clipping_on_exploding` has gradients that grow
geometrically from the output to the input (its GSC explodes): there clipping bounds the step
but divides every layer's gradient by the same factor, so the network's explosion stays.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explodegrad.core.checks import check_bool, check_int, check_positive
from explodegrad.core.config import NetConfig
from explodegrad.core.data import Dataset
from explodegrad.core.nets import DeepMLP, build_mlp
from explodegrad.core.scales import Scale
from explodegrad.core.seeds import median_range, resolve_seeds
from explodegrad.core.trace import batch_statistics, check_net, prepare_batch
from explodegrad.measures.gsc import gsc_profile
from explodegrad.studies.common import StudyResult, architecture_label, resolve_data, resolve_scale
from explodegrad.training.loop import TrainHistory, TrainSettings, train, train_per_seed
from explodegrad.training.optimizers import clip_gradients

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = ("02/clipping-rescues", "02/clipping-keeps-explosion")

#: Clipping threshold of :func:`clipping_on_exploding` (the global gradient norm of the
#: batch-normalized ReLU network at initialization is far above it, so clipping acts).
EXPLODING_CLIP_NORM = 1.0

#: The clipping comparison of chapter 02: name -> the clipping settings of the run.
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
        seeds: the seeds (each seeds the weights and the minibatches, shared by every setting;
            with ``stack_seeds`` every seed trains on the first seed's minibatches: each
            history's ``settings.seed`` names the order it saw).
        lr: SGD's learning rate.
        exploding: :func:`clipping_on_exploding` on the same seeds, or None.
    """

    runs: dict[str, list[TrainHistory]]
    seeds: tuple[int, ...]
    lr: float
    exploding: ClippedExplosion | None = None

    def __getitem__(self, name: str) -> list[TrainHistory]:
        return self.runs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def summary(self) -> str:
        """One line per setting: how many runs diverged, and the final training error, as the median
        [min, max] over the seeds that did not diverge."""
        first = next(iter(self.runs.values()), [])
        together = len(self.seeds) > 1 and all(h.settings.seed == self.seeds[0] for h in first)
        order = f" (trained together on seed {self.seeds[0]}'s minibatches)" if together else ""
        lines = [f"SGD (momentum 0.9) at lr {self.lr:g}, {len(self.seeds)} seeds{order}"]
        for name, histories in self.runs.items():
            errors = [h.final_train_error for h in histories if not h.diverged]
            diverged = len(histories) - len(errors)
            error = median_range(errors, ".3f") if errors else "n/a"
            lines.append(f"{name:>16}: {diverged} diverged; final training error {error}")
        if self.exploding is not None:
            lines.append(self.exploding.summary())
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class ClippedExplosion(StudyResult):
    """Clipping by norm on a network whose gradients explode with depth, per seed.

    Attributes:
        label: the network, e.g. ``relu/batch/he d20 w64``.
        seeds: one network per seed (its weights, measurement batch and, unless
            ``stacked_seeds``, its minibatches).
        stacked_seeds: whether the seeds trained together, each on the first seed's minibatch
            order (its weights and measurement batch stay its own); False: each on its own.
        clip_norm: the bound on the global gradient norm.
        lr: SGD's learning rate (momentum 0.9).
        steps: updates per training run.
        layers: paper layer numbers k = 1 (the readout) ... L (the first layer).
        weight_grad_norms: (seeds x layers) ``||d loss / d W_k||`` at initialization, before clipping.
        clipped_grad_norms: (seeds x layers) the same after :func:`clip_gradients` by ``clip_norm``.
        rate_init, r_squared_init: per seed, the GSC's fitted rate at initialization (and R^2).
        rate_clipped, r_squared_clipped: after ``steps`` updates with clipping.
        rate_unclipped, r_squared_unclipped: after ``steps`` updates without clipping.
        clipped_fraction: per seed, the share of recorded updates whose gradient norm exceeded
            ``clip_norm`` (so that clipping changed them).
        error_clipped, error_unclipped: per seed, the final training error (NaN if diverged).
    """

    label: str
    seeds: tuple[int, ...]
    clip_norm: float
    lr: float
    steps: int
    layers: np.ndarray
    weight_grad_norms: np.ndarray
    clipped_grad_norms: np.ndarray
    rate_init: np.ndarray
    r_squared_init: np.ndarray
    rate_clipped: np.ndarray
    r_squared_clipped: np.ndarray
    rate_unclipped: np.ndarray
    r_squared_unclipped: np.ndarray
    clipped_fraction: np.ndarray
    error_clipped: np.ndarray
    error_unclipped: np.ndarray
    stacked_seeds: bool = False

    @property
    def first_to_readout(self) -> np.ndarray:
        """Per seed, the first layer's gradient norm over the readout's, before clipping."""
        return self.weight_grad_norms[:, -1] / self.weight_grad_norms[:, 0]

    @property
    def first_to_readout_clipped(self) -> np.ndarray:
        """The same ratio after clipping (equal to :attr:`first_to_readout`: one common factor)."""
        return self.clipped_grad_norms[:, -1] / self.clipped_grad_norms[:, 0]

    @property
    def clip_factors(self) -> np.ndarray:
        """Per seed, the factor clipping divided the first gradient by (1: not clipped)."""
        return self.weight_grad_norms[:, 0] / self.clipped_grad_norms[:, 0]

    def summary(self) -> str:
        """The GSC's rate at initialization and after training with and without clipping."""
        lines = [
            f"{self.label}, SGD (momentum 0.9) lr {self.lr:g}, {self.steps} steps, "
            f"clip_norm {self.clip_norm:g}, {len(self.seeds)} seeds (median [min, max])"
            + (f"; trained together on seed {self.seeds[0]}'s minibatches" if self.stacked_seeds else ""),
            f"  first-layer / readout gradient at init: {median_range(self.first_to_readout, '.1f')} "
            f"(after clipping {median_range(self.first_to_readout_clipped, '.1f')}; "
            f"clipping divides by {median_range(self.clip_factors, '.1f')})",
            f"  GSC rate r at init {median_range(self.rate_init, '.3f')}; after training with clipping "
            f"{median_range(self.rate_clipped, '.3f')}, without {median_range(self.rate_unclipped, '.3f')}",
            f"  updates clipped: {median_range(self.clipped_fraction, '.2f')} of those recorded; "
            f"training error with clipping {median_range(self.error_clipped, '.3f')}, "
            f"without {median_range(self.error_unclipped, '.3f')}",
        ]
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
    exploding: bool = True,
    stack_seeds: bool = False,
) -> ClippingResult:
    """SGD (momentum 0.9) at a learning rate that diverges, without and with clipping, per seed.

    A ReLU network (He init) is trained once per seed without clipping, with clipping by norm
    (1) and by value (0.01), from the same weights and minibatches (batch 128). Divergence is a
    result (``history.diverged``), never an error.

    Args:
        scale: sets the defaults of ``steps`` and ``seeds`` (default QUICK: 200 steps, 3 seeds).
        device: see :func:`~explodegrad.core.device.resolve_device`.
        data: a Dataset, a data set name, or None for the bundled digits (whatever the scale's
            data set: this is chapter 02's small demonstration), float64 on the CPU.
        seeds: a count or the seeds themselves (default: the scale's ``num_seeds``).
        steps: updates per run (default: the scale's ``train_steps``).
        depth, width: the network's size.
        lr: SGD's learning rate (0.1 diverges without clipping).
        exploding: also run :func:`clipping_on_exploding` (same scale, seeds and data) and keep
            it as ``result.exploding``; this network's failure is learning-rate instability,
            that one's gradients explode with depth.
        stack_seeds: train each setting's seeds together, as one stack
            (:func:`~explodegrad.training.loop.train_several`; also in ``exploding``): one loop
            per setting instead of one per network, what a GPU needs at the paper scale. Every
            seed then trains on the first seed's minibatch order (its weights stay its own).
    """
    scale = resolve_scale(scale)
    chosen = resolve_seeds(seeds, scale.num_seeds)
    steps = check_int("steps", scale.train_steps if steps is None else steps, 1)
    depth = check_int("depth", depth, 1)
    width = check_int("width", width, 1)
    lr = check_positive("lr", lr)
    stack_seeds = check_bool("stack_seeds", stack_seeds)
    digits = resolve_data("digits" if data is None else data, scale=scale, device=device)
    configs = [
        NetConfig(depth=depth, width=width, activation="relu", init="he", seed=seed) for seed in chosen
    ]
    settings = TrainSettings(
        optimizer="sgd", lr=lr, momentum=0.9, steps=steps, batch_size=128, record_every=10
    )
    runs: dict[str, list[TrainHistory]] = {}
    for name, clip in CLIPPING_RUNS.items():
        runs[name] = train_per_seed(configs, chosen, digits, settings.with_(**clip), together=stack_seeds)
    deep = (
        clipping_on_exploding(
            scale=scale, device=device, data=digits, seeds=chosen, steps=steps, stack_seeds=stack_seeds
        )
        if exploding
        else None
    )
    return ClippingResult(runs=runs, seeds=chosen, lr=lr, exploding=deep)


def layer_gradients(net: DeepMLP, inputs: torch.Tensor, targets: torch.Tensor) -> list[torch.Tensor]:
    """The mean loss's gradient for every layer's parameters, flattened, readout first (k = 1 ... L).

    Batch norm uses the batch's statistics whatever mode ``net`` is in, as in training, and its
    running averages are left alone (:func:`~explodegrad.core.trace.batch_statistics`).
    """
    net = check_net(net)
    inputs, targets = prepare_batch(net, inputs, targets)
    if targets is None:
        raise ValueError("targets: the loss's gradient needs the labels of the batch, got None")
    with batch_statistics(net):
        loss = torch.nn.functional.cross_entropy(net(inputs), targets)
    units = [net.layer(k) for k in range(1, net.num_layers + 1)]
    params = [[p for p in unit.parameters() if p.requires_grad] for unit in units]
    grads = torch.autograd.grad(loss, [p for group in params for p in group])
    flat, start = [], 0
    for group in params:
        flat.append(torch.cat([g.reshape(-1) for g in grads[start : start + len(group)]]))
        start += len(group)
    return flat


def clipped_layer_norms(grads: list[torch.Tensor], clip_norm: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer gradient norms before and after clipping the whole gradient by ``clip_norm`` (with
    the training loop's own :func:`~explodegrad.training.optimizers.clip_gradients`), in float64."""
    clip_norm = check_positive("clip_norm", clip_norm)
    if not grads:
        raise ValueError("grads: expected one gradient per layer, got none")
    sizes = [g.numel() for g in grads]
    grads = [g.detach().double() for g in grads]
    clipped = torch.split(clip_gradients(torch.cat(grads), clip_norm), sizes)
    before = np.array([float(torch.linalg.vector_norm(g)) for g in grads])
    after = np.array([float(torch.linalg.vector_norm(g)) for g in clipped])
    return before, after


def clipping_on_exploding(
    *,
    scale: Scale | None = None,
    device: Any = None,
    data: Dataset | str | None = None,
    seeds: int | Sequence[int] | None = None,
    steps: int | None = None,
    depth: int | None = None,
    width: int | None = None,
    lr: float = 0.1,
    clip_norm: float = EXPLODING_CLIP_NORM,
    stack_seeds: bool = False,
) -> ClippedExplosion:
    """Clipping by norm on a batch-normalized ReLU network, whose gradients explode with depth.

    Per seed: the network's per-layer gradient norms at initialization before and after
    clipping, its GSC rate at initialization, then two copies trained with SGD (momentum 0.9),
    one with clipping and one without, from the same weights and minibatches, and the GSC rate
    of each after training. GSC profiles are measured on one fixed batch of 128 examples.

    Args:
        scale: defaults of ``steps``, ``seeds``, ``depth`` and ``width`` (default QUICK).
        device: see :func:`~explodegrad.core.device.resolve_device`.
        data: a Dataset, a name, or None for the bundled digits (float64 on the CPU).
        seeds: a count or the seeds themselves (default: the scale's ``num_seeds``).
        steps: updates per run (default: the scale's ``train_steps``).
        depth, width: the network's size (default: the scale's).
        lr: SGD's learning rate.
        clip_norm: the bound on the global gradient norm.
        stack_seeds: train the seeds' clipped copies together, and their unclipped copies
            together (:func:`~explodegrad.training.loop.train_several`): two loops instead of
            two per seed. Every seed then trains on the first seed's minibatch order; its
            weights and measurement batch stay its own (the result's ``stacked_seeds``).
    """
    scale = resolve_scale(scale)
    chosen = resolve_seeds(seeds, scale.num_seeds)
    steps = check_int("steps", scale.train_steps if steps is None else steps, 1)
    depth = check_int("depth", scale.depth if depth is None else depth, 3)
    width = check_int("width", scale.width if width is None else width, 1)
    lr = check_positive("lr", lr)
    clip_norm = check_positive("clip_norm", clip_norm)
    stack_seeds = check_bool("stack_seeds", stack_seeds)
    digits = resolve_data("digits" if data is None else data, scale=scale, device=device)
    names = (
        "weight_grad_norms clipped_grad_norms rate_init r_squared_init rate_clipped r_squared_clipped "
        "rate_unclipped r_squared_unclipped clipped_fraction error_clipped error_unclipped"
    )
    fields: dict[str, list[Any]] = {name: [] for name in names.split(" ")}
    nets, batches = [], []
    for seed in chosen:
        net = build_mlp(
            depth,
            width,
            "relu",
            norm="batch",
            init="he",
            in_features=digits.in_features,
            out_features=digits.num_classes,
            seed=seed,
            device=digits.x_train.device,
            dtype=digits.x_train.dtype,
        )
        inputs, targets = digits.batch(min(128, len(digits.x_train)), seed=seed)
        before, after = clipped_layer_norms(layer_gradients(net, inputs, targets), clip_norm)
        fields["weight_grad_norms"].append(before)
        fields["clipped_grad_norms"].append(after)
        profile = gsc_profile(net, inputs, targets)
        fields["rate_init"].append(profile.rate)
        fields["r_squared_init"].append(profile.fit.r_squared)
        nets.append(net)
        batches.append((inputs, targets))
    settings = TrainSettings(
        optimizer="sgd", lr=lr, momentum=0.9, steps=steps, batch_size=128, record_every=10
    )
    for name, clip in (("clipped", clip_norm), ("unclipped", None)):
        trained = [copy.deepcopy(net) for net in nets]
        histories = train_per_seed(
            trained, chosen, digits, settings.with_(clip_norm=clip), together=stack_seeds
        )
        for net, (inputs, targets), history in zip(trained, batches, histories):
            after_training = gsc_profile(net, inputs, targets)
            fields[f"rate_{name}"].append(after_training.rate)
            fields[f"r_squared_{name}"].append(after_training.fit.r_squared)
            fields[f"error_{name}"].append(history.final_train_error)
            if clip is not None:
                norms = global_gradient_norms(history)
                fields["clipped_fraction"].append(float(np.mean(norms > clip_norm)) if norms.size else 0.0)
    return ClippedExplosion(
        label=f"{architecture_label('relu', 'batch', init='he')} d{depth} w{width}",
        seeds=chosen,
        clip_norm=clip_norm,
        lr=lr,
        steps=steps,
        layers=np.arange(1, depth + 1),
        **{name: np.asarray(values, dtype=float) for name, values in fields.items()},
        stacked_seeds=stack_seeds,
    )


def first_update_sizes(config: NetConfig, data: Dataset, settings: TrainSettings) -> np.ndarray:
    """``||delta theta_k|| / ||theta_k||`` of the very first update, for k = 1 ... L.

    Measured in float64 whatever the data's dtype: the update is the difference of two nearly
    equal weights, which float32 resolves to only about 1e-4 of its size (on an H200, in
    float32, clipping seemed to change the first update's balance by 7.9e-5).
    """
    data = resolve_data(data, dtype=torch.float64)
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
