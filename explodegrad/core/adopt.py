"""Measure a network you built yourself: a plain ``nn.Sequential`` MLP as a :class:`DeepMLP`.

Every measure (GSC, domain statistics, paths, Taylor) needs to address the paper's layers
f_1 ... f_L, which a :class:`~explodegrad.core.nets.DeepMLP` provides. :func:`from_sequential`
reads a PyTorch MLP of the same shape, ``Linear -> [BatchNorm1d | LayerNorm] -> activation``
repeated and a final ``Linear``, and returns a DeepMLP that computes the same function with
the same parameters (copied, so the two do not share storage)::

    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    net = from_sequential(model)
    gsc_profile(net, x, y)

What it cannot read is refused with a message naming the module: hidden layers of different
widths, different activations or norms in different layers, residual connections (they are
not visible in a Sequential), or modules other than those above.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from explodegrad.core.config import ACTIVATIONS, NetConfig
from explodegrad.core.nets import DeepMLP, make_activation

#: The activation modules read, each the module the library builds for a name of
#: :data:`~explodegrad.core.config.ACTIVATIONS` (:func:`~explodegrad.core.nets.make_activation`);
#: a model's module must match it in its settings too: another slope or approximation would be
#: another function.
_LIBRARY_ACTIVATIONS: dict[type[nn.Module], tuple[str, nn.Module]] = {
    type(module): (name, module) for name, module in ((name, make_activation(name)) for name in ACTIVATIONS)
}


def _activation_name(module: nn.Module, where: str) -> str | None:
    """The library's name for an activation module, None if ``module`` is not one."""
    if type(module) not in _LIBRARY_ACTIVATIONS:
        return None
    name, reference = _LIBRARY_ACTIVATIONS[type(module)]
    changed = [
        key
        for key in ("negative_slope", "approximate", "beta", "threshold")
        if getattr(module, key, None) != getattr(reference, key, None)
    ]
    if changed:
        raise ValueError(
            f"model{where}: {module!r} is not allowed: only {type(module).__name__}'s default "
            f"{', '.join(changed)} is the library's {name}"
        )
    return name


def _norm_name(module: nn.Module) -> str | None:
    if type(module) is nn.BatchNorm1d:
        return "batch"
    if type(module) is nn.LayerNorm:
        return "layer"
    return None


def _layers(model: nn.Sequential) -> list[tuple[nn.Linear, nn.Module | None, str | None]]:
    """(linear, norm or None, activation name or None) per weight layer, checked."""
    modules = list(model)
    layers: list[tuple[nn.Linear, nn.Module | None, str | None]] = []
    index = 0
    while index < len(modules):
        where = f"[{index}]"
        linear = modules[index]
        if type(linear) is not nn.Linear:
            raise ValueError(
                f"model{where}: {linear!r} is not allowed here: each layer starts with an nn.Linear, "
                "followed by an optional nn.BatchNorm1d or nn.LayerNorm and one activation "
                f"({', '.join(kind.__name__ for kind in _LIBRARY_ACTIVATIONS)}); the last layer is an "
                "nn.Linear alone"
            )
        index += 1
        norm = modules[index] if index < len(modules) and _norm_name(modules[index]) else None
        index += norm is not None
        activation = _activation_name(modules[index], f"[{index}]") if index < len(modules) else None
        index += activation is not None
        if norm is not None and activation is None:
            raise ValueError(
                f"model[{index - 1}]: a normalization must be followed by an activation (the "
                "library's layer is linear -> norm -> activation)"
            )
        layers.append((linear, norm, activation))
    return layers


def _uniform(values: list[Any], what: str, allowed: str) -> Any:
    if len(set(values)) > 1:
        raise ValueError(f"model: the hidden layers have {what} {values}: {allowed}")
    return values[0]


