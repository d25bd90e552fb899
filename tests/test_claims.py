"""The claims registry: verdicts with margins, every claim judgeable, bad input refused."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from explodegrad import claims, cli
from explodegrad.claims import evidence, thresholds
from explodegrad.claims.verdict import (
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    Check,
    all_of,
    between,
    boolean,
    compare,
    count,
    exact,
    negate,
)
from explodegrad.core.scales import Scale
from explodegrad.studies.optimizers import OptimizerStudy

TINY = Scale(name="tiny", depth=6, width=8, batch_size=16, train_steps=6, dataset="digits", num_seeds=2)


# ----------------------------------------------------------------------------- verdicts


def test_compare_needs_every_seed_beyond_the_margin():
    assert compare("r", [1.10, 1.12, 1.15], ">", 1.02, 0.005).verdict == HOLDS
    assert compare("r", [0.98, 1.00, 1.01], ">", 1.02, 0.005).verdict == DOES_NOT_HOLD
    # one seed within the margin, or seeds on both sides: inconclusive
    assert compare("r", [1.10, 1.022], ">", 1.02, 0.005).verdict == INCONCLUSIVE
    assert compare("r", [1.10, 0.90], ">", 1.02, 0.005).verdict == INCONCLUSIVE
    assert compare("e", [0.01, 0.02], "<", 0.1, 0.02).verdict == HOLDS
    check = compare("r", [1.1, 1.3, 1.2], ">", 1.02, 0.005)
    assert check.line == "r 1.2 [1.1, 1.3] over 3 seeds (needs > 1.02, margin 0.005)"
    assert check.values == {"r": [1.1, 1.3, 1.2]}


def test_a_value_that_is_not_finite_is_inconclusive_with_the_reason():
    check = compare("GSC", [2.0, math.inf], ">", 1.0, 0.1)
    assert check.verdict == INCONCLUSIVE and "overflowed or diverged" in check.line
    assert between("x", [math.nan], 0, 1, 0.1).verdict == INCONCLUSIVE
    assert exact("e", math.nan, 1e-9).verdict == INCONCLUSIVE


def test_no_value_left_is_inconclusive_with_its_own_reason():
    """Every seed left out (e.g. 07/deeper-breaks-sooner's open pairs) is not an overflow."""
    for check in (compare("gap", [], ">", 0.0, 0.5), between("x", [], 0.0, 1.0, 0.1)):
        assert check.verdict == INCONCLUSIVE
        assert check.line.endswith(": no seed left to judge") and "not finite" not in check.line


def test_between_exact_boolean_count_negate_and_all_of():
    assert between("x", [0.5, 0.6], 0.0, 1.0, 0.1).verdict == HOLDS
    assert between("x", [1.5, -0.5], 0.0, 1.0, 0.1).verdict == DOES_NOT_HOLD
    assert between("x", [0.95], 0.0, 1.0, 0.1).verdict == INCONCLUSIVE
    assert exact("e", 1e-12, 1e-9).verdict == HOLDS and exact("e", 1e-3, 1e-9).verdict == DOES_NOT_HOLD
    assert boolean("b", [True, True]).verdict == HOLDS
    assert boolean("b", [True, False]).verdict == INCONCLUSIVE
    assert boolean("b", False).verdict == DOES_NOT_HOLD
    yes, no, maybe = Check(HOLDS, "y"), Check(DOES_NOT_HOLD, "n"), Check(INCONCLUSIVE, "m")
    assert all_of(yes, yes).verdict == HOLDS
    assert all_of(yes, maybe).verdict == INCONCLUSIVE
    assert all_of(maybe, no).verdict == DOES_NOT_HOLD
    assert negate(yes).verdict == DOES_NOT_HOLD and negate(maybe).verdict == INCONCLUSIVE
    assert count([yes, yes, no], 2, "things").verdict == HOLDS
    assert count([yes, no, no], 2, "things").verdict == DOES_NOT_HOLD
    assert count([yes, maybe, no], 2, "things").verdict == INCONCLUSIVE


def test_verdict_helpers_refuse_bad_input():
    with pytest.raises(ValueError, match="op='>='"):
        compare("x", 1.0, ">=", 0.0, 0.1)
    with pytest.raises(ValueError, match="margin=-1"):
        compare("x", 1.0, ">", 0.0, -1)
    with pytest.raises(ValueError, match="verdict='maybe'"):
        Check("maybe", "")


def test_the_one_definition_of_exploding():
    assert claims.explodes("a", 1.21, 0.99).verdict == HOLDS
    assert claims.explodes("flat and noisy", 1.05, 0.3).verdict == DOES_NOT_HOLD  # slope without a line
    assert claims.explodes("calm", 1.00, 0.99).verdict == DOES_NOT_HOLD
    assert claims.explodes("edge", thresholds.EXPLODING_RATE + 0.001, 0.99).verdict == INCONCLUSIVE
    assert claims.explodes("overflowed", math.nan, math.nan).verdict == INCONCLUSIVE
    assert f"r > {thresholds.EXPLODING_RATE:g}" in claims.exploding_definition()


@pytest.mark.parametrize(
    "seeds, verdict",
    [
        ([(1.21, 0.99)] * 3, HOLDS),
        ([(1.00, 0.99)] * 3, DOES_NOT_HOLD),
        ([(1.21, 0.99), (1.21, 0.99), (1.21, 0.84)], INCONCLUSIVE),  # the seeds disagree
        ([(1.21, 0.99), (1.21, 0.99), (1.21, 0.90)], INCONCLUSIVE),  # one within the margin
    ],
)
def test_explosion_over_seeds_is_decided_only_when_the_seeds_agree(seeds, verdict):
    """The course's policy for every claim over seeds (as :func:`compare`): seeds that disagree,
    or one within a margin, leave the claim open."""
    rates, r_squared = zip(*seeds)
    assert claims.explosion.explodes_in_every_seed("net", rates, r_squared).verdict == verdict


# ----------------------------------------------------------------------------- the registry


def test_every_chapter_states_claims_and_every_claim_names_a_study():
    every = claims.all_claims()
    ids = [c.claim_id for c in every]
    assert len(ids) == len(set(ids)) >= 40
    assert {c.chapter for c in every} == set(claims.CHAPTERS)
    for item in every:
        assert item.study in claims.STUDIES, item.claim_id
        assert item.sentence.endswith(".") and "  " not in item.sentence
    assert [c.claim_id for c in claims.all_claims("06")] == [i for i in ids if i.startswith("06/")]


def test_every_study_module_declares_exactly_the_claims_judged_on_it():
    declared: dict[str, str] = {}
    for name, module in evidence.STUDY_MODULES.items():
        assert name in claims.STUDIES, name
        assert module.__name__.startswith(("explodegrad.studies.", "explodegrad.measures.")), name
    for module in set(evidence.STUDY_MODULES.values()):
        for claim_id in getattr(module, "CLAIMS", ()):
            assert claim_id not in declared, f"{claim_id} declared twice"
            declared[claim_id] = module.__name__
    assert set(evidence.STUDY_MODULES) == set(claims.STUDIES)
    for item in claims.all_claims():
        module = evidence.STUDY_MODULES[item.study]
        if module.__name__.startswith("explodegrad.studies."):
            assert declared.get(item.claim_id) == module.__name__, item.claim_id
        else:  # a measurement judged directly: no study module declares it
            assert item.claim_id not in declared, item.claim_id
    assert set(declared) <= {c.claim_id for c in claims.all_claims()}


def test_unknown_ids_chapters_scales_and_seed_counts_are_refused():
    with pytest.raises(ValueError, match="claim_id='04/nonsense' is not a known claim: allowed are 01/"):
        claims.get_claim("04/nonsense")
    with pytest.raises(TypeError, match="claim_id must be a string"):
        claims.get_claim(3)
    with pytest.raises(ValueError, match="chapter='09' is not allowed"):
        claims.all_claims("09")
    with pytest.raises(
        ValueError, match="scale='huge' is not supported: scale must be one of 'quick', 'evidence', 'paper'"
    ):
        claims.evaluate("huge")
    with pytest.raises(ValueError, match="seeds=0 is not allowed"):
        claims.evaluate(TINY, seeds=0)
    with pytest.raises(ValueError, match="claim_id='01/x' is not a known claim"):
        claims.evaluate(TINY, claim_ids=["01/x"])
    with pytest.raises(ValueError, match="claim_id='9/x' is not allowed"):
        claims.registry.claim("9/x", "A sentence.", "survey")


def _optimizer_study(rates: dict[str, list[float]]) -> OptimizerStudy:
    rows = [
        {
            "optimizer": name,
            "seed": seed,
            "lr": 0.01,
            "gsc_start": 10.0,
            "gsc_end": 2.0,
            "rate_start": 1.2,
            "rate_end": rate,
            "r_squared_start": 1.0,
            "r_squared_end": 0.99,
            "final_train_error": 0.1,
            "diverged": False,
            "update_ratio": 1.0,
        }
        for name, values in rates.items()
        for seed, rate in enumerate(values)
    ]
    return OptimizerStudy(
        label="test",
        gsc=pd.DataFrame(),
        updates=pd.DataFrame(),
        runs=pd.DataFrame(rows),
        histories={},
        seeds=(0, 1, 2),
    )


def test_a_training_claim_is_judged_on_every_seed():
    claim_id = "04/adaptive-optimizers-still-explode"
    holds = claims.judge(
        claim_id, _optimizer_study({"adam": [1.15, 1.16, 1.17], "rmsprop": [1.1, 1.12, 1.2]})
    )
    assert holds.verdict == HOLDS and "adam at the end seed 2: r = 1.170, R^2 = 0.99" in holds.line
    fails = claims.judge(claim_id, _optimizer_study({"adam": [1.0, 1.0, 1.01], "rmsprop": [1.0, 1.0, 1.0]}))
    assert fails.verdict == DOES_NOT_HOLD
    # one seed says yes, another no: the seeds disagree
    split = claims.judge(claim_id, _optimizer_study({"adam": [1.2, 1.0, 1.2], "rmsprop": [1.2, 1.2, 1.2]}))
    assert split.verdict == INCONCLUSIVE
    # a diverged run (NaN) leaves the claim inconclusive, with the reason
    diverged = claims.judge(claim_id, _optimizer_study({"adam": [1.2, math.nan, 1.2], "rmsprop": [1.2] * 3}))
    assert diverged.verdict == INCONCLUSIVE and "not finite" in diverged.line


def test_a_study_without_what_the_claim_needs_is_inconclusive_not_a_crash():
    judgement = claims.judge("04/adaptive-optimizers-still-explode", _optimizer_study({"sgd": [1.2]}))
    assert judgement.verdict == INCONCLUSIVE
    assert judgement.line.startswith("could not be judged: ValueError: optimizer='adam' is not allowed")


def test_show_prints_the_verdict_the_sentence_and_the_numbers(capsys):
    chains = claims.study("scalar-chains", claims.setting(TINY))
    assert claims.show(chains, "01/scalar-chain-exact") is None  # a notebook cell shows the print only
    judgement = claims.judge("01/scalar-chain-exact", chains)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "✅ holds: 01/scalar-chain-exact"
    assert lines[1] == f"  {claims.get_claim('01/scalar-chain-exact').sentence}"
    assert lines[1].endswith("is w^L to float64 rounding (relative error below 1e-12).")
    assert lines[2].startswith(
        "  measured: largest relative error of dy/dx against w^L (L = 30; w = 0.9, 1, 1.1)"
    )
    assert judgement.holds and str(judgement) == "\n".join(lines)


@pytest.mark.slow
def test_every_claim_gets_a_verdict_at_a_tiny_scale():
    judgements = claims.evaluate(TINY)
    assert [j.claim_id for j in judgements] == [
        c.claim_id for c in claims.all_claims() if c.judged_at("tiny")
    ]
    assert not any(j.claim_id.startswith("04/depth-limit") for j in judgements)  # evidence scale only
    assert all(j.verdict in claims.VERDICTS and j.line for j in judgements)
    assert "01/scalar-chain-exact" in claims.table(judgements)


# ----------------------------------------------------------------------------- the command line


def test_cli_prints_the_chosen_claims_and_writes_json(tmp_path, capsys):
    out = tmp_path / "verdicts.json"
    status = cli.main(
        [
            "claims",
            "--claim",
            "01/scalar-chain-exact",
            "--claim",
            "05/pseudo-linear-toys",
            "--json",
            str(out),
            "--quiet",
        ]
    )
    assert status == 0
    text = capsys.readouterr().out
    assert (
        "holds          01/scalar-chain-exact" in text and "2 holds, 0 does not hold, 0 inconclusive" in text
    )
    saved = json.loads(out.read_text())
    assert [item["id"] for item in saved] == ["01/scalar-chain-exact", "05/pseudo-linear-toys"]
    assert {item["verdict"] for item in saved} == {"holds"}


def test_cli_refuses_an_unknown_claim_with_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["claims", "--claim", "04/nonsense"])
    assert stopped.value.code == 2
    assert "claim_id='04/nonsense' is not a known claim" in capsys.readouterr().err


