"""Argument checks that turn bad input into a clear ``ValueError``.

Every public function validates its arguments with these helpers so that a learner sees
"depth=0 is not allowed: depth must be an integer >= 1" instead of a stack trace from
deep inside torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


def check_choice(argument: str, value: Any, allowed: Iterable[str]) -> str:
    """Return ``value`` lower-cased if it is one of ``allowed``, else raise ``ValueError``."""
    allowed = tuple(allowed)
    normalized = value.lower() if isinstance(value, str) else value
    if normalized not in allowed:
        raise ValueError(
            f"{argument}={value!r} is not supported: {argument} must be one of "
            f"{', '.join(repr(a) for a in allowed)}"
        )
    return normalized


def check_int(argument: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` if it is an integer in ``[minimum, maximum]``, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            is_integral = float(value).is_integer()
        except (TypeError, ValueError):
            is_integral = False
        if not is_integral:
            raise ValueError(f"{argument}={value!r} is not allowed: {argument} must be an integer")
        value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(
            f"{argument}={value!r} is not allowed: {argument} must be an integer >= {minimum}{upper}"
        )
    return value


def check_positive(argument: str, value: Any, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is finite and positive (or zero when allowed)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{argument}={value!r} is not allowed: {argument} must be a number") from None
    bound_ok = number >= 0 if allow_zero else number > 0
    if not (bound_ok and number != float("inf")):
        kind = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise ValueError(f"{argument}={value!r} is not allowed: {argument} must be {kind}")
    return number


def check_fraction(argument: str, value: Any, inclusive_high: bool = True) -> float:
    """Return ``value`` if it lies in ``(0, 1]`` (or ``(0, 1)``), else raise ``ValueError``."""
    number = check_positive(argument, value)
    if number > 1 or (not inclusive_high and number == 1):
        high = "1]" if inclusive_high else "1)"
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
    """Return ``value`` as a float if it is a finite number (any sign), else raise ``ValueError``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{argument}={value!r} is not allowed: {argument} must be a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{argument}={value!r} is not allowed: {argument} must be a finite number")
    return number


def check_float_dtype(dtype: Any) -> torch.dtype:
    """A floating torch dtype from a dtype or its name; ``ValueError`` otherwise."""
    if isinstance(dtype, str) and dtype.lower() in FLOAT_DTYPES:
        return FLOAT_DTYPES[dtype.lower()]
    if dtype in FLOAT_DTYPES.values():
        return dtype
    raise ValueError(
        f"dtype={dtype!r} is not supported: dtype must be one of "
        f"{', '.join(f'torch.{name}' for name in FLOAT_DTYPES)}"
    )


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
