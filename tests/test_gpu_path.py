"""The GPU path, checked on a CPU: experiments take their device from the data, the stacked
step stays on the device between sync points (no host round trip, one fused batch norm, an
operation count that does not grow with the number of models), and the acceptance dry run.

Two CPU stand-ins for a GPU: torch's ``meta`` device (tensors without values: anything built
on the default device instead of the data's shows up as a CPU tensor), and ``FakeTensorMode``,
which fakes CUDA tensors on a CPU-only build, refuses to mix devices in one operation and
raises when a value is read back to the host (``.item()``, ``bool()``, ``.nonzero()``).
"""

import types
from pathlib import Path

import numpy as np
import pytest
import torch

from explodegrad import load_digits
from explodegrad.studies import overflow, recurrent
from explodegrad.training.loop import TrainSettings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = TrainSettings(steps=12, batch_size=32, record_every=4, eval_size=128)


@pytest.fixture(scope="module")
def digits64():
    return load_digits(dtype=torch.float64)


def _meta_data(n: int = 40, features: int = 64, classes: int = 10) -> types.SimpleNamespace:
    """A stand-in for a Dataset on the meta device (a Dataset checks values, meta has none)."""
    x = torch.empty(n, features, device="meta")
    y = torch.zeros(n, dtype=torch.int64, device="meta")
    return types.SimpleNamespace(
        x_train=x,
        y_train=y,
        x_test=x,
        y_test=y,
        in_features=features,
        num_classes=classes,
        device=x.device,
        batch=lambda size, seed=0, split="train": (x[:size], y[:size]),
    )


# --- 1. the experiments take their device from the data -----------------------------------


def test_find_overflow_builds_its_networks_on_the_batchs_device(monkeypatch):
    asked, fed = [], []
    build_mlp = overflow.build_mlp

    def build_on_cpu(*args, device=None, **kwargs):  # the network is built where it is asked to be
        asked.append(torch.device(device))
        return build_mlp(*args, **kwargs)

    def first_nonfinite(net, x, y):
        fed.append((x.device, y.device))
        return None

    def sgd(net, x, y, steps, lr):
        fed.append((x.device, y.device))
        return np.array([1.0])

    monkeypatch.setattr(overflow, "resolve_data", lambda data, **kw: _meta_data())
    monkeypatch.setattr(overflow, "build_mlp", build_on_cpu)
    monkeypatch.setattr(overflow, "_first_nonfinite", first_nonfinite)
    monkeypatch.setattr(overflow, "_sgd_until_nonfinite", sgd)
    result = overflow.find_overflow(width=8, max_depth=3, data="digits", steps=1)
    assert result.depth is None and len(asked) == len(fed) == 2  # the search's network, the trained one
    assert [d.type for d in asked] == ["meta", "meta"]
    assert all(device.type == "meta" for devices in fed for device in devices)


def test_recurrent_gradients_builds_its_model_on_the_datas_device(monkeypatch):
    seen = []

    def input_gradients(model, sequences, labels):
        seen.append((next(model.parameters()).device, sequences.device, labels.device))
        return np.ones(8), 0.5

    monkeypatch.setattr(recurrent, "resolve_data", lambda data, **kw: _meta_data())
    monkeypatch.setattr(recurrent, "_input_gradients", input_gradients)
    result = recurrent.recurrent_gradients("gru", steps_trained=0, hidden=4, batch=8)
    assert len(seen) == 2 and all(device.type == "meta" for devices in seen for device in devices)
    assert result.train_losses.shape == (0,)


def test_recurrent_minibatches_are_drawn_once_on_the_cpu_and_live_on_the_datas_device():
    indices = recurrent.minibatch_indices(50, steps=4, batch=6, seed=3)
    generator = torch.Generator().manual_seed(3)
    one_by_one = [torch.randint(50, (6,), generator=generator) for _ in range(4)]
    torch.testing.assert_close(indices, torch.stack(one_by_one), rtol=0, atol=0)  # as drawn before
    assert recurrent.minibatch_indices(50, 4, 6, 3, device="meta").device.type == "meta"


def test_recurrent_gradients_records_every_training_loss():
    result = recurrent.recurrent_gradients("rnn", steps_trained=3, hidden=4, batch=8)
    assert result.train_losses.shape == (3,) and result.train_losses.dtype == np.float64
    assert np.isfinite(result.train_losses).all()
