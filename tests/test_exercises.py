"""Self-check exercises: every exercise accepts its reference, rejects a wrong answer with a hint."""

import math

import numpy as np
import pytest
import torch

from explodegrad.course import exercises
from explodegrad.course.exercises import (
    EXERCISES,
    AnswerFormatError,
    ChoiceAnswer,
    Exercise,
    Feedback,
    NumberAnswer,
    Question,
    SetAnswer,
    TextAnswer,
    ask,
    chapters,
    check,
    choice,
    exercises_for,
    items,
    number,
    register,
    text,
)

ALL = sorted(EXERCISES)


def wrong_answer(exercise: Exercise):
    """A clearly wrong answer of the right kind."""
    checker = exercise.checker
    if isinstance(checker, NumberAnswer):
        return checker.value * 10 + 1
    if isinstance(checker, ChoiceAnswer):
        return next(letter for letter in checker.options if letter != checker.correct)
    if isinstance(checker, TextAnswer):
        return "banana"
    if isinstance(checker, SetAnswer):
        return {"banana"}
    return object()


@pytest.fixture
def scratch_registry(monkeypatch):
    """Register test exercises in a copy of the registry."""
    monkeypatch.setattr(exercises, "EXERCISES", dict(EXERCISES))
    return exercises.EXERCISES


def test_every_chapter_from_01_to_07_has_exercises():
    assert chapters() == ["01", "02", "03", "04", "05", "06", "07"]
    assert len(exercises_for("01")) >= 3 and len(exercises_for("02")) >= 3


@pytest.mark.parametrize("slot", ALL, ids=["/".join(s) for s in ALL])
def test_every_exercise_accepts_its_reference_and_hints_on_a_wrong_answer(slot):
    exercise = EXERCISES[slot]
    assert exercise.question.strip() and exercise.hint.strip() and exercise.explanation.strip()
    assert "section" in exercise.hint  # points back to where it is taught
    right = check(*slot, exercise.reference_answer)
    assert right.correct and right.message == exercise.explanation
    assert str(right).startswith("✅ Correct: ")
    wrong = check(*slot, wrong_answer(exercise))
    assert not wrong.correct and exercise.hint in wrong.message
    assert str(wrong).startswith("❌ Not quite. ") and exercise.hint in wrong._repr_markdown_()


def test_numbers_are_checked_with_a_relative_tolerance():
    assert check("01", "chain-gradient", 17.45)
    assert check("01", "chain-gradient", "17.4")
    assert check("01", "chain-gradient", np.float32(17.5))
    assert check("01", "chain-gradient", torch.tensor(17.44))
    assert not check("01", "chain-gradient", 18.0)  # 3% off
    assert not check("01", "chain-gradient", 1.1 * 30)  # adding instead of multiplying


def test_a_whole_number_answer_must_be_exact():
    assert check("01", "overflow-depth", 39)
    assert not check("01", "overflow-depth", 38)


def test_an_answer_of_the_wrong_kind_says_what_is_expected():
    feedback = check("01", "chain-gradient", "a lot")
    assert not feedback and "should be a number" in feedback.message and "Hint:" in feedback.message
    assert not check("01", "chain-gradient", True)
    letter = check("02", "rescaling", "z")
    assert not letter and "one letter" in letter.message


def test_choices_accept_common_spellings():
    for spelling in ("b", "B", "(b)", "b)", " b. "):
        assert check("02", "rescaling", spelling), spelling
    assert not check("02", "rescaling", "a")


def test_text_answers_ignore_case_spacing_and_accept_synonyms():
    assert check("02", "name-it", "Exploding   Gradients.")
    assert check("02", "name-it", "gradient explosion")
    assert not check("02", "name-it", "vanishing gradients")


def test_set_answers_accept_any_spelling_of_the_same_set():
    assert check("01", "init-stable", {"he"})
    assert check("01", "init-stable", ["Kaiming"])
    assert check("01", "init-stable", "he")
    assert not check("01", "init-stable", "he, xavier")
    assert not check("01", "init-stable", {"he", "gaussian"})
    assert not check("01", "init-stable", 3)


def test_chapters_may_be_given_as_numbers():
    assert check(1, "chain-gradient", 1.1**30) and check("1", "chain-gradient", 1.1**30)
    assert exercises_for(2) == exercises_for("02")


