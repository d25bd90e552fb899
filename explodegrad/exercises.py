"""Self-check exercises: each chapter's questions, checked by the library.

A wrong answer gets a hint that points back to the section that teaches the idea, not just
"wrong"; a right one gets a short explanation. In a notebook::

    from explodegrad.exercises import ask, check
    ask("01", "chain-gradient")              # shows the question
    check("01", "chain-gradient", 1.1**30)   # ✅ Correct: ...

Adding an exercise is one :func:`register` call::

    register(Exercise(
        chapter="03", key="my-key", question="...?",
        checker=number(1.21, rel_tol=0.02),   # or text(...), choice("b"), items(...)
        hint="Look again at section 'X': ...",
        explanation="Because ...",
    ))

Answers may be numbers (relative tolerance), words (case-insensitive, with synonyms), a
letter for a multiple choice, or a set of names; any callable ``answer -> bool`` works too
(then give ``reference_answer``).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Every registered exercise, by (chapter, key).
EXERCISES: dict[tuple[str, str], Exercise] = {}


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
    if not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"value={value!r} is not allowed: value must be a finite number")
    if rel_tol < 0 or abs_tol < 0:
        raise ValueError(f"rel_tol={rel_tol!r}, abs_tol={abs_tol!r} are not allowed: tolerances must be >= 0")
    return NumberAnswer(float(value), float(rel_tol), float(abs_tol))


def text(*accepted: str) -> TextAnswer:
    """A checker accepting any of the given words or phrases (the first is the reference)."""
    if not accepted or not all(isinstance(a, str) and a.strip() for a in accepted):
        raise ValueError(f"accepted={accepted!r} is not allowed: give at least one non-empty string")
    return TextAnswer(tuple(accepted))


def choice(correct: str, options: str = "abcd") -> ChoiceAnswer:
    """A checker for a multiple choice whose right letter is ``correct``."""
    options = options.lower()
    if not isinstance(correct, str) or correct.lower() not in options or len(correct) != 1:
        raise ValueError(f"correct={correct!r} is not allowed: correct must be one of the letters "
                         f"{', '.join(options)}")
    return ChoiceAnswer(correct.lower(), options)


def items(*accepted: str, synonyms: Mapping[str, str] | None = None) -> SetAnswer:
    """A checker accepting exactly the set of names ``accepted`` (order and case ignored)."""
    if not accepted or not all(isinstance(a, str) and a.strip() for a in accepted):
        raise ValueError(f"accepted={accepted!r} is not allowed: give at least one non-empty name")
    return SetAnswer(frozenset(accepted), dict(synonyms or {}))


# ----------------------------------------------------------------------------- exercises

def normalize_chapter(chapter: Any) -> str:
    """``1``, ``"1"`` and ``"01"`` all mean chapter ``"01"``; ``ValueError`` otherwise."""
    if isinstance(chapter, bool) or not isinstance(chapter, (int, str)) or not str(chapter).strip().isdigit():
        raise ValueError(f"chapter={chapter!r} is not allowed: chapter must be a chapter number "
                         "such as 1 or '01'")
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

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        return f"✅ Correct: {self.message}" if self.correct else f"❌ Not quite. {self.message}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        head = "✅ **Correct:**" if self.correct else "❌ **Not quite.**"
        return f"{head} {self.message}"


@dataclass(frozen=True)
class Question:
    """What :func:`ask` shows: the question and how to answer it."""

    chapter: str
    key: str
    text: str
    expects: str

    @property
    def call(self) -> str:
        """The line that answers it, e.g. ``check("01", "chain-gradient", your_answer)``."""
        return f'check("{self.chapter}", "{self.key}", your_answer)'

    def __str__(self) -> str:
        kind = f" ({self.expects})" if self.expects else ""
        return f"Exercise {self.chapter} / {self.key}\n{self.text}\nAnswer with {self.call}{kind}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        kind = f" — {self.expects}" if self.expects else ""
        return f"**Exercise {self.chapter} · {self.key}**\n\n{self.text}\n\n*Answer with* `{self.call}`{kind}"


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
    """

    chapter: str
    key: str
    question: str
    checker: Callable[[Any], bool]
    hint: str
    explanation: str
    reference_answer: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "chapter", normalize_chapter(self.chapter))
        for name in ("key", "question", "hint", "explanation"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name}={value!r} is not allowed: {name} must be a non-empty string")
        if not callable(self.checker):
            raise ValueError(f"checker={self.checker!r} is not allowed: checker must be callable")
        if self.reference_answer is None:
            reference = getattr(self.checker, "reference", None)
            if reference is None:
                raise ValueError(f"reference_answer: exercise {self.chapter}/{self.key} needs one "
                                 "(its checker does not provide a reference)")
            object.__setattr__(self, "reference_answer", reference)

    @property
    def expects(self) -> str:
        """What kind of answer the checker takes, in words ('' when unknown)."""
        return getattr(self.checker, "expects", "")

    def question_card(self) -> Question:
        """The question as a displayable :class:`Question`."""
        return Question(self.chapter, self.key, self.question, self.expects)

    def check(self, answer: Any) -> Feedback:
        """Check ``answer``: the explanation when right, the hint when wrong."""
        try:
            correct = bool(self.checker(answer))
            problem = ""
        except AnswerFormatError as error:
            correct = False
            kind = f" The answer should be {self.expects}." if self.expects else ""
            problem = f"{error}.{kind} "
        if correct:
            return Feedback(True, self.explanation, self.chapter, self.key)
        return Feedback(False, f"{problem}Hint: {self.hint}", self.chapter, self.key)

    def __repr__(self) -> str:
        return f"Exercise({self.chapter!r}, {self.key!r})"


