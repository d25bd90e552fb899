"""Argument checks that turn bad input into a clear ``TypeError`` or ``ValueError``.

Every public function validates its arguments with these helpers so that a learner sees
"depth=0 is not allowed: depth must be an integer >= 1" instead of a stack trace from
deep inside torch. A value of the wrong type (a string or a float where an integer is meant,
``True`` for a depth) raises ``TypeError``; a value of the right type outside the allowed
range raises ``ValueError``. Both messages name the argument, the value and what is allowed.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor


def _is_integer(value: Any) -> bool:
    """Python and numpy integers; never ``bool`` (``True`` is not a depth)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    """Python and numpy real numbers (ints included); never ``bool``."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_choice(argument: str, value: Any, allowed: Iterable[str]) -> str:
    """Return ``value`` lower-cased if it is one of ``allowed``.

    Raises ``TypeError`` when ``value`` is not a string (and the choices are strings),
    ``ValueError`` when it is a string that is not one of ``allowed``.
    """
    allowed = tuple(allowed)
    choices = ", ".join(repr(a) for a in allowed)
    if not isinstance(value, str) and all(isinstance(a, str) for a in allowed):
        raise TypeError(
            f"{argument}={value!r} is not allowed: {argument} must be a string, one of {choices} "
            f"(got {type(value).__name__})"
        )
    normalized = value.lower() if isinstance(value, str) else value
    if normalized not in allowed:
        raise ValueError(f"{argument}={value!r} is not supported: {argument} must be one of {choices}")
    return normalized


def check_int(argument: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``[minimum, maximum]``.

    Raises ``TypeError`` for anything that is not an integer (a float, a string, a bool),
    ``ValueError`` for an integer out of range.
    """
    upper = f" and <= {maximum}" if maximum is not None else ""
    if not _is_integer(value):
        raise TypeError(
            f"{argument}={value!r} is not allowed: {argument} must be an integer >= {minimum}{upper} "
            f"(got {type(value).__name__})"
        )
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(
            f"{argument}={value!r} is not allowed: {argument} must be an integer >= {minimum}{upper}"
        )
    return value


def _check_real(argument: str, value: Any, kind: str) -> float:
    """``value`` as a float if it is a real number (not a bool), else ``TypeError``."""
    if not _is_real(value):
        raise TypeError(
            f"{argument}={value!r} is not allowed: {argument} must be {kind} (got {type(value).__name__})"
        )
    return float(value)


def check_positive(argument: str, value: Any, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is finite and positive (or zero when allowed).

    Raises ``TypeError`` for a non-number, ``ValueError`` for a number out of range (nan, inf,
    negative, or zero when not allowed).
    """
    kind = "a finite number >= 0" if allow_zero else "a finite number > 0"
    number = _check_real(argument, value, kind)
    bound_ok = number >= 0 if allow_zero else number > 0
    if not (bound_ok and number != float("inf")):
        raise ValueError(f"{argument}={value!r} is not allowed: {argument} must be {kind}")
    return number


def check_fraction(argument: str, value: Any, inclusive_high: bool = True) -> float:
    """Return ``value`` if it lies in ``(0, 1]`` (or ``(0, 1)``); ``TypeError`` for a non-number."""
    high = "1]" if inclusive_high else "1)"
    number = _check_real(argument, value, f"a number in (0, {high}")
    if not (0 < number <= 1) or (not inclusive_high and number == 1):
        raise ValueError(f"{argument}={value!r} is not allowed: {argument} must lie in (0, {high}")
    return number


#: Floating-point types :func:`explodegrad.studies.overflow.find_overflow` can run in, by name.
FLOAT_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


def check_finite(argument: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number (any sign).

    Raises ``TypeError`` for a non-number, ``ValueError`` for inf or nan.
    """
    number = _check_real(argument, value, "a finite number")
    if not math.isfinite(number):
        raise ValueError(f"{argument}={value!r} is not allowed: {argument} must be a finite number")
    return number


def check_float_dtype(dtype: Any) -> torch.dtype:
    """A floating torch dtype from a dtype or its name.

    Raises ``TypeError`` when ``dtype`` is neither a ``torch.dtype`` nor a string,
    ``ValueError`` for a dtype or name that is not one of :data:`FLOAT_DTYPES`.
    """
    allowed = ", ".join(f"torch.{name}" for name in FLOAT_DTYPES)
    if not isinstance(dtype, (str, torch.dtype)):
        raise TypeError(
            f"dtype={dtype!r} is not allowed: dtype must be a torch.dtype or its name, one of {allowed} "
            f"(got {type(dtype).__name__})"
        )
    if isinstance(dtype, str) and dtype.lower() in FLOAT_DTYPES:
        return FLOAT_DTYPES[dtype.lower()]
    if dtype in FLOAT_DTYPES.values():
        return dtype
    raise ValueError(f"dtype={dtype!r} is not supported: dtype must be one of {allowed}")


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float64`` -> ``'float64'``, for labels and JSON."""
    return str(dtype).removeprefix("torch.")


#: The largest seed torch's generators take: a signed 64-bit integer.
MAX_SEED = 2**63 - 1


def check_seed(argument: str, value: Any) -> int:
    """Return ``value`` as an ``int`` if it is a seed torch accepts, ``0 <= seed < 2**63``."""
    return check_int(argument, value, 0, MAX_SEED)


def check_bool(argument: str, value: Any) -> bool:
    """Return ``value`` if it is ``True`` or ``False`` (numpy booleans too); no truthy strings or ints."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{argument}={value!r} is not allowed: {argument} must be True or False "
            f"(got {type(value).__name__})"
        )
    return bool(value)


