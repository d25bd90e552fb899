"""Self-check exercises: every exercise accepts its reference, rejects a wrong answer with a hint."""

import math
import re

import numpy as np
import pytest
import torch

from explodegrad.course import exercises
from explodegrad.course.exercises import (
    COMPUTED_ANSWERS,
    EXERCISE_DATA,
    EXERCISES,
    AnswerFormatError,
    ChoiceAnswer,
    Exercise,
    Feedback,
    Mistake,
    NumberAnswer,
    Question,
    SetAnswer,
    TextAnswer,
    Unanswered,
    ask,
    chapters,
    check,
    choice,
    exercises_for,
    items,
    load_chapter,
    load_exercises,
    number,
    questions,
    register,
    text,
    with_choices,
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


def test_every_chapter_from_00_to_08_has_exercises():
    assert chapters() == ["00", "01", "02", "03", "04", "05", "06", "07", "08"]
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
    hint = exercise.hint_for(wrong_answer(exercise))
    assert not wrong.correct and hint in wrong.message
    assert str(wrong).startswith("❌ Not quite. ") and hint in wrong._repr_markdown_()


@pytest.mark.parametrize("slot", ALL, ids=["/".join(s) for s in ALL])
def test_every_exercise_has_hints_for_likely_mistakes_that_point_to_a_section(slot):
    exercise = EXERCISES[slot]
    assert exercise.mistakes, "a hint that addresses a likely wrong answer"
    for mistake in exercise.mistakes:
        assert "section" in mistake.hint and mistake.hint != exercise.hint
        assert not mistake.matches(exercise.reference_answer)


@pytest.mark.parametrize("slot", ALL, ids=["/".join(s) for s in ALL])
def test_the_blank_shows_the_question_and_what_to_do_never_the_answer(slot):
    exercise = EXERCISES[slot]
    for blank in (check(*slot), check(*slot, ...)):
        assert isinstance(blank, Unanswered) and not blank
        shown = str(blank) + blank._repr_markdown_()
        assert exercise.question in shown and "not answered yet" in shown and "Replace" in shown
        assert exercise.explanation not in shown and exercise.hint not in shown
        assert all(m.hint not in shown for m in exercise.mistakes)


def test_every_chapter_has_a_predict_then_verify_exercise():
    for chapter in chapters():
        predicted = [e for e in exercises_for(chapter) if e.verify]
        assert predicted, chapter
        for exercise in predicted:
            assert exercise.question.startswith(("**Predict, then", "**Compute"))
            assert exercise.verify in str(check(chapter, exercise.key))
            assert exercise.verify in str(check(chapter, exercise.key, exercise.reference_answer))
            assert exercise.verify in ask(chapter, exercise.key)._repr_markdown_()


def test_a_likely_mistake_gets_its_own_hint():
    feedback = check("01", "chain-gradient", 1.1 * 30)
    assert not feedback and "33 = 1.1 × 30" in feedback.message
    assert "section 'A scalar chain'" in feedback.message
    assert "33 = 1.1" not in check("01", "chain-gradient", 5.0).message  # not that mistake: the general hint
    assert "cancel" in check("03", "rescaling", "a").message  # a wrong letter's own hint
    wrong_kind = check("01", "chain-gradient", "thirty-three")
    assert "should be a number" in wrong_kind.message and "33 = 1.1" not in wrong_kind.message


def test_chapter_02_tiny_gsc_is_the_few_lines_a_learner_writes_and_the_library_agrees():
    from explodegrad import build_mlp, gsc_profile

    net = build_mlp(3, 5, "tanh", init="xavier", in_features=4, out_features=3, seed=0, dtype=torch.float64)
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    f3 = net.forward_from(4, x, to=3)
    jacobian = torch.autograd.functional.jacobian(lambda h: net.forward_from(3, h), f3)
    by_hand = jacobian.norm() / f3.numel() ** 0.5 * f3.norm() / net.forward_from(3, f3).norm()
    assert check("03", "tiny-gsc", by_hand)
    assert float(by_hand.detach()) == pytest.approx(
        gsc_profile(net, x, y, reference=1, method="exact").gsc_at(3), rel=1e-10
    )
    forgot_the_quadratic_mean = jacobian.norm() * f3.norm() / net.forward_from(3, f3).norm()
    assert "sqrt(30) too large" in check("03", "tiny-gsc", forgot_the_quadratic_mean).message


def test_questions_lists_every_question_of_a_chapter():
    listed = questions("01")
    for number_, exercise in enumerate(exercises_for("01"), start=1):
        assert (
            f"{number_}. **{exercise.key}**" in listed
            and f'check("01", "{exercise.key}", your_answer)' in listed
        )
    assert "Correct" not in listed


def test_a_mistake_must_be_a_wrong_answer(scratch_registry):
    with pytest.raises(ValueError, match="mistakes: exercise 08/k has a mistake that accepts the reference"):
        Exercise("08", "k", "q?", number(1.0), "h", "e", mistakes=(Mistake(number(1.0), "no"),))
    with pytest.raises(TypeError, match="mistakes must be Mistake"):
        Exercise("08", "k", "q?", number(1.0), "h", "e", mistakes=("two",))
    with pytest.raises(ValueError, match="hint"):
        Mistake(number(2.0), " ")
    with pytest.raises(TypeError, match="verify"):
        Exercise("08", "k", "q?", number(1.0), "h", "e", verify=3)


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
    letter = check("03", "rescaling", "z")
    assert not letter and "one letter" in letter.message


def test_choices_accept_common_spellings():
    for spelling in ("b", "B", "(b)", "b)", " b. "):
        assert check("03", "rescaling", spelling), spelling
    assert not check("03", "rescaling", "a")


def test_text_answers_ignore_case_spacing_and_accept_synonyms():
    assert check("04", "worst-norm", "Batch   Norm.")
    assert check("04", "worst-norm", "batchnorm")
    assert not check("04", "worst-norm", "layer norm")


def test_set_answers_accept_any_spelling_of_the_same_set():
    assert check("02", "init-stable", {"he"})
    assert check("02", "init-stable", ["Kaiming"])
    assert check("02", "init-stable", "he")
    assert not check("02", "init-stable", "he, xavier")
    assert not check("02", "init-stable", {"he", "gaussian"})
    assert not check("02", "init-stable", 3)


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
    with pytest.raises(TypeError, match="chapter"):
        exercises_for(1.0)
    with pytest.raises(TypeError, match="key"):
        check("01", 3, 1)


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
    with pytest.raises(TypeError, match="Exercise"):
        register("answer")


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
    "kwargs, error",
    [
        (dict(key=""), ValueError),
        (dict(question="  "), ValueError),
        (dict(chapter="one"), ValueError),
        (dict(hint=None), TypeError),
        (dict(checker=42), TypeError),
        (dict(chapter=1.5), TypeError),
    ],
)
def test_exercise_rejects_bad_fields(kwargs, error):
    fields = (
        dict(chapter="08", key="k", question="q?", checker=number(1.0), hint="h", explanation="e") | kwargs
    )
    with pytest.raises(error, match=next(iter(kwargs))):
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
    for wrong_type in (lambda: number("1.0"), lambda: number(1.0, rel_tol=None), lambda: choice(2)):
        with pytest.raises(TypeError):
            wrong_type()
    with pytest.raises(TypeError, match="accepted"):
        text("linear", 1)
    with pytest.raises(TypeError, match="synonyms"):
        items("he", synonyms={"kaiming": 1})


