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
from collections.abc import Iterable
from typing import Any

import torch


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


#: Floating-point types :func:`find_overflow` can run in, by name.
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
