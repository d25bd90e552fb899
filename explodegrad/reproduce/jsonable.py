"""Results as plain JSON values, and files written atomically (a reader never sees half a file).

The conversion itself is :func:`explodegrad.core.jsonable.to_jsonable` (a study result
serializes through its ``to_dict()``); this module writes it to disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from explodegrad.core.jsonable import to_jsonable

__all__ = ["to_jsonable"]


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def _dump_json(value: Any) -> bytes:
    return json.dumps(value, indent=1, allow_nan=False).encode()