def test_chapter_01_and_02_answers_agree_with_the_library():
    """The reference answers are what the chapters' own experiments measure."""
    from explodegrad.studies.chain_rule import deep_linear_gradients, init_scales, scalar_chain
    from explodegrad.studies.gradient_descent import gradient_descent_path
    from explodegrad.studies.recurrent import rnn_gradient_vs_time

    assert check("01", "chain-gradient", scalar_chain(1.1, 30).input_gradient)
    x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    y = x
    for weight in [1.1] * 20 + [0.9] * 20:
        y = weight * y
    y.backward()
    assert check("01", "mixed-chain", x.grad)
    assert not check("01", "mixed-chain", 1.0)  # ten percent up and down do not cancel
    gradients = scalar_chain(0.5, 30).gradients
    assert check("01", "vanishing-depth", int(np.argmax(gradients < 1e-6)) + 1)
    assert check("01", "gd-threshold", gradient_descent_path(0.05, 3, curvature=(1, 20)).threshold)
    linear = deep_linear_gradients(depth=30, width=100, sigma=0.8, seed=0)
    assert check("01", "linear-predict", linear.gradient_norms[-1] / linear.gradient_norms[0])
    assert not check("01", "linear-predict", 0.8 * 30)  # multiplying instead of raising to a power
    rnn = rnn_gradient_vs_time(0.9, steps=20, hidden=8, activation="linear")
    assert check("02", "linear-rnn", rnn.gradient_norms[20])
    scales = init_scales(depth=20, width=100, activation="relu")
    spread = scales.gradient_rms.max(axis=1) / scales.gradient_rms.min(axis=1)
    assert check("02", "init-stable", {name for name, s in zip(scales.inits, spread) if s < 10})
    assert check("01", "overflow-depth", math.floor(math.log10(torch.finfo(torch.float32).max)) + 1)


# ----------------------------------------------------------------------------- the chapters' files

CHAPTER_FILES = sorted(EXERCISE_DATA.glob("ch*.toml"))


def test_there_is_one_file_per_chapter_and_each_registers_its_exercises():
    assert [path.name for path in CHAPTER_FILES] == [f"ch{chapter}.toml" for chapter in chapters()]
    loaded = [(e.chapter, e.key) for path in CHAPTER_FILES for e in load_chapter(path)]
    assert loaded == list(EXERCISES)  # every exercise comes from its chapter's file, once, in file order
    assert len(set(loaded)) == len(loaded) == 44