# ----------------------------------------------------------------------------- any CPU


def _verdicts_under(capability: str, folder) -> dict[str, str]:
    """Judge every claim at the quick scale in a subprocess whose torch kernels are ``capability``'s."""
    out = folder / f"{capability}.json"
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    subprocess.run(
        [sys.executable, "-m", "explodegrad", "claims", "--scale", "quick", "--json", str(out), "--quiet"],
        check=True,
        env=env,
        capture_output=True,
        timeout=1800,
    )
    return {item["id"]: item["verdict"] for item in json.loads(out.read_text())}


@pytest.mark.slow
def test_verdicts_are_the_same_under_another_cpus_rounding(tmp_path):
    """torch's portable kernels ("default") round differently from the AVX2 ones, as another CPU would;
    the quick-scale verdicts must not move (every training claim is judged on 3 seeds, with margins)."""
    with ThreadPoolExecutor(2) as pool:
        default, avx2 = pool.map(
            lambda capability: _verdicts_under(capability, tmp_path), ("default", "avx2")
        )
    assert default == avx2
    assert len(default) == len([c for c in claims.all_claims() if c.judged_at("quick")])


def test_study_results_are_cached_per_setting():
    where = claims.setting(TINY, seeds=1)
    first = claims.study("overshoot", where)
    assert claims.study("overshoot", where) is first
    claims.clear_cache()
    assert claims.study("overshoot", where) is not first
    with pytest.raises(ValueError, match="study='nothing' is not allowed"):
        claims.study("nothing", where)
    assert np.isclose(first[0.09].threshold, 0.1)


