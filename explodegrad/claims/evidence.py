"""The studies claims are judged on, computed by name and kept for reuse within a process.

Each entry of :data:`STUDIES` builds one study for a :class:`EvidenceSetting` (scale, seeds,
device). Notebooks usually pass the result they already computed to
:func:`explodegrad.claims.show`; the command line and the report ask for studies by name.
Measurements at initialization run in float64 and are deterministic; studies that train run
every seed (the scale's ``num_seeds`` by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

from explodegrad.core.checks import check_choice
from explodegrad.core.config import residual_depth
from explodegrad.core.data import load_digits
from explodegrad.core.device import default_dtype, resolve_device
from explodegrad.core.nets import build_mlp
from explodegrad.core.scales import EVIDENCE, PAPER, QUICK, SCALES, Scale
from explodegrad.core.seeds import resolve_seeds
from explodegrad.measures import dilution, domain
from explodegrad.measures import gsc as gsc_measure
from explodegrad.studies import (
    chain_rule,
    clipping,
    common,
    depth_limit,
    effective_depth,
    gradient_descent,
    gsc_meaning,
    optimizers,
    orthogonal,
    overflow,
    recurrent,
    recurrent_memory,
    remedies,
    stored,
    survey,
    weight_growth,
    width_depth,
)

#: The studies that train their seeds together at the paper scale (:attr:`EvidenceSetting.stack_seeds`).
STACKED_SEED_STUDIES = ("effective-depth", "orthogonal", "optimizers", "clipping-runs")


@dataclass(frozen=True)
class EvidenceSetting:
    """Where and how big: the scale, the seeds of every study that trains, the device."""

    scale: Scale
    seeds: tuple[int, ...]
    device: torch.device

    @property
    def stack_seeds(self) -> bool:
        """Whether the studies of :data:`STACKED_SEED_STUDIES` train their seeds together (every
        network of one shape and setting in one stack), on the first seed's minibatch order
        (each keeps its own weights): at the paper scale, where a
        loop per depth-50 network would leave a GPU waiting (issue 16); elsewhere each seed
        draws its own order. The notebooks call the studies one network at a time at every
        scale, so at the paper scale their numbers come from other runs than the report's."""
        return self.scale.name == PAPER.name

    @property
    def survey_size(self) -> tuple[int, int]:
        """Depth and width of the at-initialization survey: the paper's 50 x 100 at the course's
        scales (it is cheap), the scale's own size otherwise (small test scales)."""
        if self.scale.name in (QUICK.name, PAPER.name):
            return PAPER.depth, PAPER.width
        return residual_depth(self.scale.depth), self.scale.width


def setting(scale: Scale | None = None, seeds: Any = None, device: Any = None) -> EvidenceSetting:
    """An :class:`EvidenceSetting`; ``device`` may be a torch device, its name or a DeviceChoice."""
    scale = QUICK if scale is None else scale
    if isinstance(scale, str):
        scale = SCALES[check_choice("scale", scale, tuple(SCALES))]
    if not isinstance(scale, Scale):
        raise TypeError(f"scale must be a Scale or one of {tuple(SCALES)}, got {type(scale).__name__}")
    device = torch.device("cpu") if device is None else resolve_device(device)
    return EvidenceSetting(scale, resolve_seeds(seeds, scale.num_seeds), device)


# ------------------------------------------------------------------------ chapters 01 and 02


def scalar_chains(where: EvidenceSetting) -> dict[float, chain_rule.ChainResult]:
    """w -> the scalar chain of depth 30 (chapter 01)."""
    return {w: chain_rule.scalar_chain(weight=w, depth=30) for w in (0.9, 1.0, 1.1)}


def deep_linear(where: EvidenceSetting) -> dict[float, list[chain_rule.LinearGradients]]:
    """sigma -> one 30-layer linear network per seed (chapter 01)."""
    return {
        sigma: [
            chain_rule.deep_linear_gradients(depth=30, width=100, sigma=sigma, seed=seed)
            for seed in where.seeds
        ]
        for sigma in (0.8, 1.0, 1.2)
    }


def overflow_study(where: EvidenceSetting) -> dict[str, overflow.OverflowResult]:
    """dtype -> where a network whose layers multiply by 10 overflows (chapter 01)."""
    return {
        dtype: overflow.find_overflow(width=64, sigma=10.0, dtype=dtype, max_depth=400)
        for dtype in ("float16", "float32", "float64")
    }


def overshoot(where: EvidenceSetting) -> dict[float, gradient_descent.PathResult]:
    """lr -> gradient descent on the quadratic of curvatures 1 and 20 (chapter 01)."""
    return {lr: gradient_descent.gradient_descent_path(lr=lr, steps=30) for lr in (0.09, 0.11)}


