"""Plain JSON values from the library's results: the one serialization route.

Every result's ``to_dict()`` goes through :func:`to_jsonable`; non-finite numbers become
``None`` (JSON has no NaN or inf), arrays and tables become lists.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import torch


def to_jsonable(value: Any) -> Any:
    """Plain JSON values: arrays and tables become lists, non-finite numbers None.

    Handles numbers (numpy too), strings, None, lists, tuples, dicts, numpy arrays, pandas
    DataFrames (a list of row dicts) and Series, tensors, dataclasses (their ``to_dict()`` when
    they have one, else field by field) and paths; anything else becomes its ``str``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, torch.Tensor):
        return to_jsonable(value.detach().cpu().numpy())
    if isinstance(value, np.ndarray):
        return [to_jsonable(item) for item in value.tolist()] if value.ndim else to_jsonable(value.item())
    if isinstance(value, pd.DataFrame):
        return [{str(k): to_jsonable(v) for k, v in row.items()} for row in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        serialize = getattr(value, "to_dict", None)
        if callable(serialize):
            return to_jsonable(serialize())
        return fields_to_jsonable(value)
    return str(value)


def fields_to_jsonable(value: Any) -> dict[str, Any]:
    """A dataclass's fields by name, as plain JSON values.

    A field declared with ``metadata={"serialize": False}`` is left out (a large object that
    another field already summarizes, such as a study's underlying sweep).
    """
    return {
        f.name: to_jsonable(getattr(value, f.name))
        for f in dataclasses.fields(value)
        if f.metadata.get("serialize", True)
    }


def frame_from_records(rows: list[dict[str, Any]], floats: Iterable[str] = ()) -> pd.DataFrame:
    """A DataFrame back from :func:`to_jsonable`'s list of row dicts.

    A column whose values are numbers or None (a non-finite number written as null) becomes
    float with NaN; so does every column named in ``floats``, whatever it holds (a column of
    nulls only, or of whole numbers, that is a float quantity).
    """
    frame = pd.DataFrame(rows)
    floats = set(floats)
    for column in frame.columns:
        values = [v for v in frame[column] if v is not None]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if column in floats or (frame[column].dtype == object and values and numeric):
            frame[column] = frame[column].astype(float)
    return frame