# ----------------------------------------------------------------------------- depth limit (evidence scale)


def _limit_study(errors: dict[tuple[str, int], float]):
    """A depth-limit result with chosen numbers: relu/batch explodes (r 1.2), relu/none does not (r 1.0)."""
    import pandas as pd

    from explodegrad.studies.depth_limit import DepthStudy

    rows = []
    for (label, depth), error in errors.items():
        exploding = label.startswith("relu/batch") and not label.endswith("/res")
        for seed in range(3):
            rows.append(
                {
                    "architecture": label,
                    "depth": depth,
                    "seed": seed,
                    "rate_init": 1.2 if exploding else 1.0,
                    "r_squared_init": 0.99,
                    "final_train_error": error + 0.001 * seed,
                }
            )
    return DepthStudy(table=pd.DataFrame(rows), search=None, steps=200, optimizer="sgd", seeds=(0, 1, 2))


def test_depth_limit_claims_on_chosen_numbers():
    from explodegrad.claims import DOES_NOT_HOLD, HOLDS, get_claim

    good = {
        ("relu/none", 10): 0.0,
        ("relu/batch", 10): 0.0,
        ("relu/batch/res", 10): 0.0,
        ("relu/none", 50): 0.02,
        ("relu/batch", 50): 0.6,
        ("relu/batch/res", 50): 0.05,
    }
    study = _limit_study(good)
    for claim_id in (
        "04/depth-limit-shallow-trains",
        "04/depth-limit-exploding-degrade",
        "04/depth-limit-calm-train-deep",
        "04/depth-limit-exploding-worse",
        "04/depth-limit-resnets-rescue",
    ):
        judgement = get_claim(claim_id).judge(study)
        assert judgement.verdict == HOLDS, judgement.text()
    assert (
        "exploding at init: relu/batch; not exploding: relu/none"
        in get_claim("04/depth-limit-exploding-worse").judge(study).line
    )
    bad = _limit_study(
        {**good, ("relu/none", 50): 0.07, ("relu/batch", 50): 0.01, ("relu/batch/res", 50): 0.3}
    )
    for claim_id in (
        "04/depth-limit-exploding-degrade",
        "04/depth-limit-exploding-worse",
        "04/depth-limit-resnets-rescue",
    ):
        assert get_claim(claim_id).judge(bad).verdict == DOES_NOT_HOLD, claim_id


def test_the_evidence_scale_judges_its_claims_on_the_stored_files():
    from explodegrad.core.scales import EVIDENCE

    judgements = claims.evaluate(EVIDENCE)
    assert [j.claim_id for j in judgements] == [
        c.claim_id for c in claims.all_claims() if c.judged_at("evidence")
    ]
    assert {j.claim_id for j in judgements} >= {
        "04/depth-limit-shallow-trains",
        "04/depth-limit-resnets-rescue",
    }
    assert all(j.verdict in claims.VERDICTS and j.line for j in judgements)


def test_evidence_claims_are_judged_at_the_evidence_scale_only():
    from explodegrad import claims

    claim = claims.get_claim("04/depth-limit-exploding-worse")
    assert claim.judged_at("evidence") and not claim.judged_at("quick")
    assert claims.get_claim("04/batch-norm-explodes").judged_at("quick")
    assert not claims.get_claim("04/batch-norm-explodes").judged_at("evidence")
    with pytest.raises(ValueError, match="not judged at the tiny scale"):
        claims.evaluate(TINY, claim_ids=["04/depth-limit-exploding-worse"])
