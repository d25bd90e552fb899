"""The report's tables: the architecture table, the survey at initialization, dilution.

:func:`architecture_table` joins the survey at initialization with each architecture's
training part. The verdicts on the course's claims do not come from here: they come from the
registry (:mod:`explodegrad.claims`), the same place the notebooks take them from.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from explodegrad.claims import HOLDS, explodes
from explodegrad.reproduce.parts import table_row
from explodegrad.reproduce.plan import TABLE_ARCHITECTURES
from explodegrad.reproduce.store import StoredPart
from explodegrad.studies.common import Architecture


def architecture_table(stored: dict[str, StoredPart]) -> pd.DataFrame:
    """One row per :data:`TABLE_ARCHITECTURES` entry: survey at init joined with its training part.

    Columns: architecture, explodes (:func:`explodegrad.claims.explodes`), layers (L), gsc_init
    (GSC(L, 0)), rate_init, r_squared, sign_diversity_last and preact_std_last (relative to the
    RMS) at k = 2, preact_std_raw_last, effective_depth_init (natural skip),
    effective_depth_trained (skip = the layer at initialization), effective_depth_trained_natural,
    best_lr (NaN when every rate diverged), lr_used, diverged_lrs, final_train_error,
    final_test_error (of the search's best run), taylor_break_k, taylor_break_linear_layers.
    """
    rows = []
    for architecture, measured, domain in _survey_rows(stored["survey"].objects):
        objects = table_row(stored, architecture)
        best = objects["search"].best.iloc[0]
        depth_row = objects["study"].table.iloc[0]
        rows.append(
            {
                "architecture": architecture.name,
                "explodes": _explodes(measured),
                "layers": int(depth_row["num_layers"]),
                "gsc_init": float(measured["gsc_first_layer"]),
                "rate_init": float(measured["rate"]),
                "r_squared": float(measured["r_squared"]),
                "sign_diversity_last": float(measured["sign_diversity_last"]),
                "preact_std_last": float(measured["preact_std_last"]),
                "preact_std_raw_last": float(domain.at(2)["preact_std"]) if len(domain.layers) else math.nan,
                "effective_depth_init": int(depth_row["depth_natural_init"]),
                "effective_depth_trained": int(depth_row["depth_since_init_final"]),
                "effective_depth_trained_natural": int(depth_row["depth_natural_final"]),
                "best_lr": float(best["best_lr"]),
                "lr_used": float(objects["lr_used"]),
                "diverged_lrs": int(objects["search"].table["diverged"].sum()),
                "final_train_error": float(best["final_train_error"]),
                "final_test_error": float(best["final_test_error"]),
                "taylor_break_k": depth_row["taylor_break_k"],
                "taylor_break_linear_layers": depth_row["taylor_break_linear_layers"],
            }
        )
    table = pd.DataFrame(rows)
    for column in ("taylor_break_k", "taylor_break_linear_layers"):
        table[column] = table[column].astype("Int64")
    return table


def _explodes(measured: dict[str, Any]) -> bool:
    """The registry's one definition of exploding (rate and R^2 over their thresholds)."""
    return explodes("", float(measured["rate"]), float(measured["r_squared"])).verdict == HOLDS


def _survey_rows(objects: dict[str, Any]) -> list[tuple[Architecture, dict[str, Any], Any]]:
    """(architecture, survey row, domain statistics) of every table architecture in a survey part."""
    rows = []
    for architecture in TABLE_ARCHITECTURES:
        source = objects["looks_linear"] if architecture.init == "looks_linear" else objects["survey"]
        measured = source.row(architecture.activation, architecture.norm, architecture.residual)
        rows.append((architecture, measured, source.domains[measured["label"]]))
    return rows


def survey_table(objects: dict[str, Any]) -> pd.DataFrame:
    """The at-initialization columns of a survey part, one row per table architecture."""
    return pd.DataFrame(
        [
            {
                "architecture": architecture.name,
                "explodes": _explodes(measured),
                "gsc_init": measured["gsc_first_layer"],
                "rate_init": measured["rate"],
                "sign_diversity_last": measured["sign_diversity_last"],
                "preact_std_last": measured["preact_std_last"],
            }
            for architecture, measured, _ in _survey_rows(objects)
        ]
    )


def dilution_table(results: dict[str, Any]) -> pd.DataFrame:
    """Medians over the blocks of each :class:`~explodegrad.measures.dilution.DilutionResult` of a
    dilution part."""
    return pd.DataFrame(
        [
            {
                "architecture": label,
                "blocks": len(result.layers),
                "skip_to_residual": float(np.median(result.skip_to_residual)),
                "residual_gsc": float(np.median(result.residual_gsc)),
                "block_gsc": float(np.median(result.block_gsc)),
                "predicted_block_gsc": float(np.median(result.predicted_block_gsc)),
                "abs_cosine": float(np.median(np.abs(result.cosine))),
            }
            for label, result in results.items()
        ]
    )