def check_callable(argument: str, value: Any) -> Any:
    """Return ``value`` if it can be called, else ``TypeError``."""
    if not callable(value):
        raise TypeError(
            f"{argument}={value!r} is not allowed: {argument} must be a function (got {type(value).__name__})"
        )
    return value


def check_tensor(argument: str, value: Any) -> Tensor:
    """Return ``value`` if it is a ``torch.Tensor``, else ``TypeError``."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{argument}: expected a torch.Tensor, got {type(value).__name__}")
    return value


def check_numbers(argument: str, values: Any, *, integers: bool = False) -> np.ndarray:
    """``values`` as a float (or int) numpy array if every entry is a real number (not a bool).

    ``None`` counts as NaN among real numbers (JSON stores non-finite numbers as null). Raises
    ``TypeError`` for strings, booleans, complex numbers and other non-numbers, and
    ``ValueError`` for non-integral values where ``integers`` is asked for.
    """
    kind = "integers" if integers else "real numbers"
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{argument}={values!r} is not allowed: {argument} must be a sequence of {kind}")
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):  # ragged nests
        raise TypeError(
            f"{argument}={values!r} is not allowed: {argument} must be a sequence of {kind}"
        ) from None
    if array.dtype == object:  # None (a non-finite number stored as JSON) is NaN
        allowed = (lambda v: _is_real(v)) if integers else (lambda v: v is None or _is_real(v))
        if not all(allowed(v) for v in array.ravel()):
            raise TypeError(f"{argument}={values!r} is not allowed: {argument} must hold {kind} only")
        array = np.where(np.equal(array, None), np.nan, array).astype(float)
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"{argument}={values!r} is not allowed: {argument} must hold {kind} only "
            f"(got numpy dtype {array.dtype})"
        )
    if integers:
        if array.dtype.kind == "f" and not np.all(np.isfinite(array) & (np.mod(array, 1) == 0)):
            raise ValueError(f"{argument}={array.tolist()!r} is not allowed: {argument} must be integers")
        return array.astype(np.int64)
    return array.astype(float)


# --------------------------------------------------------------------------- sizes


def machine_memory_bytes() -> int | None:
    """This machine's physical memory in bytes, or None where the system does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(size: float) -> str:
    """``1.7e10`` -> ``'17 GB'``: a size in bytes in words."""
    for unit, step in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= step:
            return f"{size / step:.3g} {unit}"
    return f"{size:.0f} bytes"


def check_memory(settings: str, what: str, needed_bytes: float) -> None:
    """Refuse ``settings`` up front when ``what`` would need more memory than the machine has.

    Args:
        settings: the arguments that set the size, as the caller wrote them (``"width=1000000"``).
        what: the thing to be made, in words (``"this network"``).
        needed_bytes: the estimate.

    Raises:
        ValueError: naming the settings, the estimate and the machine's memory.
    """
    available = machine_memory_bytes()
    if available is not None and needed_bytes > available:
        raise ValueError(
            f"{settings} is not allowed: {what} would need about {format_bytes(needed_bytes)} of "
            f"memory, more than this machine's {format_bytes(available)}; choose a smaller size"
        )


# --------------------------------------------------------------------------- batches


def first_bad_row(bad: Tensor) -> int:
    """Index of the first row of a (rows x ...) boolean tensor with a True entry."""
    rows = bad.reshape(bad.shape[0], -1).any(dim=1)
    return int(torch.nonzero(rows)[0, 0])