def register(exercise: Exercise) -> Exercise:
    """Add ``exercise`` to :data:`EXERCISES` and return it; a taken (chapter, key) is a ``ValueError``."""
    if not isinstance(exercise, Exercise):
        raise ValueError(f"exercise={exercise!r} is not allowed: register takes an Exercise")
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
        raise ValueError(f"chapter={chapter!r} has no exercises: chapters with exercises are "
                         f"{', '.join(repr(c) for c in chapters())}")
    return found


def get_exercise(chapter: Any, key: str) -> Exercise:
    """The exercise (chapter, key); ``ValueError`` listing the chapter's keys when unknown."""
    listed = exercises_for(chapter)
    for exercise in listed:
        if exercise.key == key:
            return exercise
    raise ValueError(f"key={key!r} is not an exercise of chapter {listed[0].chapter}: available keys "
                     f"are {', '.join(repr(e.key) for e in listed)}")


def ask(chapter: Any, key: str) -> Question:
    """The question of exercise (chapter, key), ready to display (or ``print``)."""
    return get_exercise(chapter, key).question_card()


def check(chapter: Any, key: str, answer: Any) -> Feedback:
    """Check ``answer`` to exercise (chapter, key) and say why."""
    return get_exercise(chapter, key).check(answer)


# ----------------------------------------------------------------------------- chapter 01

register(Exercise(
    chapter="01", key="chain-gradient",
    question="A chain of 30 layers multiplies its input by w = 1.1 at every layer. By what factor "
             "is the gradient dy/dx multiplied? *(a number)*",
    checker=number(1.1**30, rel_tol=0.01),
    hint="Look again at section 'A scalar chain': the gradient is a product of L copies of w, "
         "one per layer (`scalar_chain(1.1, 30)` computes it).",
    explanation="dy/dx = w^L = 1.1^30 ≈ 17.4: ten percent per layer compounds to a factor 17 "
                "over 30 layers.",
))
register(Exercise(
    chapter="01", key="vanishing-depth",
    question="In a scalar chain with w = 0.5, after how many layers does the gradient first drop "
             "below one millionth (1e-6)? *(a whole number)*",
    checker=number(20, rel_tol=0.0),
    hint="Look again at section 'A scalar chain': the gradient after L layers is 0.5^L; find the "
         "first L with 0.5^L < 1e-6 (that is, L > log(1e-6) / log(0.5)).",
    explanation="0.5^19 ≈ 1.9e-6 but 0.5^20 ≈ 9.5e-7: halving twenty times loses six orders of "
                "magnitude. Factors below 1 make gradients vanish just as fast as factors above 1 "
                "make them explode.",
))
register(Exercise(
    chapter="01", key="overflow-depth",
    question="float32 holds numbers up to about 3.4e38. A signal of size 1 is multiplied by 10 at "
             "every layer. At which depth does it first overflow to inf? *(a whole number)*",
    checker=number(39, rel_tol=0.0),
    hint="Look again at section 'Numbers overflow' (`find_overflow`): after L layers the signal "
         "is 10^L; find the first L with 10^L > 3.4e38.",
    explanation="10^38 < 3.4e38 < 10^39, so depth 39. A real network overflows a few layers "
                "earlier: its inputs and sums start larger than 1.",
))
register(Exercise(
    chapter="01", key="gd-threshold",
    question="Gradient descent on the loss 0.5·(x² + 20·y²). Above which learning rate does it "
             "diverge? *(a number)*",
    checker=number(0.1, rel_tol=0.01),
    hint="Look again at section 'Overshooting': each step multiplies y by (1 − lr·20); it grows "
         "when |1 − lr·20| > 1, i.e. when lr > 2 / (largest curvature).",
    explanation="lr > 2/20 = 0.1 diverges: the steep direction overshoots further at every step, "
                "even though the flat direction (curvature 1) would still want a larger step.",
))
register(Exercise(
    chapter="01", key="linear-rnn",
    question="A linear RNN's recurrent matrix is 0.9 × an orthogonal matrix. How large is "
             "||d h_T / d h_{T−20}||_qm, the gradient 20 steps back? *(a number)*",
    checker=number(0.9**20, rel_tol=0.01),
    hint="Look again at section 'Recurrent networks': backpropagation through time multiplies "
         "the same matrix once per step, and an orthogonal matrix keeps norms, so only the 0.9 "
         "counts: radius^t.",
    explanation="0.9^20 ≈ 0.12: a recurrent network is a deep network with one shared matrix, so "
                "its spectral radius decides explosion (> 1) or vanishing (< 1) over time.",
))
register(Exercise(
    chapter="01", key="init-stable",
    question="In a 20-layer ReLU network of width 100, which of the initializers 'gaussian' "
             "(std 1), 'xavier' and 'he' keep the gradient's RMS within a factor 10 from the "
             "output to the first layer? *(a set of names, e.g. {'xavier', 'he'})*",
    checker=items("he", synonyms={"kaiming": "he", "glorot": "xavier", "he init": "he"}),
    hint="Look again at section 'First remedy: initialization' (`init_scales`): a naive std-1 "
         "draw multiplies scales by about sqrt(width/2) per ReLU layer; Xavier's variance is "
         "half of what ReLU needs, so each layer loses a factor sqrt(2).",
    explanation="Only He: std sqrt(2/fan_in) makes up for ReLU zeroing half its inputs. Xavier "
                "shrinks the gradient by about sqrt(2)^19 ≈ 700 over 20 layers; std 1 explodes it.",
))


