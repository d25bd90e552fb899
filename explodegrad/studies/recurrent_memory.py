"""Chapter 2: a long-range dependency, remembering the first token.

:func:`first_token_memory` trains a vanilla RNN (tanh), an LSTM and a GRU (torch's fused
modules, PyTorch's default initialization) on sequences whose label is the class of the first
step; every later step is a filler that carries no information about the label, and the readout
sees only the last hidden state. So the only route from the label to the loss runs back through
every step: the task isolates what gated cells were designed for. Accuracy is measured on held-out
sequences for several lengths T and seeds, with the gradient reaching the first step at
initialization and after training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional

from explodegrad.core.checks import check_choice, check_int, check_positive
from explodegrad.core.device import resolve_device
from explodegrad.core.nets import per_example_loss
from explodegrad.core.seeds import resolve_seeds
from explodegrad.studies.common import StudyResult
from explodegrad.studies.recurrent import CELLS, SequenceClassifier

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = (
    "02/first-token-short-is-easy",
    "02/first-token-fades-at-init",
    "02/first-token-gates-at-chance",
)

#: What the steps after the first carry: zeros, Gaussian noise, or uniformly drawn tokens (one-hot).
FILLERS = ("blank", "noise", "tokens")

#: The seed of the held-out sequences (the same for every training seed, so the seeds are compared
#: on one test set); training batches are drawn from the run's own seed.
TEST_SEED = 12345

#: The longest sequence and the most classes a run accepts (a course-sized experiment).
MAX_LENGTH = 1000
MAX_CLASSES = 100


def first_token_sequences(
    num_sequences: int,
    length: int,
    num_classes: int,
    seed: int = 0,
    *,
    filler: str = "blank",
    device: Any = None,
) -> tuple[Tensor, Tensor]:
    """Sequences whose label is the class of the first step, ``(n x length x num_classes)`` float32.

    Step 1 is the one-hot code of a class drawn uniformly; steps 2 ... ``length`` are the filler:
    zeros (``"blank"``), standard Gaussian noise (``"noise"``) or one-hot tokens drawn uniformly
    and independently of the label (``"tokens"``). Drawn on the CPU from ``seed`` (the same
    numbers on every device), then moved to ``device``.

    Returns:
        The sequences and the labels (int64, ``labels[i]`` = the class of ``sequences[i, 0]``).
    """
    num_sequences = check_int("num_sequences", num_sequences, 1)
    length = check_int("length", length, 1, MAX_LENGTH)
    num_classes = check_int("num_classes", num_classes, 2, MAX_CLASSES)
    seed = check_int("seed", seed, 0)
    filler = check_choice("filler", filler, FILLERS)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(num_classes, (num_sequences,), generator=generator)
    sequences = torch.zeros(num_sequences, length, num_classes)
    sequences[:, 0] = functional.one_hot(labels, num_classes).float()
    if filler == "noise":
        sequences[:, 1:] = torch.randn(num_sequences, length - 1, num_classes, generator=generator)
    elif filler == "tokens":
        tokens = torch.randint(num_classes, (num_sequences, length - 1), generator=generator)
        sequences[:, 1:] = functional.one_hot(tokens, num_classes).float()
    where = resolve_device(device)
    return sequences.to(where), labels.to(where)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class FirstTokenMemory(StudyResult):
    """Held-out accuracy on the remember-the-first-token task, per cell, length and seed.

    Attributes:
        cells: ``"rnn"`` (tanh), ``"lstm"``, ``"gru"`` (torch.nn modules, default initialization).
        lengths: the sequence lengths T.
        seeds: one training run per seed (the weights and the training batches).
        num_classes, hidden, filler: the task (chance accuracy 1 / num_classes) and the model.
        steps_trained, lr, batch: Adam steps, step size and mini-batch size.
        test_size: held-out sequences per length (drawn from :data:`TEST_SEED`).
        accuracy: held-out accuracy after training, ``(cells x lengths x seeds)``.
        first_gradient_init, first_gradient_trained: root mean square over held-out sequences of
            ||d loss_i / d x_{i,1}||, the gradient reaching the first step (the only one that
            carries the label), at initialization and after training; same shape.
        last_gradient_init, last_gradient_trained: the same at the last step T.
    """

    cells: tuple[str, ...]
    lengths: tuple[int, ...]
    seeds: tuple[int, ...]
    num_classes: int
    hidden: int
    filler: str
    steps_trained: int
    lr: float
    batch: int
    test_size: int
    accuracy: np.ndarray
    first_gradient_init: np.ndarray
    first_gradient_trained: np.ndarray
    last_gradient_init: np.ndarray
    last_gradient_trained: np.ndarray

    @property
    def chance(self) -> float:
        """The accuracy of guessing: 1 / num_classes."""
        return 1.0 / self.num_classes

    def _index(self, cell: str, length: int) -> tuple[int, int]:
        cell = check_choice("cell", cell, self.cells)
        if length not in self.lengths:
            raise ValueError(f"length={length!r} is not allowed: this result has lengths {self.lengths}")
        return self.cells.index(cell), self.lengths.index(length)

    def accuracies(self, cell: str, length: int) -> np.ndarray:
        """Held-out accuracy of ``cell`` at sequence length ``length``, one per seed."""
        return self.accuracy[self._index(cell, length)]

    def first_to_last_init(self, cell: str, length: int) -> np.ndarray:
        """||grad at step 1|| / ||grad at step T|| at initialization, one per seed."""
        i = self._index(cell, length)
        return self.first_gradient_init[i] / self.last_gradient_init[i]

    def summary(self) -> str:
        """A table: per cell and length, the median accuracy and first/last gradient ratio at init."""
        lines = [
            f"remember the first token: {self.num_classes} classes (chance {self.chance:.3f}), "
            f"{self.filler} filler, {self.hidden} units, {self.steps_trained} Adam steps, "
            f"{len(self.seeds)} seeds (median)",
            f"{'cell':>4} {'T':>5} {'accuracy':>9} {'grad 1/T init':>14}",
        ]
        for cell in self.cells:
            for length in self.lengths:
                accuracy = float(np.median(self.accuracies(cell, length)))
                ratio = float(np.median(self.first_to_last_init(cell, length)))
                lines.append(f"{cell:>4} {length:>5} {accuracy:>9.3f} {ratio:>14.2e}")
        return "\n".join(lines)


def _step_gradients(
    model: SequenceClassifier, sequences: Tensor, labels: Tensor
) -> tuple[float, float, float]:
    """RMS over sequences of ||d loss_i / d x_{i,t}|| at the first and the last step, and the accuracy."""
    inputs = sequences.detach().clone().requires_grad_(True)
    logits = model(inputs)
    (grad,) = torch.autograd.grad(per_example_loss(logits, labels).sum(), inputs)
    per_step = grad.double().pow(2).sum(dim=2).mean(dim=0).sqrt()  # (time,)
    accuracy = float((logits.argmax(dim=1) == labels).double().mean())
    return float(per_step[0]), float(per_step[-1]), accuracy


def _train_once(
    cell: str,
    length: int,
    seed: int,
    test: tuple[Tensor, Tensor],
    *,
    num_classes: int,
    hidden: int,
    filler: str,
    steps_trained: int,
    lr: float,
    batch: int,
) -> tuple[float, float, float, float, float]:
    """One run: accuracy, first- and last-step gradients at init and after training."""
    test_x, test_y = test
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)  # the CPU's only: a GPU's stays as it was
        model = SequenceClassifier(cell, num_classes, hidden, num_classes).to(test_x.device)
    first_init, last_init, _ = _step_gradients(model, test_x, test_y)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    # All training batches at once, drawn from the run's seed: fresh sequences at every step.
    train_x, train_y = (
        first_token_sequences(
            steps_trained * batch, length, num_classes, seed, filler=filler, device=test_x.device
        )
        if steps_trained
        else (test_x[:0], test_y[:0])
    )
    for step in range(steps_trained):
        chosen = slice(step * batch, (step + 1) * batch)
        optimizer.zero_grad(set_to_none=True)
        per_example_loss(model(train_x[chosen]), train_y[chosen]).mean().backward()
        optimizer.step()
    first_trained, last_trained, accuracy = _step_gradients(model, test_x, test_y)
    return accuracy, first_init, first_trained, last_init, last_trained


def first_token_memory(
    lengths: tuple[int, ...] | list[int] = (5, 20, 50),
    seeds: Any = 3,
    *,
    cells: tuple[str, ...] | list[str] = CELLS,
    num_classes: int = 4,
    hidden: int = 32,
    filler: str = "blank",
    steps_trained: int = 200,
    lr: float = 0.01,
    batch: int = 32,
    test_size: int = 1000,
    device: Any = None,
) -> FirstTokenMemory:
    """Train each cell to recall the first token of length-T sequences; held-out accuracy per seed.

    Every run starts from PyTorch's default initialization of ``torch.nn.RNN`` / ``LSTM`` /
    ``GRU`` (seeded by the run's seed) with a linear readout of the last hidden state, and takes
    ``steps_trained`` Adam steps on fresh mini-batches (float32).

    Args:
        lengths: sequence lengths T (each in 1 ... :data:`MAX_LENGTH`).
        seeds: a count or the seeds themselves (:func:`~explodegrad.core.seeds.resolve_seeds`).
        cells: a subset of ``("rnn", "lstm", "gru")``.
        num_classes: classes K of the first token (chance accuracy 1 / K).
        hidden: hidden units of every cell.
        filler: what steps 2 ... T carry (:data:`FILLERS`, see :func:`first_token_sequences`).
        steps_trained: Adam steps per run (0 measures the untrained models).
        lr: Adam's step size.
        batch: sequences per mini-batch.
        test_size: held-out sequences per length.
        device: where to run (:func:`~explodegrad.core.device.resolve_device`).
    """
    if isinstance(lengths, (int, str)) or not isinstance(lengths, (tuple, list)) or not lengths:
        raise ValueError(
            f"lengths={lengths!r} is not allowed: lengths must be a non-empty tuple or list of ints in "
            f"1..{MAX_LENGTH}"
        )
    lengths = tuple(check_int("lengths", length, 1, MAX_LENGTH) for length in lengths)
    if len(set(lengths)) != len(lengths):
        raise ValueError(f"lengths={lengths!r} is not allowed: the lengths repeat")
    if isinstance(cells, str) or not isinstance(cells, (tuple, list)) or not cells:
        raise ValueError(
            f"cells={cells!r} is not allowed: cells must be a non-empty tuple or list of {CELLS}"
        )
    cells = tuple(check_choice("cells", cell, CELLS) for cell in cells)
    if len(set(cells)) != len(cells):
        raise ValueError(f"cells={cells!r} is not allowed: the cells repeat")
    chosen_seeds = resolve_seeds(seeds, 3)
    num_classes = check_int("num_classes", num_classes, 2, MAX_CLASSES)
    hidden = check_int("hidden", hidden, 1)
    filler = check_choice("filler", filler, FILLERS)
    steps_trained = check_int("steps_trained", steps_trained, 0)
    lr = check_positive("lr", lr)
    batch = check_int("batch", batch, 1)
    test_size = check_int("test_size", test_size, 1)
    where = resolve_device(device)
    shape = (len(cells), len(lengths), len(chosen_seeds))
    measured = np.zeros((5, *shape))
    for j, length in enumerate(lengths):
        test = first_token_sequences(test_size, length, num_classes, TEST_SEED, filler=filler, device=where)
        for i, cell in enumerate(cells):
            for k, seed in enumerate(chosen_seeds):
                measured[:, i, j, k] = _train_once(
                    cell,
                    length,
                    seed,
                    test,
                    num_classes=num_classes,
                    hidden=hidden,
                    filler=filler,
                    steps_trained=steps_trained,
                    lr=lr,
                    batch=batch,
                )
    accuracy, first_init, first_trained, last_init, last_trained = measured
    return FirstTokenMemory(
        cells=cells,
        lengths=lengths,
        seeds=chosen_seeds,
        num_classes=num_classes,
        hidden=hidden,
        filler=filler,
        steps_trained=steps_trained,
        lr=lr,
        batch=batch,
        test_size=test_size,
        accuracy=accuracy,
        first_gradient_init=first_init,
        first_gradient_trained=first_trained,
        last_gradient_init=last_init,
        last_gradient_trained=last_trained,
    )
