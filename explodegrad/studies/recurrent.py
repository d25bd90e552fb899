"""Chapter 2: gradients through time.

:func:`rnn_gradient_vs_time`: a vanilla RNN powers the same recurrent matrix at every step, so
d h_T / d h_{T-t} behaves like radius^t. :func:`recurrent_gradients`: vanilla RNN vs LSTM vs GRU
on the bundled digits read row by row; ||d loss / d x_t|| against t at initialization and after
a short training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explodegrad.core.checks import check_choice, check_int, check_positive
from explodegrad.core.data import Dataset
from explodegrad.core.init import orthogonal_matrix
from explodegrad.core.nets import per_example_loss
from explodegrad.core.trace import float64_norm
from explodegrad.measures.gsc import growth_factor
from explodegrad.studies.common import StudyResult, resolve_data

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = (
    "02/rnn-init-fades",
    "02/rnn-training-uses-early-rows",
)

#: Recurrent cells :func:`recurrent_gradients` compares.
CELLS = ("rnn", "lstm", "gru")


#: How a recurrent network reads an 8x8 digit: one row (or column) per time step.
READINGS = ("rows", "columns")


#: Recurrent matrices of :func:`rnn_gradient_vs_time`: radius x orthogonal, or a rescaled Gaussian.
RECURRENT_MATRICES = ("orthogonal", "gaussian")


RNN_ACTIVATIONS = ("tanh", "linear")


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class RNNTimeGradients(StudyResult):
    """How d h_T / d h_{T-t} of a vanilla RNN scales with the distance t.

    Attributes:
        spectral_radius, hidden, activation, matrix, seed: the recurrence
            h_t = act(W h_{t-1} + U x_t), W of the given spectral radius.
        steps_back: t = 0 ... steps.
        gradient_norms: ||d h_T / d h_{T-t}||_qm (Frobenius / sqrt(hidden), pooled over the
            batch), by autograd.
        predicted: radius^t, exact for a linear RNN with W = radius x orthogonal.
        growth_factor: fitted factor per step (about the radius for a linear RNN).
    """

    spectral_radius: float
    hidden: int
    activation: str
    matrix: str
    seed: int
    steps_back: np.ndarray
    gradient_norms: np.ndarray
    predicted: np.ndarray
    growth_factor: float

    def summary(self) -> str:
        """One line: the fitted growth per step against the spectral radius."""
        return (
            f"{self.activation} RNN, {self.matrix} W of spectral radius {self.spectral_radius:g}: "
            f"||d h_T / d h_(T-t)|| grows by {self.growth_factor:.4g} per step over "
            f"{len(self.steps_back) - 1} steps"
        )


def recurrent_matrix(
    hidden: int, spectral_radius: float, matrix: str = "orthogonal", seed: int = 0
) -> Tensor:
    """A hidden x hidden float64 matrix whose largest |eigenvalue| is ``spectral_radius``.

    ``"orthogonal"``: radius x a random orthogonal matrix (every eigenvalue has modulus
    radius, so ||W^t||_qm = radius^t exactly). ``"gaussian"``: a Gaussian matrix rescaled
    to the radius (non-normal, so powers follow radius^t only up to a constant).
    """
    hidden = check_int("hidden", hidden, 1)
    spectral_radius = check_positive("spectral_radius", spectral_radius)
    matrix = check_choice("matrix", matrix, RECURRENT_MATRICES)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
    if matrix == "orthogonal":
        return spectral_radius * orthogonal_matrix(hidden, hidden, generator, dtype=torch.float64)
    draw = torch.randn(hidden, hidden, generator=generator, dtype=torch.float64)
    radius = torch.linalg.eigvals(draw).abs().max()
    return draw * (spectral_radius / radius)


def rnn_gradient_vs_time(
    spectral_radius: float = 1.1,
    steps: int = 30,
    hidden: int = 32,
    activation: str = "tanh",
    seed: int = 0,
    *,
    matrix: str = "orthogonal",
    input_size: int = 8,
    input_scale: float = 1.0,
    batch: int = 4,
) -> RNNTimeGradients:
    """Run a vanilla RNN for ``steps`` steps and measure d h_T / d h_{T-t} for every t (float64).

    Backpropagation through time multiplies one Jacobian diag(act') W per step: a linear
    RNN powers W, so the gradient grows or shrinks like radius^t; tanh's derivative (<= 1)
    can only shrink it further. All Jacobians come from one batched backward pass.
    """
    spectral_radius = check_positive("spectral_radius", spectral_radius)
    steps = check_int("steps", steps, 1)
    hidden = check_int("hidden", hidden, 1)
    activation = check_choice("activation", activation, RNN_ACTIVATIONS)
    seed = check_int("seed", seed, 0)
    matrix = check_choice("matrix", matrix, RECURRENT_MATRICES)
    input_size = check_int("input_size", input_size, 1)
    input_scale = check_positive("input_scale", input_scale, allow_zero=True)
    batch = check_int("batch", batch, 1)
    recurrent = recurrent_matrix(hidden, spectral_radius, matrix, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    input_weights = torch.randn(hidden, input_size, generator=generator, dtype=torch.float64)
    input_weights /= math.sqrt(input_size)
    inputs = input_scale * torch.randn(steps, batch, input_size, generator=generator, dtype=torch.float64)
    act = torch.tanh if activation == "tanh" else (lambda u: u)
    states = [torch.zeros(batch, hidden, dtype=torch.float64, requires_grad=True)]
    for t in range(steps):
        states.append(act(states[-1] @ recurrent.T + inputs[t] @ input_weights.T))
    # One probe per hidden unit: row i of every example's Jacobian at once.
    probes = torch.eye(hidden, dtype=torch.float64).unsqueeze(1).expand(hidden, batch, hidden)
    grads = torch.autograd.grad(states[-1], states[:-1], grad_outputs=probes, is_grads_batched=True)
    norms = [1.0] + [float64_norm(g) / math.sqrt(batch * hidden) for g in reversed(grads)]
    steps_back = np.arange(steps + 1)
    gradient_norms = np.array(norms)
    with np.errstate(over="ignore"):
        predicted = spectral_radius ** steps_back.astype(float)
    return RNNTimeGradients(
        spectral_radius=spectral_radius,
        hidden=hidden,
        activation=activation,
        matrix=matrix,
        seed=seed,
        steps_back=steps_back,
        gradient_norms=gradient_norms,
        predicted=predicted,
        growth_factor=growth_factor(steps_back, gradient_norms),
    )


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class RecurrentGradients(StudyResult):
    """Input gradients of a recurrent digit classifier over time, before and after training.

    Attributes:
        cell: ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``.
        hidden, reading, seed: the model and how it reads a digit (8 rows or 8 columns).
        steps_trained: Adam steps taken.
        time_steps: t = 1 ... 8 (t = 1 is read first, furthest from the readout).
        gradient_init, gradient_trained: root mean square over test examples of
            ||d loss_i / d x_{i,t}|| at initialization and after training.
        train_losses: mean training loss at every step.
        accuracy_init, accuracy_trained: test accuracy.
    """

    cell: str
    hidden: int
    reading: str
    seed: int
    steps_trained: int
    time_steps: np.ndarray
    gradient_init: np.ndarray
    gradient_trained: np.ndarray
    train_losses: np.ndarray
    accuracy_init: float
    accuracy_trained: float

    @property
    def first_to_last_init(self) -> float:
        """||grad at t = 1|| / ||grad at t = 8|| at initialization: < 1 means it faded with distance."""
        return float(self.gradient_init[0] / self.gradient_init[-1])

    @property
    def first_to_last_trained(self) -> float:
        """The same ratio after training."""
        return float(self.gradient_trained[0] / self.gradient_trained[-1])

    def summary(self) -> str:
        """One line: the first-to-last gradient ratio and the test accuracy, before and after training."""
        return (
            f"{self.cell} ({self.hidden} units, {self.reading}, seed {self.seed}): ||grad t=1|| / "
            f"||grad t={len(self.time_steps)}|| {self.first_to_last_init:.3f} at init, "
            f"{self.first_to_last_trained:.3f} after {self.steps_trained} steps; test accuracy "
            f"{self.accuracy_init:.3f} -> {self.accuracy_trained:.3f}"
        )


class SequenceClassifier(nn.Module):
    """A recurrent cell (torch.nn.RNN/LSTM/GRU) whose last hidden state feeds a linear readout."""

    def __init__(self, cell: str, input_size: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        cell = check_choice("cell", cell, CELLS)
        core = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.core = core(input_size, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, num_classes)

    def forward(self, sequences: Tensor) -> Tensor:
        """Logits from (batch x time x features) sequences."""
        outputs, _ = self.core(sequences)
        return self.readout(outputs[:, -1])


def digit_sequences(data: Dataset, split: str = "train", reading: str = "rows") -> tuple[Tensor, Tensor]:
    """The 8x8 digits as (batch x 8 x 8) sequences: one row (or column) per time step."""
    split = check_choice("split", split, ("train", "test"))
    reading = check_choice("reading", reading, READINGS)
    if data.in_features != 64:
        raise ValueError(
            f"data: {data.in_features} features given, but digit sequences need the "
            "64 pixels of the 8x8 digits (explodegrad.core.data.load_digits)"
        )
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    images = x.reshape(-1, 8, 8)  # (batch, row, column)
    return (images if reading == "rows" else images.transpose(1, 2)).contiguous(), y


def _input_gradients(
    model: SequenceClassifier, sequences: Tensor, labels: Tensor
) -> tuple[np.ndarray, float]:
    """RMS over examples of ||d loss_i / d x_{i,t}|| for every t, and the accuracy."""
    inputs = sequences.detach().clone().requires_grad_(True)
    logits = model(inputs)
    (grad,) = torch.autograd.grad(per_example_loss(logits, labels).sum(), inputs)
    per_example = grad.double().pow(2).sum(dim=2)  # (batch, time): ||d loss_i / d x_{i,t}||^2
    accuracy = float((logits.argmax(dim=1) == labels).double().mean())
    return per_example.mean(dim=0).sqrt().cpu().numpy(), accuracy


def minibatch_indices(n: int, steps: int, batch: int, seed: int, device: Any = None) -> Tensor:
    """``steps`` minibatches of ``batch`` indices drawn with replacement, ``(steps x batch)``.

    Drawn on the CPU from a seeded generator (the same numbers on every device), then moved to
    ``device`` in one copy, so the training loop indexes the data where it lives without a
    host round trip per step.
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(n, (steps, batch), generator=generator).to(device)


def recurrent_gradients(
    cell: str = "lstm",
    steps_trained: int = 200,
    seed: int = 0,
    *,
    device: Any = None,
    data: Dataset | str | None = None,
    hidden: int = 32,
    reading: str = "rows",
    lr: float = 0.01,
    batch: int = 64,
) -> RecurrentGradients:
    """Train a recurrent classifier briefly on the bundled digits and measure ||d loss / d x_t||.

    The readout sees only the last hidden state, so the gradient reaching an early row has
    crossed many recurrent Jacobians: it fades in a vanilla tanh RNN, while the gated cells
    (LSTM, GRU) keep a more direct path. Training uses Adam on seeded mini-batches; gradients
    are measured on the test split.

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        steps_trained: Adam steps (0 measures the untrained model twice).
        seed: seed of the weights and of the mini-batches (and of the digits' split when
            ``data`` is not given). One run; callers repeat it per seed.
        device: where to run (:func:`~explodegrad.core.device.resolve_device`; default the
            data's, else the setup's choice).
        data: the digits (default: the bundled digits, float32 like torch's recurrent cells).
        hidden: hidden units.
        reading: ``"rows"`` or ``"columns"`` of each digit per time step.
        lr: Adam's step size.
        batch: mini-batch size.
    """
    cell = check_choice("cell", cell, CELLS)
    steps_trained = check_int("steps_trained", steps_trained, 0)
    seed = check_int("seed", seed, 0)
    hidden = check_int("hidden", hidden, 1)
    reading = check_choice("reading", reading, READINGS)
    lr = check_positive("lr", lr)
    data = resolve_data(
        "digits" if data is None else data,
        seed=seed,
        device=device,
        dtype=torch.float32 if data is None else None,
    )
    train_x, train_y = digit_sequences(data, "train", reading)
    test_x, test_y = digit_sequences(data, "test", reading)
    batch = check_int("batch", batch, 1, int(train_x.shape[0]))
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)  # the CPU's only: a GPU's stays as it was
        model = SequenceClassifier(cell, train_x.shape[2], hidden, data.num_classes).to(train_x)
    gradient_init, accuracy_init = _input_gradients(model, test_x, test_y)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for chosen in minibatch_indices(int(train_x.shape[0]), steps_trained, batch, seed, train_x.device):
        optimizer.zero_grad(set_to_none=True)
        loss = per_example_loss(model(train_x[chosen]), train_y[chosen]).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    train_losses = torch.stack(losses).double().cpu().numpy() if losses else np.zeros(0)
    gradient_trained, accuracy_trained = _input_gradients(model, test_x, test_y)
    return RecurrentGradients(
        cell=cell,
        hidden=hidden,
        reading=reading,
        seed=seed,
        steps_trained=steps_trained,
        time_steps=np.arange(1, train_x.shape[1] + 1),
        gradient_init=gradient_init,
        gradient_trained=gradient_trained,
        train_losses=train_losses,
        accuracy_init=accuracy_init,
        accuracy_trained=accuracy_trained,
    )
