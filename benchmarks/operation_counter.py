"""The operation counter the benchmarks share: what a step would launch on a GPU, counted on a CPU.

``python benchmarks/<script>.py`` puts this folder first on the path, so a benchmark imports it
as ``from operation_counter import OperationCounter``. (``tests/test_gpu_path.py`` keeps its own:
tests do not import benchmarks.)
"""

from __future__ import annotations

from torch.utils._python_dispatch import TorchDispatchMode


class OperationCounter(TorchDispatchMode):
    """Counts the operations dispatched inside it (views, which launch nothing, left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.total += 1
        return func(*args, **(kwargs or {}))