def test_unknown_keys_and_chapters_list_what_is_available():
    with pytest.raises(ValueError, match="key='nope'.*'chain-gradient'"):
        check("01", "nope", 1)
    with pytest.raises(ValueError, match="chapter='09'.*'01', '02'"):
        ask("09", "anything")
    with pytest.raises(ValueError, match="chapter"):
        exercises_for("one")


def test_ask_shows_the_question_and_how_to_answer():
    question = ask("01", "chain-gradient")
    assert isinstance(question, Question)
    exercise = EXERCISES[("01", "chain-gradient")]
    assert exercise.question in str(question) and exercise.question in question._repr_markdown_()
    assert 'check("01", "chain-gradient", your_answer)' in str(question)
    assert "a number" in question._repr_markdown_()
    assert repr(question) == str(question)


def test_feedback_prints_nicely():
    right = Feedback(True, "because.", "01", "k")
    wrong = Feedback(False, "Hint: look again.", "01", "k")
    assert str(right) == repr(right) == "✅ Correct: because."
    assert str(wrong) == "❌ Not quite. Hint: look again."
    assert wrong._repr_markdown_() == "❌ **Not quite.** Hint: look again."
    assert bool(right) and not bool(wrong)


def test_adding_an_exercise_takes_one_call(scratch_registry):
    added = register(
        Exercise(
            chapter=8,
            key="answer",
            question="6 x 7?",
            checker=number(42),
            hint="Look again at section 'Sums'.",
            explanation="6 x 7 = 42.",
        )
    )
    assert added.chapter == "08" and added.reference_answer == 42
    assert check("08", "answer", 42) and not check("08", "answer", 41)
    with pytest.raises(ValueError, match="taken"):
        register(added)


def test_a_custom_checker_needs_a_reference_answer(scratch_registry):
    def is_even(answer):
        return int(answer) % 2 == 0

    with pytest.raises(ValueError, match="reference_answer"):
        Exercise("08", "even", "An even number?", is_even, "Look again at section 'Parity'.", "Yes.")
    exercise = register(
        Exercise(
            "08",
            "even",
            "An even number?",
            is_even,
            "Look again at section 'Parity'.",
            "Yes.",
            reference_answer=4,
        )
    )
    assert exercise.expects == "" and check("08", "even", 4) and not check("08", "even", 3)


@pytest.mark.parametrize(
    "kwargs", [dict(key=""), dict(question="  "), dict(hint=None), dict(checker=42), dict(chapter="one")]
)
def test_exercise_rejects_bad_fields(kwargs):
    fields = (
        dict(chapter="08", key="k", question="q?", checker=number(1.0), hint="h", explanation="e") | kwargs
    )
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Exercise(**fields)


def test_checker_factories_reject_bad_references():
    with pytest.raises(ValueError, match="value"):
        number(float("nan"))
    with pytest.raises(ValueError, match="tol"):
        number(1.0, rel_tol=-1)
    with pytest.raises(ValueError, match="correct"):
        choice("e")
    with pytest.raises(ValueError, match="accepted"):
        text()
    with pytest.raises(ValueError, match="accepted"):
        items("")
    with pytest.raises(AnswerFormatError):
        NumberAnswer(1.0)("one")


def test_chapter_01_answers_agree_with_the_library():
    """The reference answers are what the chapter's own experiments measure."""
    from explodegrad.studies.chain_rule import init_scales, scalar_chain
    from explodegrad.studies.gradient_descent import gradient_descent_path
    from explodegrad.studies.recurrent import rnn_gradient_vs_time

    assert check("01", "chain-gradient", scalar_chain(1.1, 30).input_gradient)
    gradients = scalar_chain(0.5, 30).gradients
    assert check("01", "vanishing-depth", int(np.argmax(gradients < 1e-6)) + 1)
    assert check("01", "gd-threshold", gradient_descent_path(0.05, 3, curvature=(1, 20)).threshold)
    rnn = rnn_gradient_vs_time(0.9, steps=20, hidden=8, activation="linear")
    assert check("01", "linear-rnn", rnn.gradient_norms[20])
    scales = init_scales(depth=20, width=100, activation="relu")
    spread = scales.gradient_rms.max(axis=1) / scales.gradient_rms.min(axis=1)
    assert check("01", "init-stable", {name for name, s in zip(scales.inits, spread) if s < 10})
    assert check("01", "overflow-depth", math.floor(math.log10(torch.finfo(torch.float32).max)) + 1)