def init_scales(where: EvidenceSetting) -> chain_rule.InitScales:
    """Gaussian, Xavier and He in a 20-layer ReLU network, float64 (chapter 02)."""
    return chain_rule.init_scales(depth=20, width=100, activation="relu", dtype=torch.float64)


def recurrent_study(where: EvidenceSetting) -> dict[str, list[recurrent.RecurrentGradients]]:
    """cell -> one :func:`~explodegrad.studies.recurrent.recurrent_gradients` run per seed
    (200 Adam steps)."""
    return {
        cell: [recurrent.recurrent_gradients(cell, steps_trained=200, seed=seed) for seed in where.seeds]
        for cell in recurrent.CELLS
    }


def recurrent_memory_study(where: EvidenceSetting) -> recurrent_memory.FirstTokenMemory:
    """Remember the first token at T = 5, 20, 50: RNN, LSTM and GRU, 200 Adam steps, every seed
    (chapter 02)."""
    return recurrent_memory.first_token_memory(seeds=where.seeds, device=where.device)


def clipping_runs(where: EvidenceSetting) -> clipping.ClippingResult:
    """name -> one training history per seed: a 10-layer ReLU network, SGD at lr 0.1, with and
    without clipping, on the bundled digits (chapter 02); the seeds train together at the paper
    scale (:attr:`EvidenceSetting.stack_seeds`)."""
    return clipping.clipping_comparison(
        steps=where.scale.train_steps,
        seeds=where.seeds,
        device=where.device,
        stack_seeds=where.stack_seeds,
    )


# ----------------------------------------------------------------------------- chapter 03


def _digits_batch() -> tuple[torch.Tensor, torch.Tensor]:
    return load_digits(dtype=torch.float64).batch(256, seed=0)


def rescaling(where: EvidenceSetting) -> gsc_meaning.RescalingComparison:
    """A 10-layer ReLU network and its twin with f_5 scaled by 10 (chapter 03, float64)."""
    inputs, targets = _digits_batch()
    net = build_mlp(depth=10, width=64, activation="relu", init="he", dtype=torch.float64)
    return gsc_meaning.rescaling_comparison(net, inputs, targets, k=5, factor=10.0)