@pytest.mark.parametrize("path", CHAPTER_FILES, ids=[p.name for p in CHAPTER_FILES])
def test_a_chapter_file_holds_only_its_own_chapter(path):
    chapter = re.fullmatch(r"ch(\d\d)\.toml", path.name).group(1)
    found = load_chapter(path)
    assert found and {e.chapter for e in found} == {chapter}
    assert [e.key for e in found] == [e.key for e in exercises_for(chapter)]


def test_computed_answers_are_the_formulas_the_explanations_state():
    assert COMPUTED_ANSWERS["scalar chain 1.1 over 30 layers"]() == 1.1**30
    assert COMPUTED_ANSWERS["batch-norm relu mean-field rate"]() == math.sqrt(math.pi / (math.pi - 1))
    assert COMPUTED_ANSWERS["pythagorean block gsc k 3 branch 5"]() == pytest.approx(
        math.sqrt(3.4), rel=1e-15
    )
    assert EXERCISES[("04", "bn-gsc-depth")].reference_answer == pytest.approx(1.2111739**49, rel=1e-5)
    used = set()
    for path in CHAPTER_FILES:
        used |= set(re.findall(r'computed = "([^"]+)"', path.read_text(encoding="utf-8")))
    assert used == set(COMPUTED_ANSWERS)  # no dead entries


def test_choices_are_rendered_as_lettered_lines_under_the_question():
    assert with_choices("Which?", ["one", "two"]) == "Which?\n\n(a) one  \n(b) two\n\n*(a letter)*"
    assert EXERCISES[("05", "pseudo-linear")].checker.options == "abc"


def write(folder, name, body):
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


GOOD = """
[[exercise]]
key = "sum"
question = "6 x 7? *(a number)*"
answer = { number = 42 }
hint = "Look again at section 'Sums'."
explanation = "42."

[[exercise]]
key = "pick"
question = "Which is even?"
choices = ["three", "four"]
answer = { choice = "b" }
hint = "Look again at section 'Parity'."
explanation = "Four."
"""


MISTAKE = """
[[exercise.mistake]]
answer = { choice = "a" }
hint = "Three is odd."
"""


def test_a_new_chapter_file_is_one_table_per_exercise(tmp_path, scratch_registry):
    write(tmp_path, "ch09.toml", GOOD + MISTAKE)
    added = load_exercises(tmp_path)
    assert [(e.chapter, e.key) for e in added] == [("09", "sum"), ("09", "pick")]
    assert check(9, "sum", 42) and not check(9, "sum", 41)
    assert check("09", "pick", "b") and ask("09", "pick").text.endswith(
        "(a) three  \n(b) four\n\n*(a letter)*"
    )
    assert check("09", "pick", "a").message == "Hint: Three is odd."
    assert "one letter: a, b" in check("09", "pick", "c").message  # not a letter of this exercise


@pytest.mark.parametrize(
    "name, body, error, match",
    [
        ("exercises.toml", GOOD, ValueError, "chNN.toml"),
        ("ch09.toml", "[[exercise]\nkey = 1", ValueError, "ch09.toml is not valid TOML"),
        ("ch09.toml", "title = 'x'", ValueError, "only \\[\\[exercise\\]\\]"),
        ("ch09.toml", GOOD + GOOD, ValueError, "key='sum' appears twice"),
        ("ch09.toml", GOOD.replace("hint", "tip", 1), ValueError, "unknown fields \\['tip'\\]"),
        ("ch09.toml", GOOD.replace("number = 42", "number = '42'"), TypeError, "ch09.toml: value must be"),
        ("ch09.toml", GOOD.replace("number = 42", "number = 42, choice = 'a'"), ValueError, "exactly one"),
        ("ch09.toml", GOOD.replace("number = 42", "number = 42, synonyms = {}"), ValueError, "takes only"),
        (
            "ch09.toml",
            GOOD.replace("number = 42", "computed = 'six times seven'"),
            ValueError,
            "known computed",
        ),
        ("ch09.toml", GOOD.replace('choices = ["three", "four"]\n', ""), ValueError, "choices"),
        ("ch09.toml", GOOD + MISTAKE.replace('"a"', '"b"'), ValueError, "accepts the reference answer"),
        (
            "ch09.toml",
            GOOD + MISTAKE.replace("hint", "tip"),
            ValueError,
            "a mistake has the fields answer, hint",
        ),
        ("ch09.toml", GOOD + MISTAKE.replace('"a"', '"z"'), ValueError, "correct='z'"),
        ("ch09.toml", GOOD.replace('"6 x 7? *(a number)*"', "6"), TypeError, "question must be a string"),
        (
            "ch09.toml",
            GOOD.replace('["three", "four"]', '["three", 4]'),
            TypeError,
            "choices must be strings",
        ),
    ],
)
def test_a_bad_chapter_file_is_named_in_the_error(tmp_path, name, body, error, match):
    with pytest.raises(error, match=match):
        load_chapter(write(tmp_path, name, body))


def test_loading_an_empty_folder_says_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="chNN.toml"):
        load_exercises(tmp_path)
