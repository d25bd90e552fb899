"""Self-check exercises: each chapter's questions, checked by the library.

A wrong answer gets a hint that points back to the section that teaches the idea, not just
"wrong"; a likely wrong answer (adding where the chain rule multiplies, a letter chosen for a
known reason) gets a hint that addresses that mistake. A right one gets a short explanation.
In a notebook each exercise is one cell, stored with the learner's blank ``...``::

    from explodegrad.course.exercises import ask, check
    check("01", "chain-gradient", ...)       # shows the question and what to do
    check("01", "chain-gradient", 1.1**30)   # ✅ Correct: ...
    ask("01", "chain-gradient")              # the question alone

The questions, answers, hints and explanations are data: one TOML file per chapter in
``explodegrad/course/exercise_data/`` (``ch01.toml`` ... ``ch08.toml``), read once on import.
Adding an exercise is one ``[[exercise]]`` table there::

    [[exercise]]
    key = "my-key"
    question = "How much ...? *(a number)*"
    answer = { number = 1.21, rel_tol = 0.02 }
    hint = "Look again at section 'X': ..."
    explanation = "Because ..."

    [[exercise.mistake]]                 # optional, any number: a likely wrong answer
    answer = { number = 33 }
    hint = "You added ... where the chain rule multiplies ..."

A predict-then-verify exercise also gives ``verify``: how the learner checks the prediction with
an explorer or a few lines of code (shown with the question and with the feedback).

An ``answer`` is one of ``number`` (with optional ``rel_tol``, ``abs_tol``), ``computed`` (the
name of a reference in :data:`COMPUTED_ANSWERS`, for answers that are formulas or library
values; tolerances as for ``number``), ``text`` (accepted words, the first is the reference),
``choice`` (the right letter; the exercise then lists its ``choices``, which are rendered as
(a), (b), ... under the question) or ``items`` (a set of names, with optional ``synonyms``).
A mistake's ``answer`` takes the same kinds (a ``choice`` mistake names a wrong letter). In
code, :func:`register` adds an :class:`Exercise` whose checker may be any callable
``answer -> bool`` (then give ``reference_answer``).
"""

from __future__ import annotations

import math
import numbers
import re
import string
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from explodegrad.core.nets import build_mlp
from explodegrad.measures.dilution import pythagorean_block_gsc
from explodegrad.measures.gsc import gsc_profile
from explodegrad.studies.survey import BATCHNORM_RELU_MEAN_FIELD_RATE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Every registered exercise, by (chapter, key).
EXERCISES: dict[tuple[str, str], Exercise] = {}

#: Where the chapters' exercise files live (``ch01.toml`` ...), shipped as package data.
EXERCISE_DATA = Path(__file__).with_name("exercise_data")


#: Reference answers that are computed rather than written down, by the name an exercise file
#: gives as ``answer.computed``; library values come from the library, so they cannot drift.
def tiny_network() -> tuple[Any, torch.Tensor, torch.Tensor]:
    """The tiny network and batch of chapter 03's exercise ``tiny-gsc`` (the learner builds the same)."""
    net = build_mlp(3, 5, "tanh", init="xavier", in_features=4, out_features=3, seed=0, dtype=torch.float64)
    inputs = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return net, inputs, torch.tensor([0, 1, 2, 0, 1, 2])


def tiny_network_gsc(k: int = 3, reference: int = 1) -> float:
    """GSC(k, reference) of :func:`tiny_network`, measured by the library (exact Jacobians)."""
    net, inputs, targets = tiny_network()
    return gsc_profile(net, inputs, targets, reference=reference, method="exact").gsc_at(k)


def tiny_network_gsc_without_qm() -> float:
    """The same with the plain Frobenius norm of the Jacobian (the quadratic mean forgotten)."""
    net, inputs, _ = tiny_network()
    return tiny_network_gsc() * math.sqrt(inputs.shape[0] * net.config.width)


