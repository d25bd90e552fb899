"""Scales (quick on a CPU, the paper's on a GPU) and the course's setup call."""

import random
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from helpers import CPU

from explodegrad import __version__, course
from explodegrad.core.data import DATA_ENV, load_digits
from explodegrad.core.device import DEVICE_ENV, DeviceChoice, pick_device
from explodegrad.core.nets import build_mlp
from explodegrad.core.scales import PAPER, QUICK, SCALE_ENV, load_scale_data, pick_scale
from explodegrad.core.trace import layer_rms, trace
from explodegrad.studies import signal_scale

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FAKE_GPU = DeviceChoice(torch.device("cuda"), "a pretend GPU", "test")


@pytest.fixture(autouse=True)
def _clean_environment(tmp_path, monkeypatch):
    for name in (SCALE_ENV, DEVICE_ENV, DATA_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no cached CIFAR-10 copy


def test_quick_and_paper_sizes():
    assert (QUICK.name, QUICK.depth, QUICK.width, QUICK.dataset) == ("quick", 20, 64, "digits")
    assert QUICK.n_train is None
    assert (PAPER.name, PAPER.depth, PAPER.width, PAPER.dataset) == ("paper", 50, 100, "cifar10")
    assert PAPER.train_steps > QUICK.train_steps


def test_describe_names_the_sizes():
    assert QUICK.describe() == "quick: depth 20, width 64, digits, batch 128, 200 training steps"
    assert "first 500 training examples" in QUICK.with_(n_train=500).describe()


def test_cpu_gets_quick_and_says_why():
    scale = pick_scale(CPU)
    assert scale == QUICK
    assert "no GPU" in scale.reason and SCALE_ENV in scale.reason


def test_gpu_gets_paper_with_cifar10_when_present(monkeypatch):
    if not (SHARED_DATA / "cifar-10-batches-py").is_dir():
        pytest.skip("no shared CIFAR-10 subset here")
    monkeypatch.setenv(DATA_ENV, str(SHARED_DATA))
    scale = pick_scale(FAKE_GPU)
    assert scale == PAPER
    assert "a GPU is available" in scale.reason


def test_gpu_without_cifar10_falls_back_to_digits_and_says_so():
    scale = pick_scale(FAKE_GPU)
    assert (scale.name, scale.depth, scale.width, scale.dataset) == ("paper", 50, 100, "digits")
    assert "CIFAR-10 was not found" in scale.reason and DATA_ENV in scale.reason


def test_environment_variable_overrides_the_device_rule(monkeypatch):
    monkeypatch.setenv(SCALE_ENV, "quick")
    assert pick_scale(FAKE_GPU) == QUICK
    monkeypatch.setenv(SCALE_ENV, "Paper")
    scale = pick_scale(CPU)
    assert scale.name == "paper" and SCALE_ENV in scale.reason


def test_argument_beats_environment_variable(monkeypatch):
    monkeypatch.setenv(SCALE_ENV, "paper")
    assert pick_scale(CPU, "quick") == QUICK
    custom = QUICK.with_(name="tiny", depth=3)
    assert pick_scale(CPU, custom) == custom


def test_bad_scale_names_raise(monkeypatch):
    with pytest.raises(ValueError, match=r"override='huge' .*'quick', 'evidence', 'paper'"):
        pick_scale(CPU, "huge")
    monkeypatch.setenv(SCALE_ENV, "fast")
    with pytest.raises(ValueError, match=rf"{SCALE_ENV}='fast'"):
        pick_scale(CPU)


def test_bad_device_choice_raises():
    with pytest.raises(TypeError, match="device_choice='cpu'"):
        pick_scale("cpu")


@pytest.mark.parametrize(
    "changes, argument",
    [
        ({"depth": 0}, "depth=0"),
        ({"width": -1}, "width=-1"),
        ({"dataset": "mnist"}, "dataset='mnist'"),
        ({"n_train": 0}, "n_train=0"),
        ({"train_steps": 0}, "train_steps=0"),
        ({"name": ""}, "name=''"),
    ],
)
def test_scale_validates_its_fields(changes, argument):
    with pytest.raises(ValueError, match=argument):
        QUICK.with_(**changes)


def test_load_scale_data_follows_the_scale():
    assert load_scale_data(QUICK).name == "digits"
    small = load_scale_data(QUICK.with_(n_train=100, n_test=30))
    assert small.x_train.shape == (100, 64) and small.x_test.shape == (30, 64)
    gauss = load_scale_data(QUICK.with_(dataset="gaussian", n_train=40, n_test=8))
    assert gauss.x_train.shape == (40, 64) and gauss.x_test.shape == (8, 64)
    with pytest.raises(TypeError, match="scale='quick'"):
        load_scale_data("quick")


def test_setup_seeds_everything_and_prints_one_block(capsys):
    context = course.setup(seed=3, device="cpu")
    drawn = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    assert drawn == (random.random(), np.random.rand(), torch.rand(1).item())
    printed = capsys.readouterr().out
    assert printed == context.summary() + "\n"
    assert f"explodegrad {__version__}" in printed and f"torch {torch.__version__}" in printed
    assert "device: cpu" in printed and "scale:  quick: depth 20" in printed and "seed:   3" in printed
    assert (context.seed, context.scale, context.device.device.type) == (3, QUICK, "cpu")


def test_setup_applies_the_plotting_theme(capsys):
    plt.rcdefaults()
    course.setup(quiet=True)
    assert plt.rcParams["axes.spines.top"] is False
    assert plt.rcParams["axes.grid"] is True
    assert capsys.readouterr().out == ""
    plt.rcdefaults()


def test_setup_refuses_bad_input():
    with pytest.raises(ValueError, match="scale='huge'"):
        course.setup(scale="huge", quiet=True)
    with pytest.raises(ValueError, match="seed=-1"):
        course.setup(seed=-1, quiet=True)
    with pytest.raises(ValueError, match="device='tpu'"):
        course.setup(device="tpu", quiet=True)
    with pytest.raises(TypeError, match="scale"):
        course.setup(scale=20, quiet=True)
    with pytest.raises(TypeError, match="quiet"):
        course.setup(quiet="yes")


def test_measure_layer_rms_is_layer_rms_of_a_traced_network():
    result = signal_scale.measure_layer_rms(depth=6, width=32, activation="tanh", init="xavier", seed=1)
    x, _ = load_digits(seed=1, dtype=torch.float64).batch(256, seed=1)
    net = build_mlp(depth=6, width=32, activation="tanh", init="xavier", seed=1, dtype=torch.float64)
    np.testing.assert_array_equal(result.rms, layer_rms(trace(net, x)))
    assert result.label == "tanh/none/xavier d6 w32" and result.batch_size == 256


def test_measure_layer_rms_of_an_orthogonal_linear_network_is_flat():
    result = signal_scale.measure_layer_rms(depth=8, width=64, activation="linear", init="orthogonal")
    np.testing.assert_allclose(result.rms[1:], result.rms[-1], rtol=1e-6)  # f_2 ... f_L


def test_layer_rms_table_is_fixed_format():
    result = signal_scale.LayerRMS(label="net", rms=np.array([1.23456, 0.5, 2.0]), batch_size=8)
    assert result.table().splitlines() == [
        "net on 8 digits",
        "    k  RMS of f_k",
        "    1  1.235  (logits)",
        "    2  0.5",
        "    3  2  (first layer)",
    ]
    assert result.summary() == "net: RMS of f_L (first layer) = 2, of f_1 (logits) = 1.23"


def test_measure_layer_rms_refuses_impossible_settings():
    with pytest.raises(ValueError, match="activation='tanh' cannot be served by init='looks_linear'"):
        signal_scale.measure_layer_rms(activation="tanh", init="looks_linear")


def test_device_choice_of_setup_is_pick_device():
    assert course.setup(device="cpu", quiet=True).device == pick_device("cpu")
