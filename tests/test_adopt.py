"""from_sequential: a researcher's own nn.Sequential MLP measured as a DeepMLP."""

import numpy as np
import pytest
import torch
from torch import nn

from explodegrad import from_sequential, gsc_profile
from explodegrad.core.jacobian import jacobian_matrix
from explodegrad.measures.domain import domain_stats
from explodegrad.measures.paths import path_contributions

F64 = torch.float64


def batch(features=8, n=32, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=g, dtype=F64), torch.randint(0, classes, (n,), generator=g)


def own_mlp(norm=None, activation=nn.Tanh, width=16, depth=4, bias=True):
    torch.manual_seed(1)
    layers, features = [], 8
    for _ in range(depth - 1):
        layers.append(nn.Linear(features, width, bias=bias))
        if norm is not None:
            layers.append(norm(width))
        layers.append(activation())
        features = width
    layers.append(nn.Linear(features, 3))
    return nn.Sequential(*layers).to(F64)


@pytest.mark.parametrize(
    "norm, activation, bias",
    [
        (None, nn.Tanh, True),
        (nn.BatchNorm1d, nn.ReLU, True),
        (nn.LayerNorm, nn.GELU, False),
        (None, nn.SELU, True),
    ],
)
def test_the_adopted_network_computes_the_same_function_in_either_mode(norm, activation, bias):
    model = own_mlp(norm, activation, bias=bias)
    x, _ = batch()
    if norm is nn.BatchNorm1d:
        model(x * 3 + 1)  # running statistics away from their defaults
    net = from_sequential(model)
    assert net.config.depth == 4 and net.config.width == 16 and net.training == model.training
    torch.testing.assert_close(net(x), model(x), rtol=0, atol=0)
    model.eval(), net.eval()
    torch.testing.assert_close(net(x), model(x), rtol=0, atol=0)
    assert net.units[0].linear.weight.data_ptr() != model[0].weight.data_ptr()  # copies


def test_the_gsc_of_an_adopted_network_is_the_one_computed_by_hand():
    """GSC(k, 1) = ||J||_qm ||f_k|| / ||f_1|| from the model's own layers and an exact Jacobian."""
    model = own_mlp()
    x, y = batch()
    profile = gsc_profile(from_sequential(model), x, y, reference=1, method="exact")
    f_2 = model[:6](x)  # the last hidden layer's output (3 hidden layers of Linear + Tanh)
    jac = jacobian_matrix(model[6], f_2)  # the readout: f_2 -> f_1, batch-level
    qm = torch.sqrt(jac.pow(2).sum() / f_2.numel())
    by_hand = float((qm * torch.linalg.norm(f_2) / torch.linalg.norm(model(x))).detach())
    assert profile.gsc_at(2) == pytest.approx(by_hand, rel=1e-12)
    assert np.isfinite(domain_stats(from_sequential(model), x).sign_diversity).all()
    assert path_contributions(from_sequential(model), x, y, skip="linear_fit").effective_depth >= 0


@pytest.mark.parametrize(
    "model, message",
    [
        (
            nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3)),
            "widths",
        ),
        (
            nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3)),
            "activations",
        ),
        (nn.Sequential(nn.Linear(8, 16), nn.Dropout(), nn.ReLU(), nn.Linear(16, 3)), r"model\[1\]: Dropout"),
        (nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2), nn.Linear(16, 3)), "negative_slope"),
        (nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3), nn.Softmax(1)), "last layer"),
        (nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 3)), "needs an activation"),
        (nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(12, 3)), "takes 12 features"),
        (
            nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16, affine=False), nn.ReLU(), nn.Linear(16, 3)),
            "affine",
        ),
        (nn.Sequential(), "empty"),
    ],
)
def test_what_cannot_be_represented_is_refused_naming_it(model, message):
    with pytest.raises(ValueError, match=message):
        from_sequential(model)


def test_a_module_that_is_not_a_sequential_is_a_type_error():
    with pytest.raises(TypeError, match="model: expected a torch.nn.Sequential, got Linear"):
        from_sequential(nn.Linear(8, 3))


def test_adopting_leaves_the_global_random_state_alone():
    model = own_mlp()
    state = torch.get_rng_state()
    from_sequential(model)
    assert torch.equal(torch.get_rng_state(), state)


def test_the_readmes_example_runs_and_prints_what_it_says(capsys):
    """The README's 'Measuring your own network' example, executed as written."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Measuring your own network", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip()
    said = next(line for line in code.splitlines() if line.startswith("# explosion rate"))
    assert printed.startswith(said[2:].split(":")[0])  # "explosion rate r = 1.212 per layer (k = 2..11, ..."
