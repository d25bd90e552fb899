"""Markdown tables of the report: how numbers are shown and which columns each table has."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None or value is pd.NA:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "n/a"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return format(number, spec)


def markdown_table(frame: pd.DataFrame, columns: Sequence[tuple[str, str, str]]) -> str:
    """A Markdown table of ``frame``: ``columns`` are (column, header, format spec) triples.

    Missing and NaN values show as ``n/a``, infinities as ``inf``, booleans as yes/no.
    """
    lines = [
        "| " + " | ".join(header for _, header, _ in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[name], spec) for name, _, spec in columns) + " |")
    return "\n".join(lines)


ARCHITECTURE_COLUMNS = (
    ("architecture", "architecture", ""),
    ("layers", "L", ""),
    ("gsc_init", "GSC(L,0) at init", ".3g"),
    ("rate_init", "rate r", ".3f"),
    ("explodes", "explodes", ""),
    ("sign_diversity_last", "sign div. k=2", ".3f"),
    ("preact_std_last", "pre-act. spread k=2", ".3f"),
    ("effective_depth_init", "eff. depth init", ""),
    ("effective_depth_trained", "eff. depth trained", ""),
    ("best_lr", "chosen lr", ".3g"),
    ("final_train_error", "train error", ".3f"),
    ("final_test_error", "test error", ".3f"),
)
SURVEY_COLUMNS = (
    ("architecture", "architecture", ""),
    ("gsc_init", "GSC(L,0)", ".3g"),
    ("rate_init", "rate r", ".3f"),
    ("explodes", "explodes", ""),
    ("sign_diversity_last", "sign div. k=2", ".3f"),
    ("preact_std_last", "pre-act. spread k=2", ".3f"),
)
DILUTION_COLUMNS = (
    ("architecture", "architecture", ""),
    ("blocks", "blocks", ""),
    ("skip_to_residual", "k", ".3g"),
    ("residual_gsc", "GSC branch", ".3g"),
    ("block_gsc", "GSC block", ".4g"),
    ("predicted_block_gsc", "predicted", ".4g"),
    ("abs_cosine", "abs cos", ".3f"),
)
DEPTH_COLUMNS = (
    ("architecture", "architecture", ""),
    ("layers", "L", ""),
    ("effective_depth_init", "eff. depth init", ""),
    ("effective_depth_trained", "trained (skip = init)", ""),
    ("effective_depth_trained_natural", "trained (natural skip)", ""),
    ("taylor_break_k", "Taylor breaks at k", ""),
    ("taylor_break_linear_layers", "= weight layers", ""),
)
REMEDY_COLUMNS = (
    ("remedy", "remedy", ""),
    ("touches", "touches", ""),
    ("does_not_touch", "does not touch", ""),
    ("evidence", "measured", ""),
)