def _copy_norm(target: nn.Module, source: nn.Module) -> None:
    """Copy a norm's parameters, buffers and settings (eps, momentum, affine flags)."""
    size = source.num_features if isinstance(source, nn.BatchNorm1d) else tuple(source.normalized_shape)
    wanted = target.num_features if isinstance(target, nn.BatchNorm1d) else tuple(target.normalized_shape)
    if size != wanted:
        raise ValueError(
            f"model: {source!r} is not allowed: it normalizes {size} features, its layer gives {wanted}"
        )
    for key in ("eps", "momentum"):
        if hasattr(source, key):
            setattr(target, key, getattr(source, key))
    if isinstance(source, nn.BatchNorm1d):
        if not source.affine or not source.track_running_stats:
            raise ValueError(
                f"model: {source!r} is not allowed: the library's batch norm is affine and tracks "
                "running statistics"
            )
        target.load_state_dict(source.state_dict())
    else:
        if source.elementwise_affine:
            target.weight.copy_(source.weight)
            if source.bias is not None:
                target.bias.copy_(source.bias)
            else:
                target.bias.zero_()
        else:
            target.weight.fill_(1.0)
            target.bias.zero_()


def from_sequential(model: nn.Sequential) -> DeepMLP:
    """A :class:`DeepMLP` computing what ``model`` computes, with copies of its parameters.

    Args:
        model: an ``nn.Sequential`` of layers ``Linear -> [BatchNorm1d | LayerNorm] ->
            activation`` (all hidden layers of one width, with the same norm and activation)
            and a final ``Linear`` producing the logits.

    Returns:
        The DeepMLP on the model's device and dtype, in the model's training mode. Its
        ``config`` describes the shape; its ``init`` is the default ``"he"`` and describes no
        draw: the weights are the model's (``build_from_config(net.config)`` would draw new
        He weights).

    Raises:
        TypeError: ``model`` is not an ``nn.Sequential``.
        ValueError: a module or a combination the library cannot represent, named.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model: expected a torch.nn.Sequential, got {type(model).__name__}")
    if len(model) == 0:
        raise ValueError("model: the Sequential is empty; it needs at least a final nn.Linear")
    layers = _layers(model)
    *hidden, (readout, readout_norm, readout_activation) = layers
    if readout_norm is not None or readout_activation is not None:
        raise ValueError(
            "model: the last layer must be an nn.Linear alone (the logits f_1): the loss applies the softmax"
        )
    if any(activation is None for _, _, activation in hidden):
        raise ValueError("model: every layer but the last needs an activation after its nn.Linear")
    widths = [linear.out_features for linear, _, _ in hidden]
    width = _uniform(widths, "widths", "the library's networks have one hidden width") if hidden else 1
    activation = _uniform([a for _, _, a in hidden], "activations", "use one activation throughout")
    activation = activation if hidden else "relu"
    norm = _uniform(
        [_norm_name(n) if n is not None else "none" for _, n, _ in hidden], "norms", "use one kind throughout"
    )
    norm = norm if hidden else "none"
    linears = [linear for linear, _, _ in layers]
    for position, (before, after) in enumerate(zip(linears, linears[1:])):
        if after.in_features != before.out_features:
            raise ValueError(
                f"model: layer {position + 1} takes {after.in_features} features but layer {position} "
                f"gives {before.out_features}"
            )
    parameter = next(model.parameters())
    config = NetConfig(
        depth=len(layers),
        width=width,
        activation=activation,
        norm=norm,
        in_features=linears[0].in_features,
        out_features=readout.out_features,
    )
    with torch.random.fork_rng(devices=[]):  # the throw-away default draw leaves the global RNG alone
        net = DeepMLP(config)
    net = net.to(device=parameter.device, dtype=parameter.dtype)
    with torch.no_grad():
        for unit, (linear, source_norm, _) in zip(net.units, layers):
            unit.linear.weight.copy_(linear.weight)
            if linear.bias is not None:
                unit.linear.bias.copy_(linear.bias)
            else:
                unit.linear.bias.zero_()
            if source_norm is not None:
                _copy_norm(unit.norm, source_norm)
    return net.train(model.training)