COMPUTED_ANSWERS: dict[str, Callable[[], float]] = {
    "scalar chain 1.1 over 30 layers": lambda: 1.1**30,
    "linear network 0.8 over 30 layers": lambda: 0.8**30,
    "linear rnn 0.9 over 20 steps": lambda: 0.9**20,
    "linear rnn 1.2 over 40 steps": lambda: 1.2**40,
    "tiny network gsc 3 1": tiny_network_gsc,
    "tiny network gsc 3 1 without the quadratic mean": tiny_network_gsc_without_qm,
    "pythagorean block gsc k 1 branch 3": lambda: pythagorean_block_gsc(1.0, 3.0),
    "rate 1.2 over 30 layers": lambda: 1.2**30,
    "batch-norm relu mean-field rate": lambda: BATCHNORM_RELU_MEAN_FIELD_RATE,
    "batch-norm relu mean-field rate over 49 layers": lambda: BATCHNORM_RELU_MEAN_FIELD_RATE**49,
    "pythagorean block gsc k 3 branch 5": lambda: pythagorean_block_gsc(3.0, 5.0),
}


# ----------------------------------------------------------------------------- answer checkers


class AnswerFormatError(ValueError):
    """An answer of the wrong kind (e.g. a word where a number is expected)."""


def _normalize_text(answer: Any) -> str:
    """Lower case, single spaces, no surrounding spaces, quotes or final full stop."""
    if not isinstance(answer, str):
        raise AnswerFormatError(f"{answer!r} is not text")
    words = re.sub(r"\s+", " ", answer).strip().strip("'\"`").strip().rstrip(".").strip()
    return words.lower()


@dataclass(frozen=True)
class NumberAnswer:
    """A numeric answer within a relative (or absolute) tolerance of ``value``."""

    value: float
    rel_tol: float = 0.01
    abs_tol: float = 0.0

    @property
    def reference(self) -> float:
        return self.value

    @property
    def expects(self) -> str:
        return "a number"

    def __call__(self, answer: Any) -> bool:
        if isinstance(answer, bool):
            raise AnswerFormatError(f"{answer!r} is not a number")
        if isinstance(answer, str):
            try:
                answer = float(answer.strip().replace(",", ""))
            except ValueError:
                raise AnswerFormatError(f"{answer!r} is not a number") from None
        if isinstance(answer, torch.Tensor):
            answer = answer.detach()  # a learner's computed tensor may still carry its graph
        try:
            number = float(answer)  # ints, floats, numpy and one-element torch tensors
        except (TypeError, ValueError):
            raise AnswerFormatError(f"{answer!r} is not a number") from None
        return math.isclose(number, self.value, rel_tol=self.rel_tol, abs_tol=self.abs_tol)


@dataclass(frozen=True)
class TextAnswer:
    """A word or short phrase; any of ``accepted`` (synonyms), case and spacing ignored."""

    accepted: tuple[str, ...]

    @property
    def reference(self) -> str:
        return self.accepted[0]

    @property
    def expects(self) -> str:
        return "a word or short phrase"

    def __call__(self, answer: Any) -> bool:
        return _normalize_text(answer) in {_normalize_text(a) for a in self.accepted}


@dataclass(frozen=True)
class ChoiceAnswer:
    """One letter of a multiple choice; ``"b"``, ``"B"``, ``"(b)"`` and ``"b)"`` all count."""

    correct: str
    options: str = "abcd"

    @property
    def reference(self) -> str:
        return self.correct

    @property
    def expects(self) -> str:
        return f"one letter: {', '.join(self.options)}"

    def __call__(self, answer: Any) -> bool:
        letter = _normalize_text(answer).strip("()[] ").rstrip(")").strip()
        if letter not in self.options or len(letter) != 1:
            raise AnswerFormatError(f"{answer!r} is not one of the letters {', '.join(self.options)}")
        return letter == self.correct


@dataclass(frozen=True)
class SetAnswer:
    """A set of names, given as any iterable of strings or one comma-separated string.

    ``synonyms`` maps alternative names to the canonical ones (e.g. ``{"kaiming": "he"}``).
    """

    accepted: frozenset[str]
    synonyms: Mapping[str, str] = field(default_factory=dict)

    @property
    def reference(self) -> set[str]:
        return set(self.accepted)

    @property
    def expects(self) -> str:
        return "a set of names, e.g. {'a', 'b'} or 'a, b'"

    def _canonical(self, name: Any) -> str:
        word = _normalize_text(name)
        aliases = {_normalize_text(k): _normalize_text(v) for k, v in self.synonyms.items()}
        return aliases.get(word, word)

    def __call__(self, answer: Any) -> bool:
        if isinstance(answer, str):
            answer = [part for part in re.split(r"[,;]|\s+and\s+", answer.strip("{}[]() ")) if part.strip()]
        if not isinstance(answer, Iterable):
            raise AnswerFormatError(f"{answer!r} is not a set of names")
        given = {self._canonical(name) for name in answer}
        return given == {self._canonical(name) for name in self.accepted}


