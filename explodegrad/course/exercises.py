"""Self-check exercises: each chapter's questions, checked by the library.

A wrong answer gets a hint that points back to the section that teaches the idea, not just
"wrong"; a right one gets a short explanation. In a notebook::

    from explodegrad.course.exercises import ask, check
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
        raise ValueError(
            f"correct={correct!r} is not allowed: correct must be one of the letters {', '.join(options)}"
        )
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
                raise ValueError(
                    f"reference_answer: exercise {self.chapter}/{self.key} needs one "
                    "(its checker does not provide a reference)"
                )
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
        raise ValueError(
            f"chapter={chapter!r} has no exercises: chapters with exercises are "
            f"{', '.join(repr(c) for c in chapters())}"
        )
    return found


def get_exercise(chapter: Any, key: str) -> Exercise:
    """The exercise (chapter, key); ``ValueError`` listing the chapter's keys when unknown."""
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


def check(chapter: Any, key: str, answer: Any) -> Feedback:
    """Check ``answer`` to exercise (chapter, key) and say why."""
    return get_exercise(chapter, key).check(answer)


# ----------------------------------------------------------------------------- chapter 01

register(
    Exercise(
        chapter="01",
        key="chain-gradient",
        question="A chain of 30 layers multiplies its input by w = 1.1 at every layer. By what factor "
        "is the gradient dy/dx multiplied? *(a number)*",
        checker=number(1.1**30, rel_tol=0.01),
        hint="Look again at section 'A scalar chain': the gradient is a product of L copies of w, "
        "one per layer (`scalar_chain(1.1, 30)` computes it).",
        explanation="dy/dx = w^L = 1.1^30 ≈ 17.4: ten percent per layer compounds to a factor 17 "
        "over 30 layers.",
    )
)
register(
    Exercise(
        chapter="01",
        key="vanishing-depth",
        question="In a scalar chain with w = 0.5, after how many layers does the gradient first drop "
        "below one millionth (1e-6)? *(a whole number)*",
        checker=number(20, rel_tol=0.0),
        hint="Look again at section 'A scalar chain': the gradient after L layers is 0.5^L; find the "
        "first L with 0.5^L < 1e-6 (that is, L > log(1e-6) / log(0.5)).",
        explanation="0.5^19 ≈ 1.9e-6 but 0.5^20 ≈ 9.5e-7: halving twenty times loses six orders of "
        "magnitude. Factors below 1 make gradients vanish just as fast as factors above 1 "
        "make them explode.",
    )
)
register(
    Exercise(
        chapter="01",
        key="overflow-depth",
        question="float32 holds numbers up to about 3.4e38. A signal of size 1 is multiplied by 10 at "
        "every layer. At which depth does it first overflow to inf? *(a whole number)*",
        checker=number(39, rel_tol=0.0),
        hint="Look again at section 'Numbers overflow' (`find_overflow`): after L layers the signal "
        "is 10^L; find the first L with 10^L > 3.4e38.",
        explanation="10^38 < 3.4e38 < 10^39, so depth 39. A real network overflows a few layers "
        "earlier: its inputs and sums start larger than 1.",
    )
)
register(
    Exercise(
        chapter="01",
        key="gd-threshold",
        question="Gradient descent on the loss 0.5·(x² + 20·y²). Above which learning rate does it "
        "diverge? *(a number)*",
        checker=number(0.1, rel_tol=0.01),
        hint="Look again at section 'Overshooting': each step multiplies y by (1 − lr·20); it grows "
        "when |1 − lr·20| > 1, i.e. when lr > 2 / (largest curvature).",
        explanation="lr > 2/20 = 0.1 diverges: the steep direction overshoots further at every step, "
        "even though the flat direction (curvature 1) would still want a larger step.",
    )
)
register(
    Exercise(
        chapter="01",
        key="linear-rnn",
        question="A linear RNN's recurrent matrix is 0.9 × an orthogonal matrix. How large is "
        "||d h_T / d h_{T−20}||_qm, the gradient 20 steps back? *(a number)*",
        checker=number(0.9**20, rel_tol=0.01),
        hint="Look again at section 'Recurrent networks': backpropagation through time multiplies "
        "the same matrix once per step, and an orthogonal matrix keeps norms, so only the 0.9 "
        "counts: radius^t.",
        explanation="0.9^20 ≈ 0.12: a recurrent network is a deep network with one shared matrix, so "
        "its spectral radius decides explosion (> 1) or vanishing (< 1) over time.",
    )
)
register(
    Exercise(
        chapter="01",
        key="init-stable",
        question="In a 20-layer ReLU network of width 100, which of the initializers 'gaussian' "
        "(std 1), 'xavier' and 'he' keep the gradient's RMS within a factor 10 from the "
        "output to the first layer? *(a set of names, e.g. {'xavier', 'he'})*",
        checker=items("he", synonyms={"kaiming": "he", "glorot": "xavier", "he init": "he"}),
        hint="Look again at section 'Remedies: initialization' (`init_scales`): a naive std-1 "
        "draw multiplies scales by about sqrt(width/2) per ReLU layer; Xavier's variance is "
        "half of what ReLU needs, so each layer loses a factor sqrt(2).",
        explanation="Only He: std sqrt(2/fan_in) makes up for ReLU zeroing half its inputs. Xavier "
        "shrinks the gradient by about sqrt(2)^19 ≈ 700 over 20 layers; std 1 explodes it.",
    )
)


