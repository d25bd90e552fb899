"""Seeds: which seeds a study runs, and median [min, max] tables over them."""

import math

import numpy as np
import pandas as pd
import pytest

from explodegrad.core.scales import PAPER, QUICK
from explodegrad.core.seeds import median_range, resolve_seeds, seed_table, seed_values


def test_the_scales_run_several_seeds():
    assert QUICK.num_seeds == 3 and PAPER.num_seeds == 5


def test_resolve_seeds_from_a_count_a_sequence_or_the_default():
    assert resolve_seeds(None, 3) == (0, 1, 2)
    assert resolve_seeds(2, 5) == (0, 1)
    assert resolve_seeds((4, 7), 5) == (4, 7)
    assert resolve_seeds(np.int64(1), 5) == (0,)


@pytest.mark.parametrize(
    ("seeds", "error", "message"),
    [
        (0, ValueError, "seeds=0 is not allowed"),
        (-2, ValueError, "seeds=-2 is not allowed"),
        ((), ValueError, r"seeds=\(\) is not allowed"),
        ((1, 1), ValueError, "the seeds repeat"),
        ((1, -1), ValueError, "seeds=-1 is not allowed"),
        ("3", TypeError, "seeds must be a count"),
        (2.0, TypeError, "seeds must be a count"),
        (True, TypeError, "seeds must be a count"),
    ],
)
def test_bad_seeds_are_refused(seeds, error, message):
    with pytest.raises(error, match=message):
        resolve_seeds(seeds, 3)


def test_median_range_quotes_median_min_max_and_what_is_missing():
    assert median_range([1.0, 3.0, 2.0]) == "2 [1, 3]"
    assert median_range([0.5]) == "0.5"
    assert median_range([1.0, math.nan, 3.0], ".1f") == "2.0 [1.0, 3.0] (1 n/a)"
    assert median_range([math.nan]) == "n/a"


def test_seed_table_has_one_row_per_key_in_first_seen_order():
    frame = pd.DataFrame({"name": ["b", "b", "a", "a"], "seed": [0, 1, 0, 1], "x": [1.0, 3.0, 5.0, 7.0]})
    table = seed_table(frame, ["name"], {"x": "value"}, {"x": ".1f"})
    assert table.to_dict("records") == [
        {"name": "b", "value": "2.0 [1.0, 3.0]"},
        {"name": "a", "value": "6.0 [5.0, 7.0]"},
    ]


def test_seed_values_selects_by_every_key_and_turns_missing_into_nan():
    frame = pd.DataFrame(
        {"name": ["a", "a", "b", "a"], "depth": [2, 2, 2, 4], "steps": [3, pd.NA, 5, 7]}
    ).astype({"steps": "Int64"})
    np.testing.assert_array_equal(seed_values(frame, "steps", name="a", depth=2), [3.0, np.nan])
    np.testing.assert_array_equal(seed_values(frame, "steps", name="a"), [3.0, np.nan, 7.0])
    with pytest.raises(
        ValueError, match=r"name='c', depth=2 is not allowed: the study trained name in \['a', 'b'\]"
    ):
        seed_values(frame, "steps", name="c", depth=2)
    with pytest.raises(ValueError, match="column='loss' is not allowed"):
        seed_values(frame, "loss", name="a")
