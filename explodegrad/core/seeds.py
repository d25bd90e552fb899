"""Several seeds per training study: which seeds, and their median and range in a table.

One training run's digits are not a fact about an architecture: a rounding difference of
1e-16 (another CPU, another thread count) grows into a different trajectory within a few
hundred steps. So every study that trains runs several seeds (the scale's ``num_seeds`` by
default) and reports each number as the median and the range over them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from explodegrad.core.checks import MAX_SEED, check_int, check_seed

#: The most seeds one study may run (each seed is a whole training run).
MAX_SEEDS = 1000


def resolve_seeds(seeds: int | Sequence[int] | None, default: int) -> tuple[int, ...]:
    """The seeds to run: ``None`` -> ``0 .. default - 1``; ``n`` -> ``0 .. n - 1``; a sequence as given.

    Raises:
        ValueError: a count below 1, a negative or repeated seed, or an empty sequence.
        TypeError: something that is neither a count nor a sequence of integers.
    """
    if seeds is None:
        return tuple(range(check_int("num_seeds", default, 1, MAX_SEEDS)))
    if isinstance(seeds, (bool, str, bytes, float)) or not isinstance(seeds, (int, np.integer, Iterable)):
        raise TypeError(
            f"seeds={seeds!r} is not allowed: seeds must be a count (an int >= 1) or a sequence of ints "
            f"(got {type(seeds).__name__})"
        )
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1 or seeds > MAX_SEEDS:
            raise ValueError(
                f"seeds={seeds!r} is not allowed: seeds must be a count in 1..{MAX_SEEDS} (each seed is "
                f"a whole run) or a sequence of seeds in 0..{MAX_SEED}"
            )
        return tuple(range(int(seeds)))
    try:
        chosen = tuple(check_seed("seeds", seed) for seed in seeds)
    except TypeError:
        raise TypeError(
            f"seeds={seeds!r} is not allowed: seeds must be a count (an int >= 1) or a sequence of ints"
        ) from None
    if not chosen:
        raise ValueError("seeds=() is not allowed: give at least one seed")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"seeds={seeds!r} is not allowed: the seeds repeat")
    return chosen


def median_range(values: Sequence[float] | np.ndarray, fmt: str = ".3g") -> str:
    """``median [min, max]`` of the finite values, e.g. ``1.94 [1.7, 3.03]``; the value alone for one."""
    _check_format("fmt", fmt)
    try:
        array = np.asarray(values, dtype=float).ravel()  # None and pd.NA become NaN: "n/a"
    except (TypeError, ValueError):
        raise TypeError(f"values={values!r} is not allowed: values must be numbers") from None
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return "n/a"
    if array.size == 1:
        return format(float(finite[0]), fmt)
    text = (
        f"{format(float(np.median(finite)), fmt)} [{format(float(finite.min()), fmt)}, "
        f"{format(float(finite.max()), fmt)}]"
    )
    return text if finite.size == array.size else f"{text} ({array.size - finite.size} n/a)"


def _check_format(argument: str, fmt: object) -> str:
    if not isinstance(fmt, str):
        raise TypeError(
            f"{argument}={fmt!r} is not allowed: {argument} must be a number format such as '.3g'"
        )
    try:
        format(1.5, fmt)
    except ValueError:
        raise ValueError(
            f"{argument}={fmt!r} is not allowed: {argument} must be a number format such as '.3g'"
        ) from None
    return fmt


def _check_frame(frame: object, columns: Iterable[str], argument: str) -> pd.DataFrame:
    """``frame`` if it is a DataFrame holding every one of ``columns`` (named by ``argument``)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{argument}={missing[0]!r} is not allowed: the table's columns are {list(frame.columns)}"
        )
    return frame


def seed_table(
    frame: pd.DataFrame, keys: Sequence[str], columns: dict[str, str], formats: dict[str, str] | None = None
) -> pd.DataFrame:
    """Aggregate a per-seed table: one row per ``keys``, each column as ``median [min, max]``.

    Args:
        frame: one row per (keys..., seed).
        keys: the columns that identify a row apart from the seed (kept in first-seen order).
        columns: column -> its header in the result.
        formats: column -> number format (default ``.3g``).
    """
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(columns, dict):
        raise TypeError(f"columns: expected a dict column -> header, got {type(columns).__name__}")
    _check_frame(frame, keys, "keys")
    _check_frame(frame, columns, "columns")
    formats = formats or {}
    for fmt in formats.values():
        _check_format("formats", fmt)
    rows = []
    for key, group in frame.groupby(list(keys), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(keys, key))
        for column, header in columns.items():
            row[header] = median_range(group[column].to_numpy(dtype=float), formats.get(column, ".3g"))
        rows.append(row)
    return pd.DataFrame(rows)


def chosen_rates(frame: pd.DataFrame, keys: str | Sequence[str], column: str = "best_lr") -> np.ndarray:
    """Per ``keys`` group (first-seen order), the distinct rates the seeds chose, e.g. ``0.01/0.1``
    (``diverged`` when every seed's runs diverged)."""
    _check_frame(frame, [keys] if isinstance(keys, str) else keys, "keys")
    _check_frame(frame, [column], "column")
    chosen = frame.groupby(keys, sort=False)[column].agg(
        lambda rates: "/".join(f"{rate:g}" for rate in sorted(set(rates.dropna()))) or "diverged"
    )
    return chosen.to_numpy()


def seed_everything(seed: int) -> int:
    """Seed Python's, NumPy's and torch's global generators (all devices); return the seed."""
    seed = check_seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def seed_values(frame: pd.DataFrame, column: str, **where: Any) -> np.ndarray:
    """One value of ``frame[column]`` per seed for the rows matching every ``key=value`` of ``where``.

    Missing values (a run that never reached a target, ``pd.NA`` or None) come back as NaN. A
    selection that matches no row is a ``ValueError`` naming the values the study has.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame: expected a pandas DataFrame, got {type(frame).__name__}")
    if column not in frame.columns:
        raise ValueError(f"column={column!r} is not allowed: the table has {list(frame.columns)}")
    for key in where:
        if key not in frame.columns:
            raise ValueError(f"{key}={where[key]!r} is not allowed: the table has no column {key!r}")
    mask = np.ones(len(frame), dtype=bool)
    for key, value in where.items():
        mask &= (frame[key] == value).to_numpy()
    if not mask.any():
        known = "; ".join(f"{key} in {sorted(set(frame[key]))}" for key in where)
        shown = ", ".join(f"{key}={value!r}" for key, value in where.items())
        raise ValueError(f"{shown} is not allowed: the study trained {known}")
    return frame.loc[mask, column].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