# ----------------------------------------------------------------------------- chapter 02

register(Exercise(
    chapter="02", key="gsc-relative",
    question="GSC(k, l) = 30. You perturb f_k by a small random amount, 1% of its size. By about "
             "how many percent does f_l move? *(a number, in percent)*",
    checker=number(30, rel_tol=0.02),
    hint="Look again at section 'What the GSC measures': GSC(k, l) is the ratio of relative "
         "changes, (||Δf_l|| / ||f_l||) / (||Δf_k|| / ||f_k||).",
    explanation="30 × 1% = 30%: a small relative change far from the output becomes a large "
                "relative change near it. That is what 'exploding' means in a scale-free way.",
))
register(Exercise(
    chapter="02", key="rescaling",
    question="Layer k's output is multiplied by 10 and the next layer's weights are divided by 10, "
             "so the network computes exactly the same function. What happens?\n\n"
             "(a) the raw gradient ||d loss / d f_k|| and GSC(k, 0) both shrink 10×  \n"
             "(b) the raw gradient shrinks 10×, the GSC does not change  \n"
             "(c) the raw gradient and the GSC both grow 10×  \n"
             "(d) neither changes\n\n*(a letter)*",
    checker=choice("b"),
    hint="Look again at section 'Why not the raw gradient?': the Jacobian from f_k shrinks 10× "
         "while ||f_k|| grows 10×; the GSC multiplies the two.",
    explanation="The raw gradient depends on how a layer happens to be scaled; the GSC, "
                "||J||_qm · ||f_k|| / ||f_l||, does not, so it measures the network's function "
                "rather than its parametrization.",
))
register(Exercise(
    chapter="02", key="orthogonal",
    question="An orthogonal linear network: every layer is a square orthogonal matrix and there is "
             "no nonlinearity. What is GSC(k, l) for every pair k > l ≥ 1? *(a number)*",
    checker=number(1.0, rel_tol=1e-6),
    hint="Look again at section 'Defining the GSC': an orthogonal Jacobian has ||J||_qm = 1, and "
         "orthogonal layers keep ||f_k|| = ||f_l||.",
    explanation="GSC = 1 · ||f_k|| / ||f_l|| = 1 everywhere: no explosion at all, the ideal the "
                "orthogonal initial state of chapter 07 recreates for ReLU networks.",
))
register(Exercise(
    chapter="02", key="rate-ratio",
    question="If GSC(k, 0) ≈ 1.2^k, how many times larger is the GSC at layer 40 than at layer 10? "
             "*(a number)*",
    checker=number(1.2**30, rel_tol=0.01),
    hint="Look again at section 'The explosion rate': GSC(k, 0) ≈ c·r^k, so the ratio between "
         "layers 40 and 10 is r^(40 − 10); c cancels.",
    explanation="1.2^30 ≈ 237: a modest 20% per layer compounds to more than two orders of "
                "magnitude across 30 layers.",
))
register(Exercise(
    chapter="02", key="name-it",
    question="The GSC grows like c·r^(k − l). What is the phenomenon called when r > 1? "
             "*(a word or two)*",
    checker=text("exploding gradients", "exploding gradient", "gradient explosion", "explosion",
                 "exploding", "the exploding gradient problem", "exploding gradient problem"),
    hint="Look again at section 'The explosion rate': r > 1 means the GSC multiplies by r at every "
         "layer going back from the output.",
    explanation="Exploding gradients, in the paper's scale-free sense: the GSC grows "
                "exponentially with the distance between layers.",
))


