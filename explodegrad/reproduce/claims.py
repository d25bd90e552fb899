"""The report's tables and the paper's claims checked on them.

:func:`architecture_table` joins the survey at initialization with each architecture's
training part; :func:`check_claims` turns that table into verdicts (:class:`Claim`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from explodegrad.depth_study import Architecture
from explodegrad.remedies import architecture_name
from explodegrad.reproduce.parts import arch_part_name
from explodegrad.reproduce.plan import EXPLODING_RATE, TABLE_ARCHITECTURES
from explodegrad.reproduce.store import StoredPart


def architecture_table(stored: dict[str, StoredPart]) -> pd.DataFrame:
    """One row per :data:`TABLE_ARCHITECTURES` entry: survey at init joined with its training part.

    Columns: architecture, explodes (rate > :data:`EXPLODING_RATE`), layers (L), gsc_init
    (GSC(L, 0)), rate_init, r_squared, sign_diversity_last and preact_std_last (relative to the
    RMS) at k = 2, preact_std_raw_last, effective_depth_init (natural skip),
    effective_depth_trained (skip = the layer at initialization), effective_depth_trained_natural,
    best_lr (NaN when every rate diverged), lr_used, diverged_lrs, final_train_error,
    final_test_error (of the search's best run), taylor_break_k, taylor_break_linear_layers.
    """
    rows = []
    for architecture, measured, domain in _survey_rows(stored["survey"].objects):
        objects = stored[arch_part_name(architecture)].objects
        best = objects["search"].best.iloc[0]
        depth_row = objects["study"].table.iloc[0]
        rows.append({
            "architecture": architecture_name(architecture),
            "explodes": bool(measured["rate"] > EXPLODING_RATE),
            "layers": int(depth_row["num_layers"]),
            "gsc_init": float(measured["gsc_first_layer"]), "rate_init": float(measured["rate"]),
            "r_squared": float(measured["r_squared"]),
            "sign_diversity_last": float(measured["sign_diversity_last"]),
            "preact_std_last": float(measured["preact_std_last"]),
            "preact_std_raw_last": float(domain.at(2)["preact_std"]) if len(domain.layers) else math.nan,
            "effective_depth_init": int(depth_row["depth_natural_init"]),
            "effective_depth_trained": int(depth_row["depth_since_init_final"]),
            "effective_depth_trained_natural": int(depth_row["depth_natural_final"]),
            "best_lr": float(best["best_lr"]), "lr_used": float(objects["lr_used"]),
            "diverged_lrs": int(objects["search"].table["diverged"].sum()),
            "final_train_error": float(best["final_train_error"]),
            "final_test_error": float(best["final_test_error"]),
            "taylor_break_k": depth_row["taylor_break_k"],
            "taylor_break_linear_layers": depth_row["taylor_break_linear_layers"],
        })
    table = pd.DataFrame(rows)
    for column in ("taylor_break_k", "taylor_break_linear_layers"):
        table[column] = table[column].astype("Int64")
    return table


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
    return pd.DataFrame([{"architecture": architecture_name(architecture),
                          "explodes": bool(measured["rate"] > EXPLODING_RATE),
                          "gsc_init": measured["gsc_first_layer"], "rate_init": measured["rate"],
                          "sign_diversity_last": measured["sign_diversity_last"],
                          "preact_std_last": measured["preact_std_last"]}
                         for architecture, measured, _ in _survey_rows(objects)])


def dilution_table(results: dict[str, Any]) -> pd.DataFrame:
    """Medians over the blocks of each :class:`~explodegrad.residual.DilutionResult` of a dilution part."""
    return pd.DataFrame([{"architecture": label, "blocks": len(result.layers),
                          "skip_to_residual": float(np.median(result.skip_to_residual)),
                          "residual_gsc": float(np.median(result.residual_gsc)),
                          "block_gsc": float(np.median(result.block_gsc)),
                          "predicted_block_gsc": float(np.median(result.predicted_block_gsc)),
                          "abs_cosine": float(np.median(np.abs(result.cosine)))}
                         for label, result in results.items()])


@dataclass(frozen=True)
class Claim:
    """One claim of the paper checked against the measured numbers.

    Attributes:
        claim: the paper's claim, in words.
        measured: what was measured here, in words with numbers.
        verdict: ``"holds"``, ``"partly"`` or ``"does not hold"`` (here, at this scale).
    """

    claim: str
    measured: str
    verdict: str


def _verdict(all_of: bool, some_of: bool) -> str:
    return "holds" if all_of else "partly" if some_of else "does not hold"


def _claim_prevalence(plain: pd.DataFrame, table: pd.DataFrame) -> Claim:
    popular = plain[~plain["architecture"].str.contains("looks_linear")]
    exploding = popular[popular["explodes"]]
    safe = table[table["architecture"].isin(("relu/none/he", "relu/none/looks_linear"))]
    most, safe_ok = len(exploding) > len(popular) / 2, not safe["explodes"].any()
    rates = "; ".join(f"{row.architecture}: r = {row.rate_init:.3f}" for row in safe.itertuples())
    return Claim(
        claim=("Exploding gradients are common at initialization: most popular plain architectures have a "
               "GSC that grows exponentially with depth; ReLU with He initialization and no normalization, "
               "and the looks-linear initial state, do not."),
        measured=(f"{len(exploding)} of {len(popular)} popular plain architectures have a fitted rate "
                  f"r > {EXPLODING_RATE:g} per layer ({', '.join(exploding['architecture']) or 'none'}); "
                  f"{rates}"),
        verdict=_verdict(most and safe_ok, most or safe_ok))


def _claim_resnets(table: pd.DataFrame) -> Claim:
    pairs = []  # (the plain twin explodes, plain GSC, residual GSC)
    for row in table[table["architecture"].str.endswith("/res")].itertuples():
        twin = table[table["architecture"] == row.architecture[: -len("/res")]]
        if len(twin):
            first = twin.iloc[0]
            pairs.append((bool(first["explodes"]), float(first["gsc_init"]), float(row.gsc_init)))
    exploding = [(gsc_plain, gsc_res) for explodes, gsc_plain, gsc_res in pairs if explodes]
    lower = sum(gsc_res < gsc_plain for gsc_plain, gsc_res in exploding)
    factors = [gsc_plain / gsc_res for gsc_plain, gsc_res in exploding
               if gsc_res > 0 and math.isfinite(gsc_plain / gsc_res)]
    overall = sum(gsc_res < gsc_plain for _, gsc_plain, gsc_res in pairs)
    by = f" (plain / residual GSC: {min(factors):.3g} to {max(factors):.3g})" if factors else ""
    return Claim(
        claim=("ResNets explode far less: where a plain architecture explodes, its residual version has a "
               "much smaller GSC."),
        measured=(f"of the {len(exploding)} pairs whose plain network explodes, the residual GSC(L, 0) is "
                  f"lower in {lower}{by}; over all {len(pairs)} pairs it is lower in {overall}"),
        verdict=_verdict(bool(exploding) and lower == len(exploding), lower > 0))


def _claim_training(plain: pd.DataFrame, depth: int) -> Claim:
    popular = plain[~plain["architecture"].str.contains("looks_linear")]
    finite = popular[np.isfinite(popular["final_train_error"])]
    rho = (finite[["rate_init", "final_train_error"]].corr(method="spearman").iloc[0, 1]
           if len(finite) > 2 else math.nan)
    worse = finite[finite["explodes"]]["final_train_error"]
    better = finite[~finite["explodes"]]["final_train_error"]
    if len(worse) and len(better):
        measured = (f"mean final training error {worse.mean():.3f} for the {len(worse)} exploding against "
                    f"{better.mean():.3f} for the {len(better)} non-exploding popular plain architectures; "
                    f"Spearman correlation of rate and training error {rho:.2f}")
        higher = worse.mean() > better.mean()
        verdict = _verdict(higher and rho > 0, higher or rho > 0)
    else:
        measured = (f"every popular plain architecture lies on one side of r = {EXPLODING_RATE:g}; Spearman "
                    f"correlation of rate and training error {rho:.2f}")
        verdict = _verdict(False, rho > 0)
    return Claim(claim=f"Exploding architectures reach a worse training error (here at depth {depth}).",
                 measured=measured, verdict=verdict)


def _claim_effective_depth(table: pd.DataFrame) -> Claim:
    ratio = table["effective_depth_trained"] / table["layers"]
    return Claim(
        claim=("Trained networks are shallower than they look: the effective depth (residual trick, skip = "
               "the layer at initialization) stays well below the nominal depth."),
        measured=(f"effective depth after training / L: median {ratio.median():.2f}, largest "
                  f"{ratio.max():.2f} ({table.loc[ratio.idxmax(), 'architecture']})"),
        verdict=_verdict(ratio.median() < 0.5, ratio.min() < 0.5))


def check_claims(table: pd.DataFrame, depth: int) -> list[Claim]:
    """The paper's headline claims, each checked on an :func:`architecture_table`.

    Prevalence: most of the 9 popular plain architectures explode (r > :data:`EXPLODING_RATE`)
    while ReLU/He without normalization and looks-linear do not. ResNets: every residual
    architecture has a lower GSC(L, 0) than its plain twin. Training: exploding popular plain
    architectures have a higher mean final training error and the rank correlation of rate and
    error is positive. Effective depth: its median over L after training is below 0.5. Each
    verdict is "partly" when only some of its conditions hold.
    """
    plain = table[~table["architecture"].str.endswith("/res")]
    return [*check_init_claims(table), _claim_training(plain, depth), _claim_effective_depth(table)]


def check_init_claims(table: pd.DataFrame) -> list[Claim]:
    """The two claims about initialization (prevalence, ResNets), on a table with the columns
    architecture, explodes, rate_init and gsc_init (e.g. :func:`survey_table`)."""
    plain = table[~table["architecture"].str.endswith("/res")]
    return [_claim_prevalence(plain, table), _claim_resnets(table)]
