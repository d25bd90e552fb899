"""The remedies table of chapter 08 and the report: measured numbers next to the claims they support.

Each remedy (skip connections, the orthogonal initial state, batch normalization, gradient
clipping, an adaptive optimizer, width instead of depth) has a row: the pathology it touches
and the one it leaves alone, each named in a few words and backed by claims of the registry.
Those claims' sentences (and, where judged, their verdicts) are what the table states: no
result is written here. The numbers come from the studies
(:class:`~explodegrad.studies.remedies.RemedyEvidence`)::

    evidence = remedies.collect_remedy_evidence(scale, ...)
    print(claims.remedies_summary(evidence, judgements).summary())
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from explodegrad.claims.registry import Judgement, get_claim
from explodegrad.claims.verdict import MARKS
from explodegrad.studies.remedies import RemedyEvidence


@dataclass(frozen=True)
class RemedyRow:
    """What the table says about one remedy: named pathologies, and the claims that back them.

    Attributes:
        remedy: the start of the evidence's name, e.g. ``gradient clipping`` (the evidence is
            called ``gradient clipping (norm 2.67)``).
        touches: the pathology it acts on, in a few words.
        touches_claims: the claims stating what it does there.
        does_not_touch: what it leaves alone (or causes), in a few words.
        does_not_touch_claims: the claims stating that (none when the point is not measured here).
    """

    remedy: str
    touches: str
    touches_claims: tuple[str, ...]
    does_not_touch: str
    does_not_touch_claims: tuple[str, ...] = ()


#: The rows of the remedies table, in the course's order.
REMEDIES: tuple[RemedyRow, ...] = (
    RemedyRow(
        "skip connections",
        "exploding gradients",
        ("06/resnets-explode-far-less",),
        "the depth the network acts with: its gradient's paths can be shorter (at initialization by the "
        "claim's margin at depth 50, not at 20; after training shown only for batch-normalized ReLU, "
        "chapter 07)",
        ("07/resnet-short-paths",),
    ),
    RemedyRow(
        "orthogonal initial state",
        "exploding gradients at initialization: the network starts as a linear map, orthogonal between "
        "its hidden layers",
        ("08/looks-linear-starts-at-one",),
        "keeping that state through training (and the start is pseudo-linear: a linear function)",
        ("08/orthogonal-state-is-left",),
    ),
    RemedyRow(
        "batch normalization",
        "the collapsing domain",
        ("08/batch-norm-tradeoff",),
        "exploding gradients: it causes them",
        ("04/bn-relu-mean-field",),
    ),
    RemedyRow(
        "gradient clipping",
        "the size of a step",
        ("02/clipping-rescues",),
        "the GSC and the balance between layers",
        ("08/clipping-keeps-balance",),
    ),
    RemedyRow(
        "adaptive optimizer",
        "step sizes",
        ("04/adaptive-equal-steps",),
        "exploding gradients",
        ("08/adam-keeps-the-explosion",),
    ),
    RemedyRow(
        "width instead of depth",
        "trainability at a fixed parameter budget (the explosion is not isolated as the cause: no "
        "non-exploding control)",
        ("08/width-beats-depth",),
        "what depth buys: compositional features a shallow network must pay for with far more width "
        "(the digits here are easy)",
    ),
)


def remedy_row(evidence: RemedyEvidence) -> RemedyRow:
    """The row of :data:`REMEDIES` that ``evidence`` belongs to (its name starts with the row's)."""
    if not isinstance(evidence, RemedyEvidence):
        raise TypeError(f"evidence must be a RemedyEvidence, got {type(evidence).__name__}")
    for row in REMEDIES:
        if evidence.remedy.startswith(row.remedy):
            return row
    raise ValueError(
        f"evidence.remedy={evidence.remedy!r} is not allowed: the remedies table has rows for "
        f"{', '.join(repr(row.remedy) for row in REMEDIES)}"
    )


def claim_text(claim_id: str, judgements: dict[str, Judgement]) -> str:
    """The claim's sentence and, when it was judged, its verdict: ``sentence (✅ holds: id)``;
    otherwise the chapter that judges it."""
    judged = judgements.get(claim_id)
    if judged is None:
        chapter = claim_id.split("/")[0]
        return f"{get_claim(claim_id).sentence} (claim {claim_id}, judged in chapter {chapter})"
    return f"{judged.sentence} ({MARKS[judged.verdict]} {judged.verdict}: {claim_id})"


def _chapters(chapters: str) -> str:
    """``chapter 08`` or ``chapters 02, 08``."""
    return f"chapter {chapters}" if "," not in chapters else f"chapters {chapters}"


def _stated(words: str, claim_ids: tuple[str, ...], judgements: dict[str, Judgement]) -> str:
    return " — ".join([words, *(claim_text(claim_id, judgements) for claim_id in claim_ids)])


@dataclass(frozen=True, eq=False)  # holds DataFrames: compare fields, not results
class RemediesSummary:
    """The remedies table.

    Attributes:
        table: one row per remedy: remedy, touches, does_not_touch (each the named pathology
            followed by its claims' sentences and verdicts), evidence (the measured numbers as
            text), chapters.
        measurements: one row per measured quantity: remedy, comparison, quantity, without,
            with_remedy.
        evidence: the :class:`~explodegrad.studies.remedies.RemedyEvidence` items, in order.
    """

    table: pd.DataFrame
    measurements: pd.DataFrame
    evidence: tuple[RemedyEvidence, ...]

    def summary(self) -> str:
        """Plain text, one block per remedy (numbers with 3 significant digits)."""
        blocks = []
        for item, row in zip(self.evidence, self.table.itertuples(index=False)):
            blocks.append(
                "\n".join(
                    [
                        f"{item.remedy}  ({_chapters(item.chapters)})",
                        f"  touches:      {row.touches}",
                        f"  does not:     {row.does_not_touch}",
                        f"  measured:     {item.comparison}",
                        *(f"                - {m.text()}" for m in item.measured),
                    ]
                )
            )
        return "\n\n".join(blocks)


def remedies_summary(
    evidence: Sequence[RemedyEvidence], judgements: Iterable[Judgement] = ()
) -> RemediesSummary:
    """The remedies table: each remedy's claims (with the verdicts among ``judgements``) and numbers.

    Args:
        evidence: measured evidence, e.g. from
            :func:`~explodegrad.studies.remedies.collect_remedy_evidence`; each item must belong
            to a row of :data:`REMEDIES`.
        judgements: judged claims (e.g. from :func:`explodegrad.claims.evaluate`); a claim of the
            table that is not among them is stated without a verdict.
    """
    items = tuple(evidence)
    if not items:
        raise ValueError("evidence: give at least one RemedyEvidence (e.g. from skip_connection_evidence)")
    rows = [remedy_row(item) for item in items]
    judged = {}
    for judgement in judgements:
        if not isinstance(judgement, Judgement):
            raise TypeError(f"judgements must be Judgement objects, got {type(judgement).__name__}")
        judged[judgement.claim_id] = judgement
    table = pd.DataFrame(
        [
            {
                "remedy": item.remedy,
                "touches": _stated(row.touches, row.touches_claims, judged),
                "does_not_touch": _stated(row.does_not_touch, row.does_not_touch_claims, judged),
                "evidence": item.evidence(),
                "chapters": item.chapters,
            }
            for item, row in zip(items, rows)
        ]
    )
    measurements = pd.DataFrame(
        [
            {
                "remedy": item.remedy,
                "comparison": item.comparison,
                "quantity": m.quantity,
                "without": float(m.without),
                "with_remedy": float(m.with_remedy),
            }
            for item in items
            for m in item.measured
        ]
    )
    return RemediesSummary(table=table, measurements=measurements, evidence=items)