register(
    Exercise(
        chapter="01",
        key="clip-norm",
        question="A gradient has norm 50. You clip it by norm with threshold 1. What is its norm "
        "afterwards? *(a number)*",
        checker=number(1.0, rel_tol=0.01),
        hint="Look again at section 'Remedies: gradient clipping': clipping by norm rescales the "
        "whole gradient so that its norm is at most the threshold, keeping its direction.",
        explanation="1: the gradient is divided by 50, so it points the same way but the step it "
        "produces is bounded, whatever happened in the backward pass.",
    )
)


# ----------------------------------------------------------------------------- chapter 02

register(
    Exercise(
        chapter="02",
        key="gsc-relative",
        question="GSC(k, l) = 30. You perturb f_k by a small random amount, 1% of its size. By about "
        "how many percent does f_l move? *(a number, in percent)*",
        checker=number(30, rel_tol=0.02),
        hint="Look again at section 'What the GSC measures': GSC(k, l) is the ratio of relative "
        "changes, (||Δf_l|| / ||f_l||) / (||Δf_k|| / ||f_k||).",
        explanation="30 × 1% = 30%: a small relative change far from the output becomes a large "
        "relative change near it. That is what 'exploding' means in a scale-free way.",
    )
)
register(
    Exercise(
        chapter="02",
        key="rescaling",
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
    )
)
register(
    Exercise(
        chapter="02",
        key="orthogonal",
        question="An orthogonal linear network: every layer is a square orthogonal matrix and there is "
        "no nonlinearity. What is GSC(k, l) for every pair k > l ≥ 1? *(a number)*",
        checker=number(1.0, rel_tol=1e-6),
        hint="Look again at section 'Defining the GSC': an orthogonal Jacobian has ||J||_qm = 1, and "
        "orthogonal layers keep ||f_k|| = ||f_l||.",
        explanation="GSC = 1 · ||f_k|| / ||f_l|| = 1 everywhere: no explosion at all, the ideal the "
        "orthogonal initial state of chapter 07 recreates for ReLU networks.",
    )
)
register(
    Exercise(
        chapter="02",
        key="rate-ratio",
        question="If GSC(k, 0) ≈ 1.2^k, how many times larger is the GSC at layer 40 than at layer 10? "
        "*(a number)*",
        checker=number(1.2**30, rel_tol=0.01),
        hint="Look again at section 'The explosion rate': GSC(k, 0) ≈ c·r^k, so the ratio between "
        "layers 40 and 10 is r^(40 − 10); c cancels.",
        explanation="1.2^30 ≈ 237: a modest 20% per layer compounds to more than two orders of "
        "magnitude across 30 layers.",
    )
)
register(
    Exercise(
        chapter="02",
        key="name-it",
        question="The GSC grows like c·r^(k − l). What is the phenomenon called when r > 1? "
        "*(a word or two)*",
        checker=text(
            "exploding gradients",
            "exploding gradient",
            "gradient explosion",
            "explosion",
            "exploding",
            "the exploding gradient problem",
            "exploding gradient problem",
        ),
        hint="Look again at section 'The explosion rate': r > 1 means the GSC multiplies by r at every "
        "layer going back from the output.",
        explanation="Exploding gradients, in the paper's scale-free sense: the GSC grows "
        "exponentially with the distance between layers.",
    )
)


