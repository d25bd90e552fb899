"""The stacked training step replayed from a CUDA graph, or run eagerly.

A training step of a :class:`~explodegrad.training.stacked.NetStack` launches a few hundred small
kernels (a width-100 layer's run for a few microseconds, about what launching one costs), so on
a GPU most of a step is launch overhead. A CUDA graph records the step's kernels once and
replays them with one launch. That needs a step with no host synchronization (nothing read back,
no tensor made from host values) whose per-step inputs live in fixed device buffers:
:class:`GraphedStep` holds those buffers (the minibatch indices, the step number and the
schedule's factor), warms the step up for a few steps on a side stream, captures one step with
``torch.cuda.CUDAGraph`` and replays it from then on.

Where a graph cannot be used the same step function runs eagerly, on the values as given (so
the eager path computes exactly what the loop computed before graphs existed): on the CPU, when
graphs are switched off, when the caller names a reason, or when capture fails (the reason is
kept in :attr:`GraphedStep.note`). Adam's bias correction depends on the step number, so the
loop gives it a table to look the number up in on the device
(:func:`explodegrad.training.optimizers.adam_bias_corrections`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

#: The two ways a step runs, as a sweep's result reports them.
STEP_PATHS = ("cuda-graph", "eager")
#: Eager steps (on a side stream, as ``torch.cuda.graph`` asks) before the capture.
WARMUP_STEPS = 3

#: ``body(index, step, factor)``: one update on minibatch ``index`` (int64 indices), as update
#: number ``step`` (an int, or a 0-d int64 tensor) with the learning rates times ``factor`` (a
#: float, or a 0-d tensor); it must work in place on device tensors and read nothing back.
StepBody = Callable[[Tensor, "Tensor | int", "Tensor | float"], None]


def _is_cuda(device: torch.device) -> bool:
    """Whether steps on ``device`` can be captured (a CUDA device)."""
    return device.type == "cuda"


class GraphedStep:
    """One training step, replayed from a CUDA graph when it can be, else run eagerly.

    Call it as ``step(index, step_number, factor)`` for every update that is not a record step
    (a record step reads the gradient before clipping, so the loop runs it eagerly itself; the
    in-place state the two share keeps them consistent).

    Attributes:
        path: ``"cuda-graph"`` once a captured graph replays the steps, else ``"eager"``.
        note: why the step runs eagerly on a CUDA device (empty on the CPU and for a graph).
        wanted: whether the steps will be captured (a CUDA device, graphs on, no reason
            against); the body then receives the step number and factor as 0-d device tensors.
    """

    def __init__(
        self,
        body: StepBody,
        batch_size: int,
        device: torch.device,
        dtype: torch.dtype,
        *,
        enabled: bool,
        reason: str = "",
    ) -> None:
        if not callable(body):
            raise TypeError(f"body: expected a function (index, step, factor), got {type(body).__name__}")
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled={enabled!r} is not allowed: enabled must be True or False")
        self.body = body
        self.device = torch.device(device)
        self.path = "eager"
        self.note = ""
        self._graph: torch.cuda.CUDAGraph | None = None
        self._warmed = 0
        self._wanted = False
        if not _is_cuda(self.device):
            return
        if not enabled:
            self.note = "CUDA graphs switched off"
        elif reason:
            self.note = reason
        else:
            self._wanted = True
            self.note = f"not captured: the run had fewer than {WARMUP_STEPS + 1} steps between records"
            self._index = torch.zeros(batch_size, dtype=torch.int64, device=self.device)
            self._step = torch.zeros((), dtype=torch.int64, device=self.device)
            self._factor = torch.ones((), dtype=dtype, device=self.device)
            self._side = torch.cuda.Stream(self.device)

    @property
    def wanted(self) -> bool:
        return self._wanted

    def __call__(self, index: Tensor, step: int, factor: float) -> None:
        """Take update ``step`` on minibatch ``index`` with the learning rates times ``factor``."""
        if not self._wanted:
            self.body(index, step, factor)
            return
        self._index.copy_(index, non_blocking=True)
        self._step.fill_(step)
        self._factor.fill_(factor)
        if self._graph is not None:
            self._graph.replay()
        elif self._warmed < WARMUP_STEPS:
            self._warm_up()
        else:
            self._capture(index, step, factor)

    def _warm_up(self) -> None:
        """One real step through the buffers on a side stream (cuBLAS handles, autograd's state)."""
        current = torch.cuda.current_stream(self.device)
        self._side.wait_stream(current)
        with torch.cuda.stream(self._side):
            self.body(self._index, self._step, self._factor)
        current.wait_stream(self._side)
        self._warmed += 1

    def _capture(self, index: Tensor, step: int, factor: float) -> None:
        """Capture the step (capture runs nothing) and replay it; on failure, run it eagerly."""
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.body(self._index, self._step, self._factor)
        except Exception as error:  # noqa: BLE001 - any capture failure falls back, with its reason
            self._wanted = False
            self.note = f"capture failed ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
            torch.cuda.synchronize(self.device)
            self.body(index, step, factor)
            return
        self._graph = graph
        self.path, self.note = "cuda-graph", ""
        graph.replay()