def perturbation(where: EvidenceSetting) -> gsc_meaning.PerturbationCheck:
    """Brute-force relative nudges against the GSC in a batch-normalized ReLU network (chapter 03)."""
    inputs, targets = _digits_batch()
    depth = where.scale.depth
    net = build_mlp(depth, 64, "relu", norm="batch", init="he", dtype=torch.float64)
    return gsc_meaning.perturbation_check(
        net, inputs, targets, num_directions=32, layers=range(2, depth + 2, max(1, depth // 5))
    )


def relu_profiles(where: EvidenceSetting) -> dict[str, Any]:
    """relu/none and relu/batch GSC profiles at the scale's depth (chapter 03, float64)."""
    from explodegrad.measures.gsc import gsc_profile

    inputs, targets = _digits_batch()
    depth = where.scale.depth
    return {
        norm: gsc_profile(
            build_mlp(depth, 64, "relu", norm=norm, init="he", dtype=torch.float64), inputs, targets
        )
        for norm in ("none", "batch")
    }


# ----------------------------------------------------------------------------- chapters 04-06


def pseudo_linearity(where: EvidenceSetting) -> dict[str, float]:
    """Chapter 05's toys: 1 - R^2 of tanh and ReLU on evenly spread pre-activations (exact)."""
    from explodegrad.measures.domain import linear_fit_error

    u = torch.linspace(-1.0, 1.0, 1001, dtype=torch.float64)
    return {
        "tanh [-0.1, 0.1]": linear_fit_error(0.1 * u, "tanh"),
        "tanh [-3, 3]": linear_fit_error(3.0 * u, "tanh"),
        "relu [0.5, 2.5]": linear_fit_error(1.5 + u, "relu"),
        "relu [-2.5, -0.5]": linear_fit_error(-1.5 + u, "relu"),
        "relu [-1, 1]": linear_fit_error(u, "relu"),
    }


def architecture_survey(where: EvidenceSetting) -> survey.SurveyResult:
    """Every activation x normalization, plain and residual, at initialization (float64)."""
    depth, width = where.survey_size
    n_train = where.scale.n_train or 256  # a small test scale has fewer examples than the batch
    return survey.architecture_survey(
        depth=depth,
        width=width,
        batch_size=min(256, n_train),
        residual=(False, True),
        scale=where.scale,
        device=where.device,
    )


def _stored_or(name: str, where: EvidenceSetting, compute: Callable[[], Any]) -> Any:
    """At the evidence scale the stored file ``name`` when it ships with the package, else ``compute()``."""
    if where.scale.name == EVIDENCE.name and name in stored.stored_names():
        return stored.load(name).result
    return compute()


def optimizers_study(where: EvidenceSetting) -> optimizers.OptimizerStudy:
    """SGD, Adam and RMSprop on batch-normalized ReLU, every seed (chapter 04); at the evidence
    scale the stored depth-50 CIFAR-10 study, each optimizer at its tuned rate."""
    if where.scale.name == EVIDENCE.name:
        return _stored_or(
            "optimizers-relu-batch-cifar10",
            where,
            lambda: optimizers.optimizer_evidence(device=where.device, seeds=where.seeds),
        )
    return optimizers.optimizer_study(
        scale=where.scale, device=where.device, seeds=where.seeds, stack_seeds=where.stack_seeds
    )


def calm_optimizers_study(where: EvidenceSetting) -> optimizers.OptimizerStudy:
    """The evidence scale's optimizer study on ReLU without normalization (chapter 04)."""
    return _stored_or(
        "optimizers-relu-none-cifar10",
        where,
        lambda: optimizers.optimizer_evidence(
            architecture="relu-none", device=where.device, seeds=where.seeds
        ),
    )


def trained_depth_study(where: EvidenceSetting) -> effective_depth.TrainedDepthStudy:
    """Effective depth and Taylor on the stored depth-limit study's depth-50 networks (chapter 07)."""
    return _stored_or(
        "trained-depth-cifar10",
        where,
        lambda: effective_depth.trained_depth_evidence(device=where.device),
    )


def weight_growth_study(where: EvidenceSetting) -> weight_growth.WeightGrowth:
    """SGD's first 60 steps at depths 20 and 50: the first layer's weight norm and step (chapter 04)."""
    return weight_growth.sgd_weight_growth(scale=where.scale, device=where.device, seeds=where.seeds)


def depth_errors(where: EvidenceSetting) -> depth_limit.DepthStudy:
    """Training error against depth for two exploding and one calm architecture (chapter 04)."""
    return depth_limit.depth_study(scale=where.scale, device=where.device, seeds=where.seeds)


def dilution_study(where: EvidenceSetting) -> dilution.DilutionResult:
    """Dilution in a batch-normalized ReLU ResNet of the scale's size at initialization (chapter 06)."""
    data = common.resolve_data(scale=where.scale, device=where.device)
    inputs, _ = data.batch(min(256, len(data.x_train)))
    net = build_mlp(
        depth=residual_depth(where.scale.depth),
        width=where.scale.width,
        activation="relu",
        norm="batch",
        residual=True,
        in_features=data.in_features,
        out_features=data.num_classes,
        device=where.device,
        dtype=data.x_train.dtype,
    )
    return dilution.dilution_profile(net, inputs)


# ----------------------------------------------------------------------------- chapters 07-08


def paths_at_init(where: EvidenceSetting) -> dict[str, Any]:
    """label -> path contributions at initialization with the natural skip (chapter 07)."""
    scale = where.scale
    return {
        a.label: effective_depth.paths_at_initialization(
            depth=residual_depth(scale.depth),
            width=scale.width,
            activation=a.activation,
            norm=a.norm,
            residual=a.residual,
            batch_size=2 * scale.batch_size,
            device=where.device,
            dtype=default_dtype(where.device),
        )
        for a in effective_depth.DEFAULT_ARCHITECTURES
    }


def paths_by_depth(where: EvidenceSetting) -> dict[int, dict[str, float]]:
    """Depth -> label -> mean path share at initialization of tanh, plain and ResNet, at the
    quick and the paper depth (20 and 50; a small test scale: its depth and twice it), at the
    scale's width, float64 (chapter 07)."""
    scale = where.scale
    if scale.name in (QUICK.name, PAPER.name):
        depths = (QUICK.depth, PAPER.depth)
    else:
        depths = (residual_depth(scale.depth), residual_depth(2 * scale.depth))
    return effective_depth.path_shares_by_depth(
        depths,
        scale.width,
        [a for a in effective_depth.DEFAULT_ARCHITECTURES if a.activation == "tanh"],
        batch_size=2 * scale.batch_size,
        device=where.device,
    )


def effective_depth_study(where: EvidenceSetting) -> effective_depth.EffectiveDepthStudy:
    """Effective depth during training and the Taylor experiment, every seed (chapter 07); the
    seeds train together at the paper scale (:attr:`EvidenceSetting.stack_seeds`)."""
    return effective_depth.effective_depth_study(
        scale=where.scale, device=where.device, seeds=where.seeds, stack_seeds=where.stack_seeds
    )


def orthogonal_study(where: EvidenceSetting) -> orthogonal.OrthogonalStateResult:
    """He, looks-linear and orthogonal tanh starts in training, every seed (chapter 08); the seeds
    train together at the paper scale (:attr:`EvidenceSetting.stack_seeds`)."""
    return orthogonal.orthogonal_initial_state(
        scale=where.scale, device=where.device, seeds=where.seeds, stack_seeds=where.stack_seeds
    )


def width_depth_study(where: EvidenceSetting) -> width_depth.WidthDepthResult:
    """Width against depth at one parameter budget, every seed (chapter 08)."""
    return width_depth.width_vs_depth(scale=where.scale, device=where.device, seeds=where.seeds)


def clipping_study(where: EvidenceSetting) -> remedies.RemedyEvidence:
    """Clipping by norm on batch-normalized ReLU: the first update's balance with and without."""
    return remedies.batch_norm_clipping(
        where.scale, common.resolve_data(scale=where.scale, device=where.device), where.seeds[0]
    )


#: Study name -> builder. Every claim names one of these.
def depth_limit_study(where: EvidenceSetting) -> depth_limit.DepthStudy:
    """The depth limit on CIFAR-10 (chapter 04): at the evidence scale the stored evidence shipped
    with the package; computed (half an hour on a 2-core CPU) when it is absent or at another scale."""
    return _stored_or(
        "depth-limit-cifar10",
        where,
        lambda: depth_limit.depth_limit_evidence(
            data=where.scale.dataset, device=where.device, seeds=where.seeds
        ),
    )


STUDIES: dict[str, Callable[[EvidenceSetting], Any]] = {
    "scalar-chains": scalar_chains,
    "deep-linear": deep_linear,
    "overflow": overflow_study,
    "overshoot": overshoot,
    "recurrent": recurrent_study,
    "recurrent-memory": recurrent_memory_study,
    "clipping-runs": clipping_runs,
    "init-scales": init_scales,
    "rescaling": rescaling,
    "perturbation": perturbation,
    "relu-profiles": relu_profiles,
    "pseudo-linearity": pseudo_linearity,
    "survey": architecture_survey,
    "optimizers": optimizers_study,
    "optimizers-calm": calm_optimizers_study,
    "weight-growth": weight_growth_study,
    "depth-errors": depth_errors,
    "depth-limit": depth_limit_study,
    "dilution": dilution_study,
    "paths-at-init": paths_at_init,
    "paths-by-depth": paths_by_depth,
    "effective-depth": effective_depth_study,
    "trained-depth": trained_depth_study,
    "orthogonal": orthogonal_study,
    "width-depth": width_depth_study,
    "clipping": clipping_study,
}


#: Study name -> the module whose experiment it runs; a module of :mod:`explodegrad.studies`
#: lists the claims judged on it in its ``CLAIMS`` (the remaining three are measurements of
#: :mod:`explodegrad.measures`, judged directly).
STUDY_MODULES: dict[str, ModuleType] = {
    "scalar-chains": chain_rule,
    "deep-linear": chain_rule,
    "overflow": overflow,
    "overshoot": gradient_descent,
    "recurrent": recurrent,
    "recurrent-memory": recurrent_memory,
    "clipping-runs": clipping,
    "init-scales": chain_rule,
    "rescaling": gsc_meaning,
    "perturbation": gsc_meaning,
    "relu-profiles": gsc_measure,
    "pseudo-linearity": domain,
    "survey": survey,
    "optimizers": optimizers,
    "optimizers-calm": optimizers,
    "weight-growth": weight_growth,
    "depth-errors": depth_limit,
    "depth-limit": depth_limit,
    "dilution": dilution,
    "paths-at-init": effective_depth,
    "paths-by-depth": effective_depth,
    "effective-depth": effective_depth,
    "trained-depth": effective_depth,
    "orthogonal": orthogonal,
    "width-depth": width_depth,
    "clipping": remedies,
}

_CACHE: dict[tuple[str, EvidenceSetting], Any] = {}


def study(name: str, where: EvidenceSetting) -> Any:
    """The study ``name`` for ``where``, computed once per process."""
    if name not in STUDIES:
        raise ValueError(f"study={name!r} is not allowed: studies are {', '.join(STUDIES)}")
    key = (name, where)
    if key not in _CACHE:
        _CACHE[key] = STUDIES[name](where)
    return _CACHE[key]


def clear_cache() -> None:
    """Forget every computed study (tests; after changing the library)."""
    _CACHE.clear()