# ----------------------------------------------------------------------------- chapters 03 - 07

register(Exercise(
    chapter="03", key="bn-relu-rate",
    question="By the paper's mean-field argument, by what factor does the GSC of a batch-"
             "normalized ReLU network grow per layer? *(a number)*",
    checker=number(math.sqrt(math.pi / (math.pi - 1)), rel_tol=0.02),
    hint="Look again at chapter 03's section on batch normalization: the mean-field estimate "
         "is sqrt(π / (π − 1)).",
    explanation="sqrt(π / (π − 1)) ≈ 1.21 per layer: about 1.21^50 ≈ 14,000 over 50 layers, even "
                "though batch norm keeps every layer's activations at unit scale.",
))
register(Exercise(
    chapter="04", key="sign-diversity",
    question="A neuron's pre-activation is positive on 90 of 100 inputs and negative on 10. What "
             "is its sign diversity? *(a number)*",
    checker=number(0.1, rel_tol=0.01),
    hint="Look again at chapter 04's section on sign diversity: min(P, N) / (P + N), with P and N "
         "the counts of positive and negative pre-activations.",
    explanation="min(90, 10) / 100 = 0.1: the neuron is nearly always on, so on this batch a ReLU "
                "there acts almost like a linear function (a collapsing domain).",
))
register(Exercise(
    chapter="04", key="pseudo-linear",
    question="A ReLU neuron's pre-activation is positive on every input of the batch (sign "
             "diversity 0). On that batch the neuron acts like:\n\n"
             "(a) the zero function  \n(b) a linear function  \n(c) a step function\n\n"
             "*(a letter)*",
    checker=choice("b", options="abc"),
    hint="Look again at chapter 04's section on sign diversity: relu(u) = u whenever u > 0.",
    explanation="relu(u) = u on every input, so the neuron is exactly linear there: layers whose "
                "neurons rarely change sign add little nonlinearity (pseudo-linearity).",
))
register(Exercise(
    chapter="05", key="dilution",
    question="A residual block b(x) = x + r(x) has r(x) orthogonal to x, ||x|| = 3·||r(x)||, and "
             "the residual branch has GSC 5. What is the block's GSC? *(a number)*",
    checker=number(math.sqrt((9 + 25) / 10), rel_tol=0.01),
    hint="Look again at chapter 05's section on the Pythagorean argument: "
         "GSC_b² = (k² + GSC_r²) / (k² + 1) with k = ||x|| / ||r(x)||.",
    explanation="sqrt((9 + 25) / 10) ≈ 1.84, far below the branch's 5: the skip connection dilutes "
                "the branch's explosion.",
))
register(Exercise(
    chapter="06", key="effective-depth",
    question="What is the effective depth of a residual network?\n\n"
             "(a) its number of layers  \n(b) its number of residual blocks  \n"
             "(c) the largest number λ of residual Jacobians in a path whose λ-contribution is "
             "still a set fraction of the whole gradient  \n"
             "(d) the depth at which the GSC first exceeds 10\n\n*(a letter)*",
    checker=choice("c"),
    hint="Look again at chapter 06's section on the residual trick: the Jacobian expands into "
         "paths through λ residual Jacobians, and the effective depth asks which λ still matter.",
    explanation="Paths through many residual branches contribute almost nothing, so a deep ResNet "
                "trains like an ensemble of much shallower networks.",
))
register(Exercise(
    chapter="07", key="looks-linear",
    question="A ReLU network starts in the looks-linear orthogonal initial state. What is its "
             "GSC(k, l) at initialization? *(a number)*",
    checker=number(1.0, rel_tol=1e-3),
    hint="Look again at chapter 07's section on the orthogonal initial state: relu(u) − relu(−u) "
         "= u makes the initial network exactly an orthogonal linear map.",
    explanation="An orthogonal linear map has GSC 1 between every pair of layers: no explosion "
                "at the start of training, whatever the depth.",
))
