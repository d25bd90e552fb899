"""The one rank correlation of the claims (Spearman, average ranks for ties): known values and bad input."""

import math

import numpy as np
import pytest

from explodegrad.claims import verdict
from explodegrad.claims.chapters import ch06, ch07
from explodegrad.claims.verdict import rank_correlation


def test_a_perfectly_increasing_relation_is_one_whatever_its_shape():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert rank_correlation(x, x) == pytest.approx(1.0, abs=1e-15)
    assert rank_correlation(x, np.exp(x)) == pytest.approx(1.0, abs=1e-15)  # only the order counts
    assert rank_correlation(x, [10.0, 20.0, 21.0, 300.0, 301.0]) == pytest.approx(1.0, abs=1e-15)


def test_a_reversed_order_is_minus_one():
    assert rank_correlation([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0, abs=1e-15)
    assert rank_correlation(np.arange(6.0), -np.log1p(np.arange(6.0))) == pytest.approx(-1.0, abs=1e-15)


def test_one_swapped_pair_gives_the_textbook_value():
    # no ties: 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 2 / (5 * 24) = 0.9
    assert rank_correlation([1, 2, 3, 4, 5], [2, 1, 3, 4, 5]) == pytest.approx(0.9, abs=1e-15)
    # two swapped pairs: 1 - 6 * 4 / 120 = 0.8
    assert rank_correlation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8, abs=1e-15)


def test_tied_values_share_the_average_of_their_ranks():
    # x ranks [1, 2.5, 2.5, 4], y ranks [1, 3, 2, 4]: deviations [-1.5, 0, 0, 1.5] and
    # [-1.5, 0.5, -0.5, 1.5]; r = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    assert rank_correlation([1, 2, 2, 4], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9), abs=1e-15)
    # ordinal ranks (ties broken by position) would give 1 here, not sqrt(0.9)
    assert rank_correlation([1, 2, 2, 4], [1, 2, 3, 4]) == pytest.approx(math.sqrt(0.9), abs=1e-15)
    # ties on both sides: x ranks [1.5, 1.5, 3, 4], y ranks [1, 2.5, 2.5, 4]; r = 3.75 / sqrt(4.5 * 4.5)
    assert rank_correlation([0, 0, 1, 2], [5, 7, 7, 9]) == pytest.approx(3.75 / 4.5, abs=1e-15)
    np.testing.assert_array_equal(verdict._average_ranks(np.array([3.0, 1.0, 3.0, 3.0])), [3, 1, 3, 3])


def test_infinities_rank_at_the_ends_and_a_constant_side_has_no_correlation():
    assert rank_correlation([1.0, math.inf, 3.0], [1.0, 3.0, 2.0]) == pytest.approx(1.0, abs=1e-15)
    assert rank_correlation([-math.inf, 0.0, 1.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0, abs=1e-15)
    assert math.isnan(rank_correlation([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))
    assert math.isnan(rank_correlation([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]))


@pytest.mark.parametrize(
    "x, y, error, message",
    [
        ([1, 2, 3], [1, 2], ValueError, "lengths 3 and 2"),
        ([], [], ValueError, "at least 2 points"),
        ([1.0], [2.0], ValueError, "at least 2 points"),
        (
            [1.0, math.nan, 3.0],
            [1, 2, 3],
            ValueError,
            r"x=\[1.0, nan, 3.0\] is not allowed: a NaN has no rank",
        ),
        ([1, 2, 3], [1, None, 3], ValueError, "y=.* a NaN has no rank"),  # JSON's null is a NaN
        ([[1, 2], [3, 4]], [[1, 2], [3, 4]], ValueError, "two flat sequences"),
        (["a", "b"], [1, 2], TypeError, "x="),
        ([1, 2], [True, False], TypeError, "y="),
    ],
)
def test_bad_input_is_refused_naming_it(x, y, error, message):
    with pytest.raises(error, match=message):
        rank_correlation(x, y)


def test_both_chapters_judge_with_the_one_rank_correlation():
    assert ch06.rank_correlation is verdict.rank_correlation
    assert ch07.rank_correlation is verdict.rank_correlation
    assert not hasattr(ch07, "_spearman")