def check_features(
    argument: str, x: Tensor, *, what: str = "batch", in_features: int | None = None
) -> Tensor:
    """``x`` if it is a non-empty (examples x features) float tensor of finite numbers.

    Args:
        argument: the caller's name for ``x``, for the messages.
        x: the tensor (its type is the caller's to check: a batch converts numpy arrays, a
            data set does not).
        what: what the rows are, in words (``"batch"``, ``"train split"``), for the message
            about an empty one.
        in_features: the feature count the network takes (not checked when None).

    Raises:
        TypeError: integer or boolean features.
        ValueError: a wrong shape, no rows, no features, or a non-finite value (naming the
            first bad row).
    """
    if not x.dtype.is_floating_point:
        raise TypeError(
            f"{argument}: expected floating-point features, got dtype {x.dtype} (convert with "
            f"{argument}.float() or .double())"
        )
    if x.ndim != 2:
        raise ValueError(
            f"{argument}: expected a 2-D tensor (examples x features), got shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{argument}: the {what} is empty; it needs at least one example")
    if in_features is not None and x.shape[1] != in_features:
        raise ValueError(
            f"{argument}: {x.shape[1]} features given, but the network takes in_features={in_features}"
        )
    if x.shape[1] == 0:
        raise ValueError(f"{argument}: the examples have no features (shape {tuple(x.shape)})")
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        row = first_bad_row(~finite)
        value = x[row][~finite[row]][0].item()
        raise ValueError(
            f"{argument}: row {row} holds {value} (not a finite number); the data must be finite "
            "(a NaN or inf in the data is not an overflow of the network: check how the data was "
            "made, and clean or drop such rows)"
        )
    return x


def check_label_dtype(argument: str, y: Tensor) -> Tensor:
    """``y`` if its dtype is an integer one (class indices); ``TypeError`` for floats, complex, bool."""
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(
            f"{argument}: labels must be integer class indices, got dtype {y.dtype} (convert with "
            f"{argument}.long() once they are whole numbers)"
        )
    return y


def check_label_range(argument: str, y: Tensor, num_classes: int, why: str) -> Tensor:
    """``y`` if every label lies in ``0 .. num_classes - 1``; else a ``ValueError`` naming the
    first bad row and ``why`` (where the number of classes comes from)."""
    outside = (y < 0) | (y >= num_classes)
    if bool(outside.any()):
        row = first_bad_row(outside)
        raise ValueError(
            f"{argument}: row {row} has label {int(y[row])}, outside 0 .. {num_classes - 1} ({why})"
        )
    return y


def _as_tensor(argument: str, value: Any, what: str) -> Tensor:
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return torch.from_numpy(value)
    if not isinstance(value, Tensor):
        raise TypeError(f"{argument}: expected {what} (a torch.Tensor), got {type(value).__name__}")
    return value


def check_batch(
    inputs: Any,
    targets: Any = None,
    num_classes: int | None = None,
    *,
    in_features: int | None = None,
    inputs_name: str = "inputs",
    targets_name: str = "targets",
) -> tuple[Tensor, Tensor | None]:
    """A batch where data enters a measure: finite float features and integer labels in range.

    Args:
        inputs: a (batch x features) float tensor (a numpy float array is converted).
        targets: None, or one integer class label per example (tensor or numpy array).
        num_classes: labels must lie in ``0 .. num_classes - 1`` (not checked when None).
        in_features: the feature count the network takes (not checked when None).
        inputs_name, targets_name: the caller's names for the two arguments, for the messages.

    Returns:
        ``(inputs, targets)`` as tensors; the labels as ``torch.long``.

    Raises:
        TypeError: a non-tensor, integer or boolean features, non-integer labels.
        ValueError: a wrong shape, an empty batch, a non-finite feature or a label out of range
            (naming the first bad row).
    """
    x = _as_tensor(inputs_name, inputs, "a (batch x features) matrix of floating-point numbers")
    check_features(inputs_name, x, what="batch", in_features=in_features)
    if targets is None:
        return x, None
    y = check_label_dtype(targets_name, _as_tensor(targets_name, targets, "integer class labels"))
    if y.ndim == 1 and y.shape[0] != x.shape[0]:
        raise ValueError(
            f"{targets_name}: {y.shape[0]} labels for a batch of {x.shape[0]} inputs; expected one "
            "class label per example"
        )
    if y.ndim != 1:
        raise ValueError(
            f"{targets_name}: expected one class label per example (shape ({x.shape[0]},)), got shape "
            f"{tuple(y.shape)}"
        )
    if num_classes is not None:
        check_label_range(targets_name, y, num_classes, f"the network has out_features={num_classes}")
    return x, y.long()