def number(value: float, rel_tol: float = 0.01, abs_tol: float = 0.0) -> NumberAnswer:
    """A checker accepting numbers within ``rel_tol`` (relative) or ``abs_tol`` of ``value``."""
    for name, given in (("value", value), ("rel_tol", rel_tol), ("abs_tol", abs_tol)):
        if isinstance(given, bool) or not isinstance(given, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {type(given).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"value={value!r} is not allowed: value must be a finite number")
    if rel_tol < 0 or abs_tol < 0:
        raise ValueError(f"rel_tol={rel_tol!r}, abs_tol={abs_tol!r} are not allowed: tolerances must be >= 0")
    return NumberAnswer(float(value), float(rel_tol), float(abs_tol))


def _check_names(argument: str, names: tuple[Any, ...]) -> None:
    """``TypeError`` unless every one of ``names`` is a string."""
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{argument} must be strings, got {type(name).__name__} {name!r}")


def text(*accepted: str) -> TextAnswer:
    """A checker accepting any of the given words or phrases (the first is the reference)."""
    _check_names("accepted", accepted)
    if not accepted or not all(a.strip() for a in accepted):
        raise ValueError(f"accepted={accepted!r} is not allowed: give at least one non-empty string")
    return TextAnswer(tuple(accepted))


def choice(correct: str, options: str = "abcd") -> ChoiceAnswer:
    """A checker for a multiple choice whose right letter is ``correct``."""
    for name, given in (("correct", correct), ("options", options)):
        if not isinstance(given, str):
            raise TypeError(f"{name} must be a string of letters, got {type(given).__name__}")
    options = options.lower()
    if correct.lower() not in options or len(correct) != 1:
        raise ValueError(
            f"correct={correct!r} is not allowed: correct must be one of the letters {', '.join(options)}"
        )
    return ChoiceAnswer(correct.lower(), options)


def items(*accepted: str, synonyms: Mapping[str, str] | None = None) -> SetAnswer:
    """A checker accepting exactly the set of names ``accepted`` (order and case ignored)."""
    _check_names("accepted", accepted)
    if synonyms is not None and not (
        isinstance(synonyms, Mapping) and all(isinstance(s, str) for pair in synonyms.items() for s in pair)
    ):
        raise TypeError(f"synonyms must map names to names (strings), got {synonyms!r}")
    if not accepted or not all(a.strip() for a in accepted):
        raise ValueError(f"accepted={accepted!r} is not allowed: give at least one non-empty name")
    return SetAnswer(frozenset(accepted), dict(synonyms or {}))


# ----------------------------------------------------------------------------- exercises


def normalize_chapter(chapter: Any) -> str:
    """``1``, ``"1"`` and ``"01"`` all mean chapter ``"01"``; ``ValueError`` otherwise."""
    if isinstance(chapter, bool) or not isinstance(chapter, (int, str)):
        raise TypeError(f"chapter must be a chapter number such as 1 or '01', got {type(chapter).__name__}")
    if not str(chapter).strip().isdigit():
        raise ValueError(
            f"chapter={chapter!r} is not allowed: chapter must be a chapter number such as 1 or '01'"
        )
    return str(int(str(chapter).strip())).zfill(2)


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer.

    Attributes:
        correct: whether the answer was accepted.
        message: the explanation (when right) or the hint (when wrong).
        chapter, key: the exercise.
    """

    correct: bool
    message: str
    chapter: str = ""
    key: str = ""
    verify: str = ""

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        head = f"✅ Correct: {self.message}" if self.correct else f"❌ Not quite. {self.message}"
        return head + (f"\nNow verify: {self.verify}" if self.verify else "")

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        head = "✅ **Correct:**" if self.correct else "❌ **Not quite.**"
        return f"{head} {self.message}" + (f"\n\n**Now verify:** {self.verify}" if self.verify else "")


@dataclass(frozen=True)
class Question:
    """What :func:`ask` shows: the question and how to answer it."""

    chapter: str
    key: str
    text: str
    expects: str
    verify: str = ""

    @property
    def call(self) -> str:
        """The line that answers it, e.g. ``check("01", "chain-gradient", your_answer)``."""
        return f'check("{self.chapter}", "{self.key}", your_answer)'

    def __str__(self) -> str:
        kind = f" ({self.expects})" if self.expects else ""
        then = f"\nAnswer first, then verify: {self.verify}" if self.verify else ""
        return f"Exercise {self.chapter} / {self.key}\n{self.text}\nAnswer with {self.call}{kind}{then}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        kind = f" — {self.expects}" if self.expects else ""
        then = f"\n\n*Answer first, then verify:* {self.verify}" if self.verify else ""
        head = f"**Exercise {self.chapter} · {self.key}**\n\n{self.text}"
        return f"{head}\n\n*Answer with* `{self.call}`{kind}{then}"


#: What a notebook's exercise cell holds until the learner answers: ``check("01", "key", ...)``.
BLANK = ...


@dataclass(frozen=True)
class Unanswered:
    """What :func:`check` shows for the blank ``...``: the question and what to do (never the answer)."""

    question: Question

    def __bool__(self) -> bool:
        return False

    @property
    def todo(self) -> str:
        kind = f" ({self.question.expects})" if self.question.expects else ""
        return (
            f"Your answer: ... (not answered yet). Replace ... with your answer{kind} and run the cell again."
        )

    def __str__(self) -> str:
        card = self.question
        then = f"\nAnswer first, then verify: {card.verify}" if card.verify else ""
        return f"Exercise {card.chapter} / {card.key}\n{card.text}{then}\n✏️ {self.todo}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        card = self.question
        kind = f" ({card.expects})" if card.expects else ""
        then = f"\n\n*Answer first, then verify:* {card.verify}" if card.verify else ""
        return (
            f"**Exercise {card.chapter} · {card.key}**\n\n{card.text}{then}\n\n"
            f"✏️ *Your answer:* `...` — not answered yet. Replace `...` with your answer{kind} and run the "
            "cell again."
        )


@dataclass(frozen=True)
class Mistake:
    """A likely wrong answer and the hint that addresses it.

    Attributes:
        checker: ``answer -> bool``, true for the answers this mistake produces.
        hint: what went wrong and where to look again.
    """

    checker: Callable[[Any], bool]
    hint: str

    def __post_init__(self) -> None:
        if not callable(self.checker):
            raise TypeError(f"checker must be callable (answer -> bool), got {type(self.checker).__name__}")
        if not isinstance(self.hint, str):
            raise TypeError(f"hint must be a string, got {type(self.hint).__name__}")
        if not self.hint.strip():
            raise ValueError(f"hint={self.hint!r} is not allowed: hint must be a non-empty string")

    def matches(self, answer: Any) -> bool:
        """Whether ``answer`` is this mistake (an answer of another kind never is)."""
        try:
            return bool(self.checker(answer))
        except AnswerFormatError:
            return False


@dataclass(frozen=True, repr=False)
class Exercise:
    """One self-check question with its checker.

    Attributes:
        chapter: two-digit chapter number, e.g. ``"01"`` (``1`` is accepted).
        key: short unique name within the chapter, e.g. ``"chain-gradient"``.
        question: the question, in Markdown.
        checker: ``answer -> bool``; one of :func:`number`, :func:`text`, :func:`choice`,
            :func:`items` or any callable (raise :class:`AnswerFormatError` for an answer of
            the wrong kind).
        hint: shown for a wrong answer; points back to the section that teaches it.
        explanation: shown for a right answer.
        reference_answer: an answer the checker accepts (taken from the checker when it
            has one); the tests check every exercise against it.
        mistakes: likely wrong answers, each with the hint that addresses it (the first that
            matches a wrong answer is shown instead of ``hint``).
        verify: for a predict-then-verify exercise, how to check the prediction with an
            explorer or a few lines of code ('' for the others).
    """

    chapter: str
    key: str
    question: str
    checker: Callable[[Any], bool]
    hint: str
    explanation: str
    reference_answer: Any = None
    mistakes: tuple[Mistake, ...] = ()
    verify: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "chapter", normalize_chapter(self.chapter))
        for name in ("key", "question", "hint", "explanation"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a string, got {type(value).__name__}")
            if not value.strip():
                raise ValueError(f"{name}={value!r} is not allowed: {name} must be a non-empty string")
        if not callable(self.checker):
            raise TypeError(f"checker must be callable (answer -> bool), got {type(self.checker).__name__}")
        if self.reference_answer is None:
            reference = getattr(self.checker, "reference", None)
            if reference is None:
                raise ValueError(
                    f"reference_answer: exercise {self.chapter}/{self.key} needs one "
                    "(its checker does not provide a reference)"
                )
            object.__setattr__(self, "reference_answer", reference)
        if not isinstance(self.verify, str):
            raise TypeError(f"verify must be a string, got {type(self.verify).__name__}")
        if isinstance(self.mistakes, (str, bytes)) or not isinstance(self.mistakes, (tuple, list)):
            raise TypeError(f"mistakes must be a tuple of Mistake, got {type(self.mistakes).__name__}")
        object.__setattr__(self, "mistakes", tuple(self.mistakes))
        for mistake in self.mistakes:
            if not isinstance(mistake, Mistake):
                raise TypeError(f"mistakes must be Mistake objects, got {type(mistake).__name__}")
            if mistake.matches(self.reference_answer):
                raise ValueError(
                    f"mistakes: exercise {self.chapter}/{self.key} has a mistake that accepts the reference "
                    f"answer {self.reference_answer!r}; a mistake must be a wrong answer"
                )

    @property
    def expects(self) -> str:
        """What kind of answer the checker takes, in words ('' when unknown)."""
        return getattr(self.checker, "expects", "")

    def question_card(self) -> Question:
        """The question as a displayable :class:`Question`."""
        return Question(self.chapter, self.key, self.question, self.expects, self.verify)

    def hint_for(self, answer: Any) -> str:
        """The hint of the first mistake ``answer`` matches, else the exercise's hint."""
        return next((m.hint for m in self.mistakes if m.matches(answer)), self.hint)

    def check(self, answer: Any = BLANK) -> Feedback | Unanswered:
        """Check ``answer``: the explanation when right, the hint when wrong; for the blank
        ``...`` the question and what to do."""
        if answer is BLANK:
            return Unanswered(self.question_card())
        try:
            correct = bool(self.checker(answer))
            problem = ""
        except AnswerFormatError as error:
            correct = False
            kind = f" The answer should be {self.expects}." if self.expects else ""
            problem = f"{error}.{kind} "
        if correct:
            return Feedback(True, self.explanation, self.chapter, self.key, self.verify)
        hint = self.hint if problem else self.hint_for(answer)
        return Feedback(False, f"{problem}Hint: {hint}", self.chapter, self.key, self.verify)

    def __repr__(self) -> str:
        return f"Exercise({self.chapter!r}, {self.key!r})"


def register(exercise: Exercise) -> Exercise:
    """Add ``exercise`` to :data:`EXERCISES` and return it; a taken (chapter, key) is a ``ValueError``."""
    if not isinstance(exercise, Exercise):
        raise TypeError(f"exercise must be an Exercise, got {type(exercise).__name__}")
    slot = (exercise.chapter, exercise.key)
    if slot in EXERCISES:
        raise ValueError(f"key={exercise.key!r} is taken in chapter {exercise.chapter}: choose another key")
    EXERCISES[slot] = exercise
    return exercise


def chapters() -> list[str]:
    """The chapters that have exercises, in order."""
    return sorted({chapter for chapter, _ in EXERCISES})


def exercises_for(chapter: Any) -> list[Exercise]:
    """The exercises of one chapter, in the order they were registered."""
    chapter = normalize_chapter(chapter)
    found = [ex for (ch, _), ex in EXERCISES.items() if ch == chapter]
    if not found:
        raise ValueError(
            f"chapter={chapter!r} has no exercises: chapters with exercises are "
            f"{', '.join(repr(c) for c in chapters())}"
        )
    return found


def get_exercise(chapter: Any, key: str) -> Exercise:
    """The exercise (chapter, key); ``ValueError`` listing the chapter's keys when unknown."""
    if not isinstance(key, str):
        raise TypeError(f"key must be a string such as 'chain-gradient', got {type(key).__name__}")
    listed = exercises_for(chapter)
    for exercise in listed:
        if exercise.key == key:
            return exercise
    raise ValueError(
        f"key={key!r} is not an exercise of chapter {listed[0].chapter}: available keys "
        f"are {', '.join(repr(e.key) for e in listed)}"
    )


def ask(chapter: Any, key: str) -> Question:
    """The question of exercise (chapter, key), ready to display (or ``print``)."""
    return get_exercise(chapter, key).question_card()


def check(chapter: Any, key: str, answer: Any = BLANK) -> Feedback | Unanswered:
    """Check ``answer`` to exercise (chapter, key) and say why.

    Without an answer, or with the blank ``...`` a notebook cell is stored with, it shows the
    question and what to do (:class:`Unanswered`, which is falsy), never the answer.
    """
    return get_exercise(chapter, key).check(answer)


def questions(chapter: Any) -> str:
    """Every question of one chapter in Markdown, numbered, each with the line that answers it."""
    lines = []
    for number_, exercise in enumerate(exercises_for(chapter), start=1):
        card = exercise.question_card()
        lines.append(f"{number_}. **{card.key}**: {card.text}  \n   `{card.call}`")
    return "\n\n".join(lines)


# ----------------------------------------------------------------------------- the chapters' files

#: The kinds of ``answer`` an exercise file may give, and the other keys each kind allows.
ANSWER_KINDS: dict[str, tuple[str, ...]] = {
    "number": ("rel_tol", "abs_tol"),
    "computed": ("rel_tol", "abs_tol"),
    "text": (),
    "choice": (),
    "items": ("synonyms",),
}
_EXERCISE_FIELDS = ("key", "question", "choices", "answer", "hint", "explanation", "mistake", "verify")
_MISTAKE_FIELDS = ("answer", "hint")
_CHAPTER_FILE = re.compile(r"ch(\d\d)\.toml")


def with_choices(stem: str, choices: list[str]) -> str:
    """The question with its options under it as (a), (b), ... and the answer format."""
    options = "  \n".join(f"({letter}) {option}" for letter, option in zip(string.ascii_lowercase, choices))
    return f"{stem}\n\n{options}\n\n*(a letter)*"


def _expect(where: str, name: str, value: Any, kind: type) -> None:
    """``TypeError`` naming ``where`` and ``name`` unless ``value`` is a ``kind``."""
    if not isinstance(value, kind):
        raise TypeError(f"{where}: {name} must be {kind.__name__}, got {value!r}")


def answer_checker(answer: Mapping[str, Any], choices: list[str] | None = None) -> Callable[[Any], bool]:
    """The checker an exercise file's ``answer`` table describes (see the module docstring)."""
    if not isinstance(answer, Mapping):
        raise TypeError(f"answer must be a table such as {{ number = 1.0 }}, got {answer!r}")
    kinds = [kind for kind in ANSWER_KINDS if kind in answer]
    if len(kinds) != 1:
        raise ValueError(
            f"answer={dict(answer)!r} is not allowed: give exactly one of {', '.join(ANSWER_KINDS)}"
        )
    kind = kinds[0]
    extra = set(answer) - {kind, *ANSWER_KINDS[kind]}
    if extra:
        raise ValueError(
            f"answer={dict(answer)!r} is not allowed: a {kind} answer takes only "
            f"{', '.join((kind, *ANSWER_KINDS[kind]))}"
        )
    if (kind == "choice") != (choices is not None):
        raise ValueError(
            "choices: a choice answer needs the exercise's choices, and only a choice answer has them"
        )
    value = answer[kind]
    if kind in ("number", "computed"):
        tolerances = {name: answer[name] for name in ANSWER_KINDS[kind] if name in answer}
        if kind == "computed":
            _expect("answer", "computed", value, str)
            if value not in COMPUTED_ANSWERS:
                raise ValueError(
                    f"computed={value!r} is not allowed: known computed answers are "
                    f"{', '.join(repr(name) for name in COMPUTED_ANSWERS)}"
                )
            value = COMPUTED_ANSWERS[value]()
        return number(value, **tolerances)
    if kind == "choice":
        _expect("answer", "choices", choices, list)
        _check_names("choices", tuple(choices))
        if len(choices) < 2:
            raise ValueError(f"choices={choices!r} is not allowed: give at least two options")
        return choice(value, string.ascii_lowercase[: len(choices)])
    _expect("answer", kind, value, list)
    if kind == "text":
        return text(*value)
    return items(*value, synonyms=answer.get("synonyms"))


def exercise_from_table(chapter: str, table: Mapping[str, Any]) -> Exercise:
    """One ``[[exercise]]`` table of a chapter's file as an :class:`Exercise` (not registered)."""
    if not isinstance(table, Mapping):
        raise TypeError(f"an exercise must be a table, got {table!r}")
    unknown = set(table) - set(_EXERCISE_FIELDS)
    missing = {"key", "question", "answer", "hint", "explanation"} - set(table)
    if unknown or missing:
        raise ValueError(
            f"exercise {table.get('key')!r}: unknown fields {sorted(unknown)}, "
            f"missing fields {sorted(missing)}; "
            f"the fields are {', '.join(_EXERCISE_FIELDS)}"
        )
    choices = table.get("choices")
    checker = answer_checker(table["answer"], choices)
    mistakes = table.get("mistake", [])
    _expect("exercise", "mistake", mistakes, list)
    found = []
    for mistake in mistakes:
        _expect("exercise", "mistake", mistake, Mapping)
        if set(mistake) != set(_MISTAKE_FIELDS):
            raise ValueError(
                f"exercise {table['key']!r}: a mistake has the fields {', '.join(_MISTAKE_FIELDS)}, "
                f"got {sorted(mistake)}"
            )
        kind_choices = choices if "choice" in mistake["answer"] else None
        found.append(Mistake(answer_checker(mistake["answer"], kind_choices), mistake["hint"]))
    question = table["question"]
    if choices is not None:
        _expect("exercise", "question", question, str)
        question = with_choices(question, choices)
    return Exercise(
        chapter=chapter,
        key=table["key"],
        question=question,
        checker=checker,
        hint=table["hint"],
        explanation=table["explanation"],
        mistakes=tuple(found),
        verify=table.get("verify", ""),
    )


def load_chapter(path: str | Path) -> list[Exercise]:
    """The exercises of one chapter file ``chNN.toml``, in file order (not registered).

    Raises:
        ValueError: for a file name that is not ``chNN.toml``, invalid TOML, a repeated key or
            a bad field; every message names the file (and the exercise).
        TypeError: for a field of the wrong type.
    """
    path = Path(path)
    match = _CHAPTER_FILE.fullmatch(path.name)
    if match is None:
        raise ValueError(
            f"path={str(path)!r} is not allowed: an exercise file is named chNN.toml, e.g. ch01.toml"
        )
    try:
        content = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path.name} is not valid TOML: {error}") from error
    if set(content) != {"exercise"} or not isinstance(content["exercise"], list):
        raise ValueError(f"{path.name}: the file must hold only [[exercise]] tables, found {sorted(content)}")
    found: list[Exercise] = []
    for table in content["exercise"]:
        try:
            exercise = exercise_from_table(match.group(1), table)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{path.name}: {error}") from error
        if any(earlier.key == exercise.key for earlier in found):
            raise ValueError(f"{path.name}: key={exercise.key!r} appears twice; keys are unique per chapter")
        found.append(exercise)
    return found


def load_exercises(folder: str | Path = EXERCISE_DATA) -> list[Exercise]:
    """Read every ``chNN.toml`` of ``folder`` in chapter order and :func:`register` its exercises."""
    files = sorted(Path(folder).glob("ch*.toml"))
    if not files:
        raise ValueError(f"folder={str(folder)!r} is not allowed: it holds no chNN.toml exercise files")
    return [register(exercise) for path in files for exercise in load_chapter(path)]


load_exercises()