# ----------------------------------------------------------------------------- chapters 03 - 07

register(
    Exercise(
        chapter="03",
        key="bn-relu-rate",
        question="By the paper's mean-field argument, by what factor does the GSC of a batch-"
        "normalized ReLU network grow per layer? *(a number)*",
        checker=number(math.sqrt(math.pi / (math.pi - 1)), rel_tol=0.02),
        hint="Look again at section 'Batch normalization causes it': the mean-field estimate "
        "is sqrt(π / (π − 1)), and the measured rate of the relu/batch row agrees with it.",
        explanation="sqrt(π / (π − 1)) ≈ 1.21 per layer: a factor 1.21^50 ≈ 14,000 over 50 layers, even "
        "though batch norm keeps every layer's activations at unit scale. (The table's "
        "GSC(input, 0) of about 3,300 is smaller because it also holds the fit's constant c, "
        "which is below 1 here: the rate is what each layer adds.)",
    )
)
register(
    Exercise(
        chapter="03",
        key="bn-gsc-depth",
        question="A batch-normalized ReLU network explodes at r ≈ 1.21 per layer. About how large is "
        "GSC(k, l) for two layers 49 apart (take the constant c ≈ 1)? *(a number)*",
        checker=number(math.sqrt(math.pi / (math.pi - 1)) ** 49, rel_tol=0.15),
        hint="Look again at section 'The GSC layer by layer': exploding gradients with rate r mean "
        "GSC(k, l) ≈ c·r^(k − l); across 49 layers that is r^49 (take c ≈ 1).",
        explanation="1.21^49 ≈ 11,000: a small relative change of the first layer moves the output "
        "about ten thousand times as much, relatively.",
    )
)
register(
    Exercise(
        chapter="03",
        key="worst-norm",
        question="In the table of 3 activations × 3 normalizations, which normalization gives the "
        "ReLU network by far the largest GSC from the input to the loss? *(a word)*",
        checker=text(
            "batch", "batch norm", "batch normalization", "batchnorm", "batch-norm", "batch normalisation"
        ),
        hint="Look again at section 'The table': compare the rows relu/none, relu/batch and "
        "relu/layer in the column GSC(input, 0).",
        explanation="Batch normalization: it keeps activations at unit scale, yet it is what makes "
        "the ReLU network's gradients explode. Normalizing the forward pass does not "
        "normalize the backward pass.",
    )
)
register(
    Exercise(
        chapter="03",
        key="adam",
        question="You switch from SGD to Adam, which rescales every parameter's step by its own "
        "running gradient size. What happens to the exploding gradients?\n\n"
        "(a) they disappear: Adam's steps no longer depend on the gradient's size  \n"
        "(b) they stay: the GSC measures the network's function, and its rate stays above "
        "the exploding threshold during training  \n"
        "(c) they turn into vanishing gradients\n\n*(a letter)*",
        checker=choice("b", options="abc"),
        hint="Look again at section 'Adam and RMSprop do not remove it': follow GSC(L, 0) during "
        "training under each optimizer.",
        explanation="Adam changes how big a step is, not how strongly a small relative change of a "
        "lower layer is amplified on its way to the loss: after training the fitted rate "
        "stays above the exploding threshold in every seed (claim "
        "03/adaptive-optimizers-still-explode).",
    )
)
register(
    Exercise(
        chapter="03",
        key="depth-error",
        question="At the quick scale, the two exploding architectures end the depth study's largest "
        "depth with a clearly higher training error than tanh without normalization. What "
        "does that show?\n\n"
        "(a) exploding gradients limit the trainable depth: the paper's claim, measured  \n"
        "(b) with two learning rates and 200 steps on digits, the exploding networks are "
        "harder to train deep; a depth limit would need a wider rate grid, more steps and "
        "harder data  \n"
        "(c) nothing: every architecture fits the training set\n\n*(a letter)*",
        checker=choice("b", options="abc"),
        hint="Look again at section 'Training error against depth': how many learning rates were "
        "tried, for how many steps, and is the ordering by the size of the GSC?",
        explanation="A higher error after 200 steps at the better of two rates can also mean 'needed "
        "another rate or more steps', and tanh/layer (a GSC of a few) can end worse than "
        "relu/batch (hundreds). It is evidence about this budget, not a measured depth "
        "limit.",
    )
)


