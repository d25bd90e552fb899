"""The architecture configuration: the first box of the data flow.

A :class:`NetConfig` names everything that defines a network before any weight exists:
depth, width, activation, normalization, initialization and the residual layout. It is a
frozen dataclass, so it can key caches (the widgets reuse results for a setting seen before)
and group sweeps (configurations with the same shapes train together).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from explodegrad.core.checks import check_bool, check_choice, check_int, check_positive, check_seed

ACTIVATIONS = ("relu", "tanh", "selu", "sigmoid", "linear", "gelu", "leaky_relu", "softplus")
NORMS = ("none", "batch", "layer")
INITS = ("he", "xavier", "lecun", "gaussian", "orthogonal", "looks_linear")
#: Activations the looks-linear orthogonal initial state can serve: it relies on
#: ``relu(u) - relu(-u) = u``, which holds for ReLU only.
LOOKS_LINEAR_ACTIVATIONS = ("relu",)
#: The deepest network a configuration may describe. Every layer is a Python module, built
#: in about half a millisecond, so depth 20,000 already takes 10 s; the course's networks
#: stay far below this bound.
MAX_DEPTH = 10_000
#: Measured seconds to build one layer (for the estimate in the refusal's message).
SECONDS_PER_LAYER = 5e-4


def check_depth(depth: Any, argument: str = "depth") -> int:
    """Return ``depth`` if it is an integer in ``1 .. MAX_DEPTH``; the refusal says why the bound.

    Raises ``TypeError`` for a non-integer (a bool, a float, a string), ``ValueError`` for an
    integer out of range, with the time a network that deep would take to build.
    """
    depth = check_int(argument, depth, 1)
    if depth > MAX_DEPTH:
        raise ValueError(
            f"{argument}={depth} is not allowed: {argument} must be an integer >= 1 and <= "
            f"{MAX_DEPTH}; building {depth} layers would take about "
            f"{depth * SECONDS_PER_LAYER:.0f} s (one Python module per layer), and every forward "
            "and backward pass as long again"
        )
    return depth


def residual_depth(depth: int, block_depth: int = 2) -> int:
    """The deepest residual network of at most ``depth`` weight layers: 2 + a multiple of ``block_depth``.

    A residual network is an input layer, blocks of ``block_depth`` layers and a readout, so
    depth 50 stays 50 and depth 21 becomes 20 (with blocks of 2). The one rule every study and
    explorer uses to fit a ResNet to a plain network's depth.
    """
    block_depth = check_int("block_depth", block_depth, 1)
    depth = check_int("depth", depth, 2 + block_depth)
    return depth - (depth - 2) % block_depth


def is_residual_depth(depth: int, block_depth: int = 2) -> bool:
    """Whether a residual network can have ``depth`` weight layers: 2 + a positive multiple of
    ``block_depth`` (the rule in words: :func:`residual_depth_rule`)."""
    return depth >= 2 + block_depth and (depth - 2) % block_depth == 0


def residual_depth_rule(block_depth: int = 2) -> str:
    """Which depths a residual network can have, in words, for the error messages of every
    function that builds one (:func:`is_residual_depth` checks it)."""
    allowed = "an even depth >= 4" if block_depth == 2 else f"2 + a positive multiple of {block_depth}"
    return f"an input layer, at least one block of {block_depth} layers and a readout, so {allowed}"


@dataclass(frozen=True)
class NetConfig:
    """Everything that defines a multilayer perceptron before its weights are drawn.

    Attributes:
        depth: number of weight (linear) layers, the readout included. A plain network has
            ``depth`` addressable layers; a residual one has an input layer, ``(depth - 2) /
            block_depth`` residual blocks and the readout.
        width: neurons per hidden layer.
        activation: one of :data:`ACTIVATIONS`.
        norm: ``"none"``, ``"batch"`` or ``"layer"`` normalization after each linear map.
        init: one of :data:`INITS` (see :mod:`explodegrad.core.init`).
        init_scale: gain multiplying the initializer's standard deviation; for ``"gaussian"``
            it is the absolute standard deviation (the naive N(0, sigma^2) draw), for
            ``"lecun"`` it is the per-layer gain sigma (std = sigma / sqrt(fan_in)).
        residual: build residual blocks ``x + residual_scale * r(x)`` instead of plain layers.
        residual_scale: multiplier of the residual branch; 0 makes every block the identity,
            small values give strong skips (large dilution).
        block_depth: linear layers inside one residual branch.
        in_features: input size (from the data).
        out_features: number of classes (from the data).
        seed: seed of the weight draw.
    """

    depth: int = 10
    width: int = 100
    activation: str = "relu"
    norm: str = "none"
    init: str = "he"
    init_scale: float = 1.0
    residual: bool = False
    residual_scale: float = 1.0
    block_depth: int = 2
    in_features: int = 64
    out_features: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "depth", check_depth(self.depth))
        set_(self, "width", check_int("width", self.width, 1))
        set_(self, "activation", check_choice("activation", self.activation, ACTIVATIONS))
        set_(self, "norm", check_choice("norm", self.norm, NORMS))
        set_(self, "init", check_choice("init", self.init, INITS))
        set_(self, "init_scale", check_positive("init_scale", self.init_scale))
        set_(self, "residual_scale", check_positive("residual_scale", self.residual_scale, allow_zero=True))
        set_(self, "block_depth", check_int("block_depth", self.block_depth, 1))
        set_(self, "in_features", check_int("in_features", self.in_features, 1))
        set_(self, "out_features", check_int("out_features", self.out_features, 1))
        set_(self, "seed", check_seed("seed", self.seed))
        set_(self, "residual", check_bool("residual", self.residual))
        if self.residual and not is_residual_depth(self.depth, self.block_depth):
            raise ValueError(
                f"depth={self.depth} is not allowed for a residual network with "
                f"block_depth={self.block_depth}: depth must be 2 + a positive multiple of "
                f"block_depth ({residual_depth_rule(self.block_depth)}), e.g. {2 + self.block_depth}"
            )
        if self.init == "looks_linear":
            if self.activation not in LOOKS_LINEAR_ACTIVATIONS:
                raise ValueError(
                    f"activation={self.activation!r} cannot be served by init='looks_linear': "
                    f"the looks-linear initial state needs one of {LOOKS_LINEAR_ACTIVATIONS} "
                    "(for other activations use init='orthogonal')"
                )
            if self.norm != "none":
                raise ValueError(
                    f"norm={self.norm!r} is not allowed with init='looks_linear': normalization "
                    "would make the initial network affine instead of an orthogonal linear map; "
                    "use norm='none'"
                )
            if self.residual:
                raise ValueError("residual=True is not allowed with init='looks_linear': use a plain network")
            if self.width % 2:
                raise ValueError(
                    f"width={self.width} is not allowed with init='looks_linear': the width must "
                    "be even (each neuron comes with its mirror image)"
                )

    @property
    def num_blocks(self) -> int:
        """Residual blocks (0 for a plain network)."""
        return (self.depth - 2) // self.block_depth if self.residual else 0

    @property
    def num_layers(self) -> int:
        """Addressable layers L: f_1 (logits) ... f_L (first layer's output)."""
        return self.num_blocks + 2 if self.residual else self.depth

    def linear_shapes(self) -> list[tuple[int, int]]:
        """(out, in) of every linear map, from the input to the output."""
        if self.depth == 1:
            return [(self.out_features, self.in_features)]
        hidden = self.num_blocks * self.block_depth if self.residual else self.depth - 2
        return (
            [(self.width, self.in_features)]
            + [(self.width, self.width)] * hidden
            + [(self.out_features, self.width)]
        )

    def num_parameters(self) -> int:
        """Trainable scalars of the network this describes (no network is built).

        Linear layers count weights and biases; batch and layer norm add a scale and a shift per
        neuron of every normalized (hidden) layer.
        """
        shapes = self.linear_shapes()
        linear = sum(out * inp + out for out, inp in shapes)
        return linear + (0 if self.norm == "none" else 2 * self.width * (len(shapes) - 1))

    def shape_key(self) -> tuple:
        """The architecture: what must agree for two configurations to be the same network
        apart from its numbers (seed, initializer, residual scale): :meth:`stack_key` and the
        activation."""
        return (*self.stack_key(), self.activation)

    def stack_key(self) -> tuple:
        """What must agree for two configurations to be trained as one stacked group.

        The architecture without the activation: the activation has no parameters, so
        networks that differ only there have the same parameters and buffers and stack
        together (the stacked model applies each model's own activation). Batch and layer
        norm have equal parameters too but stay apart: a stack of both launches more
        operations per step than two stacks (measured, ``benchmarks/README.md``).
        """
        return (
            self.depth,
            self.width,
            self.norm,
            self.residual,
            self.block_depth,
            self.in_features,
            self.out_features,
        )

    def with_(self, **changes: Any) -> NetConfig:
        """A copy with some fields changed (validated again)."""
        known = [field.name for field in fields(self)]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise TypeError(
                f"{unknown[0]}={changes[unknown[0]]!r} is not allowed: NetConfig has no field "
                f"{unknown[0]!r}; the fields are {', '.join(known)}"
            )
        return replace(self, **changes)

    def label(self) -> str:
        """A short human-readable name, e.g. ``relu/batch/he d50 w100``."""
        kind = f" res x{self.residual_scale:g}" if self.residual else ""
        return f"{self.activation}/{self.norm}/{self.init} d{self.depth} w{self.width}{kind}"

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, for tables and JSON."""
        return asdict(self)
