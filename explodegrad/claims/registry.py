"""The registry: every claim the course and the report make, as a named, judgeable object.

A :class:`Claim` has an id (``chapter/slug``), the sentence the course states, the name of the
study it is judged on (see :mod:`explodegrad.claims.evidence`) and a predicate that turns that
study's result into a :class:`~explodegrad.claims.verdict.Check`. Judging gives a
:class:`Judgement`: the verdict and one plain line with the numbers it used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from explodegrad.claims.verdict import INCONCLUSIVE, MARKS, Check

#: The chapters that state claims, in course order.
CHAPTERS = ("01", "02", "03", "04", "05", "06", "07", "08")


@dataclass(frozen=True)
class Judgement:
    """A claim judged on measured numbers.

    Attributes:
        claim_id: the claim's id, e.g. ``04/adam-does-not-remove``.
        sentence: what the course states.
        verdict: ``holds``, ``does not hold`` or ``inconclusive``.
        line: one plain line quoting the numbers the verdict used.
        values: those numbers by name (per seed where there are seeds).
    """

    claim_id: str
    sentence: str
    verdict: str
    line: str
    values: dict[str, Any]

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"

    def text(self) -> str:
        """Three lines: the verdict and id, the sentence, the measured numbers.

        The numbers sit on their own line starting ``  measured:`` so that notebook validation
        can compare verdicts without the digits of a training run (they change with the CPU).
        """
        head = f"{MARKS[self.verdict]} {self.verdict}: {self.claim_id}"
        return f"{head}\n  {self.sentence}\n  measured: {self.line}"

    def __str__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython shows the text, not a repr
        printer.text(self.text())


@dataclass(frozen=True)
class Claim:
    """One claim: an id, its sentence, the study it is judged on and the predicate that judges it.

    Attributes:
        claim_id: ``chapter/slug``.
        sentence: the claim in the course's words.
        study: the name of the study (:data:`explodegrad.claims.evidence.STUDIES`).
        predicate: study result -> :class:`~explodegrad.claims.verdict.Check`.
        scales: the scales it is judged at, by name; None: every scale but ``evidence`` (whose
            claims are judged on stored evidence, :mod:`explodegrad.studies.stored`);
            :data:`EVERY_SCALE`: every scale, the evidence scale's stored study included.
    """

    claim_id: str
    sentence: str
    study: str
    predicate: Callable[[Any], Check]
    scales: tuple[str, ...] | None = None

    def judged_at(self, scale_name: str) -> bool:
        """Whether :func:`explodegrad.claims.evaluate` judges this claim at the scale ``scale_name``."""
        if self.scales == EVERY_SCALE:
            return True
        return scale_name != EVIDENCE_SCALE if self.scales is None else scale_name in self.scales

    @property
    def chapter(self) -> str:
        return self.claim_id.split("/", 1)[0]

    def judge(self, result: Any) -> Judgement:
        """The verdict on ``result`` (a study result); a failure to judge is inconclusive, with the reason."""
        try:
            check = self.predicate(result)
        except (ArithmeticError, IndexError, KeyError, ValueError) as error:
            check = Check(INCONCLUSIVE, f"could not be judged: {type(error).__name__}: {error}")
        return Judgement(self.claim_id, self.sentence, check.verdict, check.line, dict(check.values))


_REGISTRY: dict[str, Claim] = {}
#: The scale whose claims are judged on stored evidence only (see :attr:`Claim.scales`).
EVIDENCE_SCALE = "evidence"
#: ``scales`` of a claim judged at every scale: on the study computed at that scale, and at the
#: evidence scale on the stored one (its sentence must hold for both).
EVERY_SCALE = ("*",)


def claim(
    claim_id: str, sentence: str, study: str, *, scales: tuple[str, ...] | None = None
) -> Callable[[Callable[[Any], Check]], Claim]:
    """Decorator: register ``predicate`` as the claim ``claim_id`` judged on ``study`` (at ``scales``)."""
    if not isinstance(claim_id, str):
        raise TypeError(
            f"claim_id must be a string like '04/adam-does-not-remove', got {type(claim_id).__name__}"
        )
    chapter, _, slug = claim_id.partition("/")
    if chapter not in CHAPTERS or not slug:
        raise ValueError(
            f"claim_id={claim_id!r} is not allowed: use 'chapter/slug' with a chapter in {CHAPTERS}"
        )

    def register(predicate: Callable[[Any], Check]) -> Claim:
        if claim_id in _REGISTRY:
            raise ValueError(f"claim_id={claim_id!r} is registered twice")
        registered = Claim(claim_id, " ".join(sentence.split()), study, predicate, scales)
        _REGISTRY[claim_id] = registered
        return registered

    return register


def _load_all() -> None:
    """Import the chapter modules, which register their claims."""
    from explodegrad.claims import chapters  # noqa: F401  (registers on import)


def all_claims(chapter: str | None = None) -> list[Claim]:
    """Every registered claim in course order, or one chapter's."""
    _load_all()
    if chapter is not None and not isinstance(chapter, str):
        raise TypeError(f"chapter={chapter!r} is not allowed: chapter must be a string, one of {CHAPTERS}")
    if chapter is not None and chapter not in CHAPTERS:
        raise ValueError(f"chapter={chapter!r} is not allowed: chapter must be one of {CHAPTERS}")
    return [c for c in _REGISTRY.values() if chapter is None or c.chapter == chapter]


def get_claim(claim_id: str) -> Claim:
    """The claim with this id; a ``ValueError`` lists the known ids when there is none."""
    _load_all()
    if not isinstance(claim_id, str):
        raise TypeError(
            f"claim_id must be a string like '04/adam-does-not-remove', got {type(claim_id).__name__}"
        )
    if claim_id not in _REGISTRY:
        raise ValueError(f"claim_id={claim_id!r} is not a known claim: allowed are {', '.join(_REGISTRY)}")
    return _REGISTRY[claim_id]


def judge(claim_ids: str | Iterable[str], result: Any) -> Judgement | list[Judgement]:
    """Judge one claim (or several claims of the same study) on a study result."""
    if isinstance(claim_ids, str):
        return get_claim(claim_ids).judge(result)
    return [get_claim(claim_id).judge(result) for claim_id in claim_ids]