# ----------------------------------------------------------------------------- chapters 04 - 07

register(
    Exercise(
        chapter="04",
        key="sign-diversity",
        question="A neuron's pre-activation is positive on 90 of 100 inputs and negative on 10. What "
        "is its sign diversity? *(a number)*",
        checker=number(0.1, rel_tol=0.01),
        hint="Look again at section 'Spread and sign diversity': min(P, N) / (P + N), with P and N "
        "the counts of positive and negative pre-activations.",
        explanation="min(90, 10) / 100 = 0.1: the neuron is nearly always on, so on this batch a ReLU "
        "there acts almost like a linear function (a collapsing domain).",
    )
)
register(
    Exercise(
        chapter="04",
        key="pseudo-linear",
        question="A ReLU neuron's pre-activation is positive on every input of the batch (sign "
        "diversity 0). On that batch the neuron acts like:\n\n"
        "(a) the zero function  \n(b) a linear function  \n(c) a step function\n\n"
        "*(a letter)*",
        checker=choice("b", options="abc"),
        hint="Look again at section 'Pseudo-linearity': relu(u) = u whenever u > 0.",
        explanation="relu(u) = u on every input, so the neuron is exactly linear there: layers whose "
        "neurons rarely change sign add little nonlinearity (pseudo-linearity).",
    )
)
register(
    Exercise(
        chapter="04",
        key="collapse-depth",
        question="A 20-layer network acts as an affine map on its data in its top 15 layers (they "
        "are pseudo-linear there). Affine maps compose into one affine map. At most how "
        "many layers does a network need to compute the same function on that data? "
        "*(a whole number)*",
        checker=number(6, rel_tol=0.0),
        hint="Look again at section 'Pseudo-linearity': the bottom 5 layers stay as they are; the "
        "top 15 affine layers merge into a single affine layer.",
        explanation="5 + 1 = 6 layers: a network that is pseudo-linear beyond depth k can do no more "
        "than a network about k layers deep, whatever its nominal depth.",
    )
)
register(
    Exercise(
        chapter="04",
        key="tradeoff",
        question="Compare relu/none with relu/batch in this chapter's table. Batch normalization:\n\n"
        "(a) prevents exploding gradients but lets the domain collapse  \n"
        "(b) keeps the domain from collapsing but makes the gradients explode  \n"
        "(c) fixes both  \n(d) fixes neither\n\n*(a letter)*",
        checker=choice("b"),
        hint="Look again at section 'The tradeoff': read the GSC column and the sign-diversity column "
        "of the rows relu/none and relu/batch.",
        explanation="Batch norm re-centres every layer, so neurons keep changing sign (no collapse), "
        "and that very re-centring makes the GSC grow about 1.21 times per layer: the "
        "paper's tradeoff between the two pathologies.",
    )
)
register(
    Exercise(
        chapter="05",
        key="dilution",
        question="A residual block b(x) = x + r(x) has r(x) orthogonal to x, ||x|| = 3·||r(x)||, and "
        "the residual branch has GSC 5. What is the block's GSC? *(a number)*",
        checker=number(math.sqrt((9 + 25) / 10), rel_tol=0.01),
        hint="Look again at section 'The Pythagorean argument': "
        "GSC_b² = (k² + GSC_r²) / (k² + 1) with k = ||x|| / ||r(x)||.",
        explanation="sqrt((9 + 25) / 10) ≈ 1.84, far below the branch's 5: the skip connection dilutes "
        "the branch's explosion.",
    )
)
register(
    Exercise(
        chapter="05",
        key="dilution-limit",
        question="The skip-to-residual ratio k = ||x|| / ||r(x)|| grows without bound (the branch is "
        "scaled down towards 0). What does the block's GSC tend to? *(a number)*",
        checker=number(1.0, rel_tol=1e-6),
        hint="Look again at section 'The Pythagorean argument': divide the numerator and the "
        "denominator of (k² + GSC_r²) / (k² + 1) by k² and let k grow.",
        explanation="GSC_b → 1: a block that is almost the identity neither explodes nor vanishes, "
        "whatever its branch does. That is how ResNets tame exploding gradients.",
    )
)
register(
    Exercise(
        chapter="05",
        key="no-skip",
        question="In the Pythagorean formula, set k = 0 (the skip is negligible next to the "
        "residual). The block's GSC then equals:\n\n"
        "(a) 1  \n(b) the branch's GSC  \n(c) 0  \n(d) k\n\n*(a letter)*",
        checker=choice("b"),
        hint="Look again at section 'The Pythagorean argument': put k = 0 into "
        "GSC_b² = (k² + GSC_r²) / (k² + 1).",
        explanation="GSC_b = GSC_r: without a skip worth the name, the block is just its branch, and "
        "stacking such blocks explodes like a plain network.",
    )
)
register(
    Exercise(
        chapter="06",
        key="effective-depth",
        question="What is the effective depth of a network?\n\n"
        "(a) its number of layers  \n(b) its number of residual blocks  \n"
        "(c) the largest number λ of residual Jacobians in a path whose λ-contribution is "
        "still a set fraction of the whole gradient  \n"
        "(d) the depth at which the GSC first exceeds 10\n\n*(a letter)*",
        checker=choice("c"),
        hint="Look again at section 'The residual trick': the Jacobian expands into paths through λ "
        "residual Jacobians, and the effective depth asks which λ still matter.",
        explanation="Paths through many residual Jacobians contribute almost nothing, so a deep "
        "network can train like an ensemble of much shallower ones.",
    )
)
register(
    Exercise(
        chapter="06",
        key="since-init",
        question="The skip of every layer is the layer itself at initialization. What is the "
        "network's effective depth at step 0, before any training? *(a whole number)*",
        checker=number(0, abs_tol=0.0),
        hint="Look again at section 'During training': with this skip the residual r = f − s is what "
        "training changed; what is it before the first step?",
        explanation="0: every residual is exactly zero at initialization, so only the λ = 0 path "
        "(all skips) carries anything. Training grows the effective depth from there.",
    )
)
register(
    Exercise(
        chapter="06",
        key="path-count",
        question="A plain network has L = 20 layers. Into how many λ-contributions (λ = 0, 1, ...) "
        "does the residual trick split its Jacobian? *(a whole number)*",
        checker=number(21, rel_tol=0.0),
        hint="Look again at section 'The residual trick': a path can go through anywhere from 0 to L "
        "residual Jacobians.",
        explanation="λ = 0, 1, ..., 20: 21 contributions, which add up to the whole Jacobian (the "
        "2^20 single paths are grouped by their number of residual Jacobians).",
    )
)
register(
    Exercise(
        chapter="06",
        key="taylor-linear",
        question="Replacing the top 6 layers of a trained network by their first-order Taylor "
        "expansion leaves its training error unchanged. How do those layers act on the "
        "data they see? *(one word)*",
        checker=text(
            "linear",
            "linearly",
            "affine",
            "affinely",
            "almost linear",
            "almost linearly",
            "nearly linear",
            "pseudo-linear",
            "pseudo-linearly",
            "like a linear map",
        ),
        hint="Look again at section 'The Taylor experiment': a first-order Taylor expansion is an "
        "affine map; when it does as well as the layers, what were the layers doing?",
        explanation="(Almost) linearly: those 6 layers add no depth on this data, so the network is "
        "effectively shallower than it looks.",
    )
)
register(
    Exercise(
        chapter="07",
        key="looks-linear",
        question="A ReLU network starts in the looks-linear orthogonal initial state. What is its "
        "GSC(k, l) between two hidden layers at initialization? *(a number)*",
        checker=number(1.0, rel_tol=1e-3),
        hint="Look again at section 'The orthogonal initial state': relu(u) − relu(−u) = u makes "
        "the initial network exactly an orthogonal linear map.",
        explanation="An orthogonal linear map has GSC 1 between every pair of hidden layers: no "
        "explosion at the start of training, whatever the depth.",
    )
)
register(
    Exercise(
        chapter="07",
        key="clipping",
        question="Gradient clipping by norm divides every layer's gradient by the same factor. What "
        "does it do to the network's GSC at that step?\n\n"
        "(a) it divides it by the same factor  \n(b) nothing: the GSC is unchanged  \n"
        "(c) it brings it to 1\n\n*(a letter)*",
        checker=choice("b", options="abc"),
        hint="Look again at section 'The remedies table', row 'gradient clipping': the GSC is a "
        "property of the network's function, and clipping only shrinks the step.",
        explanation="Nothing: clipping changes how far a step goes, not how the network amplifies a "
        "relative change on its way to the loss (the first-update balance between layers "
        "is identical with and without it).",
    )
)
register(
    Exercise(
        chapter="07",
        key="budget-width",
        question="An MLP with 64 inputs, one hidden layer of width w (no normalization) and 10 "
        "classes has 64·w + w + 10·w + 10 parameters. What is the largest w that keeps it "
        "within 82,122 parameters? *(a whole number)*",
        checker=number(1094, rel_tol=0.0),
        hint="Look again at section 'Width instead of depth': solve 75·w + 10 ≤ 82,122 and round down.",
        explanation="w = 1094 (75 · 1094 + 10 = 82,060). The study's widths come from the same count "
        "(with batch norm's 2 parameters per neuron added): explodegrad.studies.remedies."
        "width_for_budget.",
    )
)
register(
    Exercise(
        chapter="07",
        key="adam-first-step",
        question="Adam's very first update moves every parameter by:\n\n"
        "(a) the learning rate times its gradient  \n"
        "(b) about the learning rate, whatever the size of its gradient  \n"
        "(c) nothing: Adam needs a few steps to warm up\n\n*(a letter)*",
        checker=choice("b", options="abc"),
        hint="Look again at section 'The remedies table', row 'adaptive optimizer': Adam divides "
        "the gradient by the root of its running square, and at the first step both are the "
        "same gradient.",
        explanation="About the learning rate: g / sqrt(g²) = ±1 for every parameter, so a layer's "
        "step no longer grows with its exploding gradient; yet the GSC, a property of the "
        "network, is untouched.",
    )
)
