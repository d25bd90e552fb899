"""Claims as code: every result the course states, judged on measured numbers.

Each claim has an id (``chapter/slug``), the sentence the course states, the study it is
judged on and a predicate with an explicit margin. Judging it gives *holds*, *does not hold*
or *inconclusive* (the seeds disagree, a value lies within the margin, or a run overflowed)
with one line quoting the numbers. Notebooks print the verdict next to the sentence::

    from explodegrad import claims
    claims.show(optimizers, "04/adaptive-optimizers-still-explode")

and ``python -m explodegrad claims --scale quick`` judges them all. Claims about heavy studies
(the depth limit at depth 50 on CIFAR-10) are judged at the ``evidence`` scale, on the stored
evidence shipped with the package (``python -m explodegrad claims --scale evidence``). Thresholds live in
:mod:`explodegrad.claims.thresholds`; the remedies table (:func:`remedies_summary`) states its
results through these claims.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from explodegrad.claims import thresholds
from explodegrad.claims.evidence import STUDIES, EvidenceSetting, clear_cache, setting, study
from explodegrad.claims.explosion import definition as exploding_definition
from explodegrad.claims.explosion import explodes, explosion_verdict, explosion_word
from explodegrad.claims.registry import CHAPTERS, Claim, Judgement, all_claims, get_claim, judge
from explodegrad.claims.remedies import REMEDIES, RemediesSummary, remedies_summary
from explodegrad.claims.verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, VERDICTS, Check


def evaluate(
    scale: Any = None,
    seeds: Any = None,
    device: Any = None,
    *,
    chapter: str | None = None,
    claim_ids: Iterable[str] | None = None,
    log: Any = None,
) -> list[Judgement]:
    """Judge claims on freshly computed studies (each study once, shared by its claims).

    Args:
        scale: a :class:`~explodegrad.core.scales.Scale` (default QUICK).
        seeds: a count or the seeds of every study that trains (default: the scale's ``num_seeds``).
        device: where to run (a torch device, its name or a DeviceChoice; default the CPU).
        chapter: only this chapter's claims (``"01"`` ... ``"08"``).
        claim_ids: only these claims (a ValueError names the known ids for an unknown one).
        log: called with a line before each study is computed (e.g. ``print``).
    """
    where = setting(scale, seeds, device)
    if claim_ids is None:
        chosen = [c for c in all_claims(chapter) if c.judged_at(where.scale.name)]
    else:
        chosen = [get_claim(i) for i in claim_ids]
        elsewhere = [c for c in chosen if not c.judged_at(where.scale.name)]
        if elsewhere:
            raise ValueError(
                f"claim_ids: {', '.join(c.claim_id for c in elsewhere)} are not judged at the "
                f"{where.scale.name} scale (see Claim.scales; the evidence scale's claims are judged "
                "with scale='evidence')"
            )
    judgements = []
    for name in dict.fromkeys(c.study for c in chosen):
        if log is not None:
            log(f"study {name} ({where.scale.name} scale, {len(where.seeds)} seeds)")
        result = study(name, where)
        judgements += [c.judge(result) for c in chosen if c.study == name]
    order = {c.claim_id: i for i, c in enumerate(chosen)}
    return sorted(judgements, key=lambda j: order[j.claim_id])


def show(result: Any, *claim_ids: str) -> None:
    """Judge claims on a study result the notebook already holds and print each verdict.

    Prints and returns nothing, so that a notebook cell shows the verdicts once (use
    :func:`judge` for the :class:`Judgement` objects).
    """
    if not claim_ids:
        raise ValueError("show(result, *claim_ids): give at least one claim id")
    print("\n".join(get_claim(claim_id).judge(result).text() for claim_id in claim_ids))


def check(*claim_ids: str, scale: Any = None, seeds: Any = None, device: Any = None) -> None:
    """Compute the claims' studies (cached per process) and print each verdict (see :func:`show`)."""
    if not claim_ids:
        raise ValueError("check(*claim_ids): give at least one claim id")
    print("\n".join(j.text() for j in evaluate(scale, seeds, device, claim_ids=claim_ids)))


def table(judgements: Sequence[Judgement]) -> str:
    """One line per judgement: verdict, id and the measured numbers (for the CLI and the report)."""
    width = max((len(j.claim_id) for j in judgements), default=0)
    return "\n".join(f"{j.verdict:<14} {j.claim_id:<{width}}  {j.line}" for j in judgements)


__all__ = [
    "CHAPTERS",
    "Check",
    "Claim",
    "DOES_NOT_HOLD",
    "EvidenceSetting",
    "HOLDS",
    "INCONCLUSIVE",
    "Judgement",
    "REMEDIES",
    "RemediesSummary",
    "STUDIES",
    "VERDICTS",
    "all_claims",
    "check",
    "clear_cache",
    "evaluate",
    "exploding_definition",
    "explodes",
    "explosion_verdict",
    "explosion_word",
    "get_claim",
    "judge",
    "remedies_summary",
    "setting",
    "show",
    "study",
    "table",
    "thresholds",
]
