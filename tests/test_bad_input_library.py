"""Every bad argument of the library's core, measures and chapter-01 studies refused in plain words.

Each case is a call, the exception type it must raise and a piece of the message that names the
argument (issue 15). Sizes that would hang or exhaust memory (a depth of a million, a width of a
million) are refused before anything is allocated, so the whole suite runs in seconds. The
tests after the table check that good input still works and that overflow during a measure is
a result, never a crash, while NaN in the data is never reported as overflow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch

import explodegrad as eg
from explodegrad.core import seeds
from explodegrad.core.config import NetConfig, residual_depth
from explodegrad.core.device import default_dtype, resolve_device
from explodegrad.core.init import orthogonal_matrix, weight_std
from explodegrad.core.jacobian import frobenius_sq_from_probes, jacobian_qm_norm, make_probes, qm_norm
from explodegrad.core.nets import DeepMLP
from explodegrad.measures.dilution import pythagorean_block_gsc
from explodegrad.measures.domain import linear_fit_error, preactivation_std, sign_diversity
from explodegrad.measures.gsc import (
    default_num_probes,
    growth_factor,
    has_batch_coupling,
    log_linear_fit,
    relative_perturbation_gain,
)
from explodegrad.measures.taylor import linearized_top_logits
from explodegrad.studies import chain_rule

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())

#: A tiny plain network (3 inputs, 3 classes) and a tiny residual one, shared by every case.
NET = eg.build_mlp(3, 4, in_features=3, out_features=3)
RES = eg.build_mlp(4, 4, residual=True, in_features=3, out_features=3)
X = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([0, 1, 2, 0, 1, 2])
X_NAN = X.clone()
X_NAN[2, 1] = float("nan")
X_INF = X.clone()
X_INF[4, 0] = float("inf")
Y_99 = torch.tensor([0, 1, 99, 0, 1, 2])
FRAME = pd.DataFrame(
    {"name": ["a", "a", "b"], "seed": [0, 1, 0], "loss": [1.0, 2.0, 3.0], "best_lr": [0.1] * 3}
)


def _square(v: torch.Tensor) -> torch.Tensor:
    return v * v


@dataclass(frozen=True)
class Case:
    """One bad call: what it is, the error it must raise, and a part of the message."""

    name: str
    call: Callable[[], object]
    error: type[Exception]
    names: str  # the message must contain this (the argument, usually ``argument=``)


def _cases() -> list[Case]:
    c = Case
    build = eg.build_mlp
    cases = [
        # ---------------------------------------------------------------- build_mlp / NetConfig
        c("build depth '5.0'", lambda: build(depth="5.0"), TypeError, "depth="),
        c("build depth True", lambda: build(depth=True), TypeError, "depth="),
        c("build depth 2.0", lambda: build(depth=2.0), TypeError, "depth="),
        c("build depth 0", lambda: build(depth=0), ValueError, "depth=0"),
        c("build depth 10**6 (hang)", lambda: build(depth=10**6, width=64), ValueError, "depth=1000000"),
        c("build width 0", lambda: build(width=0), ValueError, "width=0"),
        c("build width '100'", lambda: build(width="100"), TypeError, "width="),
        c("build width 10**6 (memory)", lambda: build(width=10**6), ValueError, "width=1000000"),
        c("build in_features 10**7 (memory)", lambda: build(in_features=10**7), ValueError, "in_features"),
        c("build activation relu6", lambda: build(activation="relu6"), ValueError, "activation="),
        c("build activation 1", lambda: build(activation=1), TypeError, "activation="),
        c("build norm group", lambda: build(norm="group"), ValueError, "norm="),
        c("build init uniform", lambda: build(init="uniform"), ValueError, "init="),
        c("build residual 'no'", lambda: build(4, residual="no"), TypeError, "residual="),
        c("build residual 1", lambda: build(4, residual=1), TypeError, "residual="),
        c("build residual_scale -1", lambda: build(residual_scale=-1), ValueError, "residual_scale="),
        c("build residual_scale nan", lambda: build(residual_scale=math.nan), ValueError, "residual_scale="),
        c("build block_depth 0", lambda: build(block_depth=0), ValueError, "block_depth="),
        c("build residual depth 5", lambda: build(5, residual=True), ValueError, "depth=5"),
        c("build in_features 0", lambda: build(in_features=0), ValueError, "in_features="),
        c("build out_features 1.5", lambda: build(out_features=1.5), TypeError, "out_features="),
        c("build init_scale 0", lambda: build(init_scale=0), ValueError, "init_scale="),
        c("build init_scale inf", lambda: build(init_scale=math.inf), ValueError, "init_scale="),
        c("build init_scale 1e300 (inf weights)", lambda: build(init_scale=1e300), ValueError, "init_scale="),
        c(
            "build init_scale 1e10 float16 (inf weights)",
            lambda: build(3, 4, init_scale=1e10, dtype=torch.float16),
            ValueError,
            "init_scale=",
        ),
        c("build init_scale '1'", lambda: build(init_scale="1"), TypeError, "init_scale="),
        c("build seed -1", lambda: build(seed=-1), ValueError, "seed="),
        c("build seed 2**64", lambda: build(seed=2**64), ValueError, "seed="),
        c("build seed 1.0", lambda: build(seed=1.0), TypeError, "seed="),
        c("build device 'gpu'", lambda: build(device="gpu"), ValueError, "device="),
        c("build device 3", lambda: build(device=3), TypeError, "device="),
        c("build device 'tpu:0'", lambda: build(device="tpu:0"), ValueError, "device="),
        c("build dtype int64", lambda: build(dtype=torch.int64), ValueError, "dtype="),
        c("build dtype 'int8'", lambda: build(dtype="int8"), ValueError, "dtype="),
        c("build dtype 32", lambda: build(dtype=32), TypeError, "dtype="),
        c(
            "build looks_linear tanh",
            lambda: build(init="looks_linear", activation="tanh"),
            ValueError,
            "activation=",
        ),
        c("build looks_linear odd width", lambda: build(width=5, init="looks_linear"), ValueError, "width=5"),
        c("NetConfig depth True", lambda: NetConfig(depth=True), TypeError, "depth="),
        c("NetConfig residual 'yes'", lambda: NetConfig(residual="yes"), TypeError, "residual="),
        c("NetConfig seed 2**63", lambda: NetConfig(seed=2**63), ValueError, "seed="),
        c("NetConfig depth 10**6", lambda: NetConfig(depth=10**6), ValueError, "depth="),
        c("NetConfig.with_ misspelt field", lambda: NetConfig().with_(widht=3), TypeError, "widht="),
        c("NetConfig.with_ bad value", lambda: NetConfig().with_(width=-3), ValueError, "width="),
        c("build_from_config str", lambda: eg.build_from_config("config"), TypeError, "config"),
        c(
            "build_from_config huge",
            lambda: eg.build_from_config(NetConfig(width=10**6)),
            ValueError,
            "width=",
        ),
        c(
            "build_from_config dtype",
            lambda: eg.build_from_config(NetConfig(), dtype="int"),
            ValueError,
            "dtype=",
        ),
        c("DeepMLP of a dict", lambda: DeepMLP({"depth": 3}), TypeError, "config"),
        c("residual_depth 3", lambda: residual_depth(3), ValueError, "depth="),
        c("residual_depth block '2'", lambda: residual_depth(10, block_depth="2"), TypeError, "block_depth="),
        c("net.layer(0)", lambda: NET.layer(0), ValueError, "k="),
        c("net.forward_from(1)", lambda: NET.forward_from(1, X), ValueError, "k="),
        # ---------------------------------------------------------------- initializers
        c("initialize str", lambda: eg.initialize("net"), TypeError, "net"),
        c("initialize init uniform", lambda: eg.initialize(build(3, 4), "uniform"), ValueError, "init="),
        c("initialize scale -1", lambda: eg.initialize(build(3, 4), scale=-1), ValueError, "scale="),
        c("initialize seed -1", lambda: eg.initialize(build(3, 4), seed=-1), ValueError, "seed="),
        c("initialize seed 2**64", lambda: eg.initialize(build(3, 4), seed=2**64), ValueError, "seed="),
        c("weight_std init", lambda: weight_std("uniform", 3, 3, 1.0), ValueError, "init="),
        c("weight_std fan_in 0", lambda: weight_std("he", 0, 3, 1.0), ValueError, "fan_in="),
        c("orthogonal generator 0", lambda: orthogonal_matrix(3, 3, 0), TypeError, "generator"),
        c("orthogonal rows 0", lambda: orthogonal_matrix(0, 3, torch.Generator()), ValueError, "rows="),
        # ---------------------------------------------------------------- devices
        c("pick_device gpu", lambda: eg.pick_device("gpu"), ValueError, "device="),
        c("pick_device 3", lambda: eg.pick_device(3), TypeError, "device="),
        c("resolve_device gpu", lambda: resolve_device("gpu"), ValueError, "device="),
        c("resolve_device list", lambda: resolve_device(["cpu"]), TypeError, "device="),
        c("default_dtype tpu", lambda: default_dtype("tpu"), ValueError, "device="),
        # ---------------------------------------------------------------- trace
        c("trace net str", lambda: eg.trace("net", X), TypeError, "net"),
        c("trace inputs str", lambda: eg.trace(NET, "abc"), TypeError, "inputs"),
        c("trace inputs list", lambda: eg.trace(NET, [[1.0, 2.0, 3.0]]), TypeError, "inputs"),
        c("trace inputs int tensor", lambda: eg.trace(NET, X.long()), TypeError, "inputs"),
        c("trace inputs int numpy", lambda: eg.trace(NET, np.ones((2, 3), dtype=int)), TypeError, "inputs"),
        c("trace inputs 1-d", lambda: eg.trace(NET, X[0]), ValueError, "inputs"),
        c("trace inputs empty", lambda: eg.trace(NET, X[:0]), ValueError, "inputs"),
        c("trace inputs 5 features", lambda: eg.trace(NET, torch.ones(2, 5)), ValueError, "inputs"),
        c("trace inputs NaN", lambda: eg.trace(NET, X_NAN), ValueError, "inputs: row 2"),
        c("trace inputs inf", lambda: eg.trace(NET, X_INF), ValueError, "inputs: row 4"),
        c("trace targets 99", lambda: eg.trace(NET, X, Y_99), ValueError, "targets: row 2"),
        c("trace targets -1", lambda: eg.trace(NET, X, -Y - 1), ValueError, "targets: row 0"),
        c("trace targets float", lambda: eg.trace(NET, X, Y.float()), TypeError, "targets"),
        c("trace targets bool", lambda: eg.trace(NET, X, Y > 0), TypeError, "targets"),
        c("trace targets str", lambda: eg.trace(NET, X, "abc"), TypeError, "targets"),
        c("trace targets short", lambda: eg.trace(NET, X, Y[:4]), ValueError, "targets"),
        c("trace keep_graph 'yes'", lambda: eg.trace(NET, X, keep_graph="yes"), TypeError, "keep_graph="),
        c("Trace.f(99)", lambda: eg.trace(NET, X).f(99), ValueError, "k="),
        c("layer_rms str", lambda: eg.layer_rms("trace"), TypeError, "forward_trace"),
        # ---------------------------------------------------------------- GSC
        c("gsc net str", lambda: eg.gsc_profile("net", X, Y), TypeError, "net"),
        c("gsc inputs str", lambda: eg.gsc_profile(NET, "abc", Y), TypeError, "inputs"),
        c("gsc inputs int", lambda: eg.gsc_profile(NET, X.int(), Y), TypeError, "inputs"),
        c("gsc inputs NaN", lambda: eg.gsc_profile(NET, X_NAN, Y), ValueError, "inputs: row 2"),
        c("gsc targets float", lambda: eg.gsc_profile(NET, X, Y.double()), TypeError, "targets"),
        c("gsc targets 99", lambda: eg.gsc_profile(NET, X, Y_99), ValueError, "targets: row 2"),
        c("gsc reference -1", lambda: eg.gsc_profile(NET, X, Y, reference=-1), ValueError, "reference="),
        c("gsc reference 0 no targets", lambda: eg.gsc_profile(NET, X), ValueError, "reference=0"),
        c("gsc method fast", lambda: eg.gsc_profile(NET, X, Y, method="fast"), ValueError, "method="),
        c("gsc num_probes 0", lambda: eg.gsc_profile(NET, X, Y, num_probes=0), ValueError, "num_probes="),
        c("gsc probe uniform", lambda: eg.gsc_profile(NET, X, Y, probe="uniform"), ValueError, "probe="),
        c("gsc seed 2**64", lambda: eg.gsc_profile(NET, X, Y, seed=2**64), ValueError, "seed="),
        c("gsc fit_range 5", lambda: eg.gsc_profile(NET, X, Y, fit_range=5), TypeError, "fit_range="),
        c("gsc fit_range (1,)", lambda: eg.gsc_profile(NET, X, Y, fit_range=(1,)), TypeError, "fit_range="),
        c(
            "gsc fit_range past the input",
            lambda: eg.gsc_profile(NET, X, Y, fit_range=(2, 99)),
            ValueError,
            "fit_range=(2, 99) is not allowed: the network's layers k run up to L + 1 = 4",
        ),
        c(
            "gsc fit_range reversed",
            lambda: eg.gsc_profile(NET, X, Y, fit_range=(5, 1)),
            ValueError,
            "fit_range=(5, 1) is not allowed: the last layer must not lie below the first",
        ),
        c(
            "gsc_matrix inputs numpy int",
            lambda: eg.gsc_matrix(NET, np.ones((2, 3), int)),
            TypeError,
            "inputs",
        ),
        c("gsc_matrix method x", lambda: eg.gsc_matrix(NET, X, method="x"), ValueError, "method="),
        c(
            "gsc exact with probes",
            lambda: eg.gsc_profile(NET, X, Y, method="exact", num_probes=5),
            ValueError,
            "num_probes=5 is not allowed with method='exact'",
        ),
        c(
            "gsc_matrix exact with probes",
            lambda: eg.gsc_matrix(NET, X, method="exact", num_probes=5),
            ValueError,
            "num_probes=5 is not allowed with method='exact'",
        ),
        c("gsc_matrix targets 99", lambda: eg.gsc_matrix(NET, X, Y_99), ValueError, "targets"),
        c(
            "fit layers strings",
            lambda: eg.fit_explosion_rate(["a", "b", "c"], [1, 2, 3]),
            TypeError,
            "layers",
        ),
        c("fit gsc strings", lambda: eg.fit_explosion_rate([1, 2, 3], ["a", "b", "c"]), TypeError, "gsc"),
        c("fit layers 1.5", lambda: eg.fit_explosion_rate([1.5, 2, 3], [1, 2, 3]), ValueError, "layers"),
        c("fit lengths differ", lambda: eg.fit_explosion_rate([1, 2], [1, 2, 3]), ValueError, "layers"),
        c("fit layers None", lambda: eg.fit_explosion_rate(None, [1, 2, 3]), TypeError, "layers"),
        c(
            "fit reference -1",
            lambda: eg.fit_explosion_rate([1, 2, 3], [1, 2, 3], -1),
            ValueError,
            "reference=",
        ),
        c(
            "fit fit_range below reference",
            lambda: eg.fit_explosion_rate([1, 2, 3], [1, 2, 3], fit_range=(0, 3)),
            ValueError,
            "fit_range=",
        ),
        c(
            "fit num_layers 0",
            lambda: eg.fit_explosion_rate([1, 2, 3], [1, 2, 3], num_layers=0),
            ValueError,
            "num_layers=",
        ),
        c("log_linear_fit strings", lambda: log_linear_fit(["a", "b"], [1, 2]), TypeError, "x="),
        c("log_linear_fit one x", lambda: log_linear_fit([1, 1], [1, 2]), ValueError, "x, y"),
        c("growth_factor lengths", lambda: growth_factor([1, 2], [1.0]), ValueError, "steps"),
        c("growth_factor strings", lambda: growth_factor([1, 2], "ab"), TypeError, "values="),
        c("perturbation k = l", lambda: relative_perturbation_gain(NET, X, Y, k=1, l=1), ValueError, "k="),
        c(
            "perturbation epsilon 0",
            lambda: relative_perturbation_gain(NET, X, Y, 2, epsilon=0),
            ValueError,
            "epsilon=",
        ),
        c("perturbation NaN", lambda: relative_perturbation_gain(NET, X_NAN, Y, 2), ValueError, "inputs"),
        c("has_batch_coupling str", lambda: has_batch_coupling("net"), TypeError, "net"),
        c("default_num_probes reference", lambda: default_num_probes(NET, -1), ValueError, "reference="),
        c("default_num_probes probe", lambda: default_num_probes(NET, 0, "uniform"), ValueError, "probe="),
        # ---------------------------------------------------------------- domain
        c("domain net str", lambda: eg.domain_stats("net", X), TypeError, "net"),
        c("domain inputs NaN", lambda: eg.domain_stats(NET, X_NAN), ValueError, "inputs: row 2"),
        c("domain inputs int", lambda: eg.domain_stats(NET, X.long()), TypeError, "inputs"),
        c("domain inputs str", lambda: eg.domain_stats(NET, "abc"), TypeError, "inputs"),
        c("domain stats at(99)", lambda: eg.domain_stats(NET, X).at(99), ValueError, "k="),
        c("sign_diversity str", lambda: sign_diversity("abc"), TypeError, "preacts"),
        c("sign_diversity NaN", lambda: sign_diversity(X_NAN), ValueError, "preacts: row 2"),
        c(
            "preactivation_std relative 'yes'",
            lambda: preactivation_std(X, relative="yes"),
            TypeError,
            "relative=",
        ),
        c("linear_fit_error relu6", lambda: linear_fit_error(X, "relu6"), ValueError, "activation="),
        c("linear_fit_error 3", lambda: linear_fit_error(X, 3), TypeError, "activation"),
        # ---------------------------------------------------------------- dilution
        c("dilution plain net", lambda: eg.dilution_profile(NET, X), ValueError, "net"),
        c("dilution net str", lambda: eg.dilution_profile("net", X), TypeError, "net"),
        c(
            "dilution inputs numpy int",
            lambda: eg.dilution_profile(RES, np.ones((2, 3), int)),
            TypeError,
            "inputs",
        ),
        c("dilution inputs str", lambda: eg.dilution_profile(RES, "abc"), TypeError, "inputs"),
        c("dilution inputs NaN", lambda: eg.dilution_profile(RES, X_NAN), ValueError, "inputs: row 2"),
        c("dilution method x", lambda: eg.dilution_profile(RES, X, method="x"), ValueError, "method="),
        c(
            "dilution num_probes 0",
            lambda: eg.dilution_profile(RES, X, num_probes=0),
            ValueError,
            "num_probes=",
        ),
        c("dilution seed -1", lambda: eg.dilution_profile(RES, X, seed=-1), ValueError, "seed="),
        c("pythagorean strings", lambda: pythagorean_block_gsc("a", 1.0), TypeError, "skip_to_residual"),
        c("pythagorean negative", lambda: pythagorean_block_gsc(-1.0, 1.0), ValueError, "skip_to_residual"),
        # ---------------------------------------------------------------- paths
        c("paths inputs NaN", lambda: eg.path_contributions(RES, X_NAN), ValueError, "inputs: row 2"),
        c("paths inputs int", lambda: eg.path_contributions(RES, X.long()), TypeError, "inputs"),
        c("paths net str", lambda: eg.path_contributions("net", X), TypeError, "net"),
        c("paths skip x", lambda: eg.path_contributions(RES, X, skip="x"), ValueError, "skip="),
        c("paths identity on plain", lambda: eg.path_contributions(NET, X), ValueError, "skip="),
        c(
            "paths init without net",
            lambda: eg.path_contributions(RES, X, skip="init"),
            ValueError,
            "initial_net",
        ),
        c(
            "paths initial_net str",
            lambda: eg.path_contributions(RES, X, skip="init", initial_net="net"),
            TypeError,
            "initial_net",
        ),
        c(
            "paths loss without targets",
            lambda: eg.path_contributions(RES, X, source="loss"),
            ValueError,
            "targets",
        ),
        c("paths source x", lambda: eg.path_contributions(RES, X, source="x"), ValueError, "source="),
        c(
            "paths targets 99",
            lambda: eg.path_contributions(RES, X, Y_99, source="loss"),
            ValueError,
            "targets",
        ),
        c("paths threshold 0", lambda: eg.path_contributions(RES, X, threshold=0), ValueError, "threshold="),
        c("paths threshold 2", lambda: eg.path_contributions(RES, X, threshold=2), ValueError, "threshold="),
        c(
            "paths num_probes 0",
            lambda: eg.path_contributions(RES, X, num_probes=0),
            ValueError,
            "num_probes=",
        ),
        c("paths seed 2**64", lambda: eg.path_contributions(RES, X, seed=2**64), ValueError, "seed="),
        c("effective_depth 'abc'", lambda: eg.effective_depth("abc"), TypeError, "contributions"),
        c("effective_depth [None]", lambda: eg.effective_depth([None, "x"]), TypeError, "contributions"),
        c("effective_depth []", lambda: eg.effective_depth([]), ValueError, "contributions"),
        c("effective_depth negative", lambda: eg.effective_depth([1.0, -1.0]), ValueError, "contributions"),
        c(
            "effective_depth threshold 0",
            lambda: eg.effective_depth([1.0], threshold=0),
            ValueError,
            "threshold=",
        ),
        # ---------------------------------------------------------------- taylor
        c(
            "taylor targets 99",
            lambda: eg.taylor_compression(NET, X, Y_99),
            ValueError,
            "data_targets: row 2",
        ),
        c(
            "taylor targets float",
            lambda: eg.taylor_compression(NET, X, Y.float()),
            TypeError,
            "data_targets",
        ),
        c(
            "taylor targets numpy float",
            lambda: eg.taylor_compression(NET, X, Y.numpy().astype(float)),
            TypeError,
            "data_targets",
        ),
        c("taylor targets None", lambda: eg.taylor_compression(NET, X, None), TypeError, "data_targets"),
        c("taylor targets short", lambda: eg.taylor_compression(NET, X, Y[:3]), ValueError, "data_targets"),
        c(
            "taylor inputs NaN",
            lambda: eg.taylor_compression(NET, X_NAN, Y),
            ValueError,
            "data_inputs: row 2",
        ),
        c("taylor inputs str", lambda: eg.taylor_compression(NET, "abc", Y), TypeError, "data_inputs"),
        c("taylor inputs int", lambda: eg.taylor_compression(NET, X.long(), Y), TypeError, "data_inputs"),
        c("taylor net str", lambda: eg.taylor_compression("net", X, Y), TypeError, "net"),
        c("taylor ks 99", lambda: eg.taylor_compression(NET, X, Y, ks=[99]), ValueError, "ks="),
        c("taylor ks 1.5", lambda: eg.taylor_compression(NET, X, Y, ks=1.5), TypeError, "ks="),
        c("taylor ks []", lambda: eg.taylor_compression(NET, X, Y, ks=[]), ValueError, "ks="),
        c(
            "taylor reference median",
            lambda: eg.taylor_compression(NET, X, Y, reference="median"),
            ValueError,
            "reference=",
        ),
        c("linearized k 5", lambda: linearized_top_logits(NET, X, 5, X[0]), ValueError, "k="),
        c(
            "linearized f_below str",
            lambda: linearized_top_logits(NET, "x", 1, torch.zeros(4)),
            TypeError,
            "f_below",
        ),
        c(
            "linearized reference shape",
            lambda: linearized_top_logits(NET, torch.ones(2, 4), 1, X[0]),
            ValueError,
            "reference",
        ),
        # ---------------------------------------------------------------- jacobian
        c("jacobian function str", lambda: jacobian_qm_norm("f", X), TypeError, "function="),
        c("jacobian x str", lambda: jacobian_qm_norm(_square, "x"), TypeError, "x"),
        c("jacobian method fast", lambda: jacobian_qm_norm(_square, X, method="fast"), ValueError, "method="),
        c(
            "jacobian num_probes 0",
            lambda: jacobian_qm_norm(_square, X, num_probes=0),
            ValueError,
            "num_probes=",
        ),
        c("jacobian seed -1", lambda: jacobian_qm_norm(_square, X, seed=-1), ValueError, "seed="),
        c("probes 10**12 (memory)", lambda: make_probes((3,), 10**12), ValueError, "num_probes="),
        c("probes shape str", lambda: make_probes("3", 2), TypeError, "shape="),
        c("qm_norm str", lambda: qm_norm("x"), TypeError, "matrix"),
        c("probes of a str output", lambda: frobenius_sq_from_probes("y", [X], X[None]), TypeError, "output"),
        c("probes of one tensor input", lambda: frobenius_sq_from_probes(X, X, X[None]), TypeError, "inputs"),
        # ---------------------------------------------------------------- seeds
        c("resolve_seeds '3'", lambda: seeds.resolve_seeds("3", 3), TypeError, "seeds="),
        c("resolve_seeds 0", lambda: seeds.resolve_seeds(0, 3), ValueError, "seeds="),
        c("resolve_seeds 10**9 (hang)", lambda: seeds.resolve_seeds(10**9, 3), ValueError, "seeds="),
        c("resolve_seeds repeated", lambda: seeds.resolve_seeds([1, 1], 3), ValueError, "seeds="),
        c("resolve_seeds empty", lambda: seeds.resolve_seeds([], 3), ValueError, "seeds="),
        c("resolve_seeds 2**64", lambda: seeds.resolve_seeds([2**64], 3), ValueError, "seeds="),
        c("resolve_seeds object", lambda: seeds.resolve_seeds(object(), 3), TypeError, "seeds="),
        c("resolve_seeds default 0", lambda: seeds.resolve_seeds(None, 0), ValueError, "num_seeds="),
        c("seed_everything 2**64", lambda: seeds.seed_everything(2**64), ValueError, "seed="),
        c("seed_everything '1'", lambda: seeds.seed_everything("1"), TypeError, "seed="),
        c("median_range strings", lambda: seeds.median_range(["a", "b"]), TypeError, "values="),
        c("median_range fmt q", lambda: seeds.median_range([1, 2], fmt="q"), ValueError, "fmt="),
        c("median_range fmt 3", lambda: seeds.median_range([1, 2], fmt=3), TypeError, "fmt="),
        c("seed_values column", lambda: seeds.seed_values(FRAME, "x"), ValueError, "column="),
        c("seed_values value", lambda: seeds.seed_values(FRAME, "loss", name="c"), ValueError, "name="),
        c("seed_values key", lambda: seeds.seed_values(FRAME, "loss", size=1), ValueError, "size="),
        c("seed_values frame str", lambda: seeds.seed_values("frame", "loss"), TypeError, "frame"),
        c(
            "seed_table keys",
            lambda: seeds.seed_table(FRAME, ["size"], {"loss": "loss"}),
            ValueError,
            "keys=",
        ),
        c(
            "seed_table columns",
            lambda: seeds.seed_table(FRAME, ["name"], {"x": "x"}),
            ValueError,
            "columns=",
        ),
        c(
            "seed_table formats",
            lambda: seeds.seed_table(FRAME, ["name"], {"loss": "l"}, {"loss": "q"}),
            ValueError,
            "formats=",
        ),
        c("chosen_rates column", lambda: seeds.chosen_rates(FRAME, "name", "lr"), ValueError, "column="),
        c("chosen_rates keys", lambda: seeds.chosen_rates(FRAME, "size"), ValueError, "keys="),
        # ---------------------------------------------------------------- chapters 01-02 studies
        c(
            "scalar_chain depth 10**8 (hang)",
            lambda: chain_rule.scalar_chain(depth=10**8),
            ValueError,
            "depth=",
        ),
        c("scalar_chain depth True", lambda: chain_rule.scalar_chain(depth=True), TypeError, "depth="),
        c("scalar_chain weight '2'", lambda: chain_rule.scalar_chain(weight="2"), TypeError, "weight="),
        c("scalar_chain weight inf", lambda: chain_rule.scalar_chain(weight=math.inf), ValueError, "weight="),
        c("scalar_chain x nan", lambda: chain_rule.scalar_chain(x=math.nan), ValueError, "x="),
        c(
            "deep_linear depth 10**6 (hang)",
            lambda: chain_rule.deep_linear_gradients(depth=10**6, width=8),
            ValueError,
            "depth=",
        ),
        c(
            "deep_linear width 10**6",
            lambda: chain_rule.deep_linear_gradients(width=10**6),
            ValueError,
            "width=",
        ),
        c("deep_linear sigma 0", lambda: chain_rule.deep_linear_gradients(sigma=0), ValueError, "sigma="),
        c(
            "deep_linear num_classes 1",
            lambda: chain_rule.deep_linear_gradients(num_classes=1),
            ValueError,
            "num_classes=",
        ),
        c(
            "deep_linear seed 2**64",
            lambda: chain_rule.deep_linear_gradients(seed=2**64),
            ValueError,
            "seed=",
        ),
        c("deep_linear batch 0", lambda: chain_rule.deep_linear_gradients(batch=0), ValueError, "batch="),
        c(
            "deep_linear batch 10**10",
            lambda: chain_rule.deep_linear_gradients(batch=10**10),
            ValueError,
            "batch=",
        ),
        c("init_scales inits 'he'", lambda: chain_rule.init_scales(inits="he"), TypeError, "inits="),
        c("init_scales inits []", lambda: chain_rule.init_scales(inits=[]), ValueError, "inits="),
        c(
            "init_scales inits uniform",
            lambda: chain_rule.init_scales(inits=["uniform"]),
            ValueError,
            "inits=",
        ),
        c("init_scales dtype int64", lambda: chain_rule.init_scales(dtype=torch.int64), ValueError, "dtype="),
        c(
            "init_scales gaussian_std -1",
            lambda: chain_rule.init_scales(gaussian_std=-1),
            ValueError,
            "gaussian_std=",
        ),
        c(
            "init_scales activation",
            lambda: chain_rule.init_scales(activation="relu6"),
            ValueError,
            "activation=",
        ),
        c("init_scales depth 10**6", lambda: chain_rule.init_scales(depth=10**6), ValueError, "depth="),
        c("init_scales width 10**6", lambda: chain_rule.init_scales(width=10**6), ValueError, "width="),
    ]
    if not HAS_CUDA:
        cases += [
            c("build device 'cuda' (no CUDA)", lambda: build(device="cuda"), ValueError, "device='cuda'"),
            c("build device cuda:0 (no CUDA)", lambda: build(device="cuda:0"), ValueError, "device="),
            c(
                "build torch.device cuda (no CUDA)",
                lambda: build(device=torch.device("cuda")),
                ValueError,
                "device=",
            ),
            c("pick_device cuda (no CUDA)", lambda: eg.pick_device("cuda"), ValueError, "device='cuda'"),
        ]
    else:
        count = torch.cuda.device_count()
        cases.append(
            c("build device past the GPUs", lambda: build(device=f"cuda:{count}"), ValueError, "device=")
        )
    if not HAS_MPS:
        cases.append(
            c("build device 'mps' (no Apple GPU)", lambda: build(device="mps"), ValueError, "device='mps'")
        )
    return cases


CASES = _cases()


def test_the_suite_is_large_enough():
    assert len(CASES) >= 150
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_refused_in_plain_words(case: Case):
    with pytest.raises(case.error) as info:
        case.call()
    message = str(info.value)
    assert info.type is case.error, f"{info.type.__name__}: {message}"
    assert case.names in message, message
    assert "out of bounds" not in message and "invalid literal" not in message


# --------------------------------------------------------------------------- size refusals say why


def test_a_size_refusal_gives_the_estimate():
    with pytest.raises(ValueError, match=r"depth=1000000 .* about 500 s"):
        eg.build_mlp(depth=10**6, width=64)
    with pytest.raises(
        ValueError, match=r"width=1000000 .*about [\d.]+ TB of memory, more than this machine"
    ):
        eg.build_mlp(width=10**6)
    with pytest.raises(ValueError, match=r"depth=100000000 .*about 2000 s and 200 GB"):
        chain_rule.scalar_chain(depth=10**8)


# --------------------------------------------------------------------------- good input still works


def test_good_input_that_looked_bad_still_works():
    assert eg.build_mlp(3, 4, dtype="float32").linear_layers()[0].weight.dtype == torch.float32
    assert eg.build_mlp(3, 4, dtype="float64").linear_layers()[0].weight.dtype == torch.float64
    assert eg.build_mlp(3, 4, residual=np.bool_(False)).config.residual is False
    assert eg.build_mlp(3, 4, seed=2**63 - 1).config.seed == 2**63 - 1
    assert eg.build_mlp(3, 4, device="cpu").linear_layers()[0].weight.device.type == "cpu"
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    numpy_trace = eg.trace(NET, X.numpy(), Y.numpy())
    assert torch.equal(numpy_trace.f(1), eg.trace(NET, X).f(1))
    assert numpy_trace.targets.dtype == torch.long
    assert eg.trace(NET, X.double()).inputs.dtype == torch.float32  # put on the network's dtype
    curve = eg.taylor_compression(NET, X, Y.numpy())
    assert np.array_equal(curve.train_loss, eg.taylor_compression(NET, X, Y).train_loss)
    assert eg.fit_explosion_rate(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), [1, 2, 4, 8, 16]).rate == pytest.approx(
        2
    )
    assert eg.effective_depth([1.0, 0.5, 0.0]) == 1
    assert seeds.median_range([1.0, None, 3.0]) == "2 [1, 3] (1 n/a)"
    assert sign_diversity([[1.0, -1.0], [-1.0, 1.0]]) == 0.5
    assert chain_rule.scalar_chain(2.0, depth=3).input_gradient == 8.0
    assert chain_rule.init_scales(3, 4, dtype="float64", batch=8).activation_rms.shape == (3, 3)


# --------------------------------------------------------------------------- overflow and NaN


def _overflowing_net(**options) -> DeepMLP:
    """A float32 network whose forward values overflow to inf within its depth."""
    return eg.build_mlp(12, 16, init="gaussian", init_scale=1e4, in_features=3, out_features=3, **options)


@pytest.mark.parametrize("skip", ["linear_fit", "init", "identity"])
def test_overflow_during_path_contributions_is_a_result(skip):
    residual = skip == "identity"
    net = _overflowing_net(residual=residual)
    assert not torch.isfinite(eg.trace(net, X).f(1)).all()
    result = eg.path_contributions(net, X, skip=skip, initial_net=net if skip == "init" else None)
    assert result.overflowed and result.effective_depth == -1
    assert result.overflow_layer is not None and 1 <= result.overflow_layer <= net.num_layers
    assert "overflowed" in result.message and f"layer {result.overflow_layer}" in result.message


def test_a_finite_network_has_no_overflow_in_its_path_contributions():
    result = eg.path_contributions(RES, X)
    assert not result.overflowed and result.overflow_layer is None
    assert result.message.startswith("effective depth")


def test_overflow_in_the_other_measures_is_a_result():
    net = _overflowing_net()
    assert eg.taylor_compression(net, X, Y).overflowed
    assert not eg.taylor_compression(NET, X, Y).overflowed
    assert np.isnan(eg.domain_stats(net, X).linear_fit_error).any()
    assert np.isnan(relative_perturbation_gain(net, X, Y, 3))
    residual = _overflowing_net(residual=True)
    assert not np.isfinite(eg.dilution_profile(residual, X).residual_gsc).all()


def test_overflow_in_gsc_is_reported_but_nan_in_data_is_refused():
    profile = eg.gsc_profile(_overflowing_net(), X, Y)
    assert profile.overflowed and "overflow" in profile.message
    for measure in (eg.gsc_profile, eg.gsc_matrix):
        with pytest.raises(ValueError, match="inputs: row 2 holds nan") as info:
            measure(NET, X_NAN, Y)
        assert "overflowed" not in str(info.value)


# --- networks of another dtype or device, and a measure that left the network changed ---------


def test_a_stack_of_networks_of_two_dtypes_is_refused_in_words_whatever_the_order():
    from explodegrad.training.stacked import NetStack

    net32 = eg.build_mlp(3, 8, in_features=5, out_features=3)
    net64 = eg.build_mlp(3, 8, in_features=5, out_features=3, dtype=torch.float64)
    for nets, index in (([net32, net64], 1), ([net64, net32], 1)):  # float64 first trained both in float64
        with pytest.raises(ValueError, match=f"nets: network {index} holds torch.float"):
            NetStack(nets)


def test_path_contributions_refuses_an_initial_net_of_another_dtype():
    from explodegrad.measures.paths import path_contributions

    net = eg.build_mlp(4, 8, in_features=5, out_features=3, dtype=torch.float64)
    initial = eg.build_mlp(4, 8, in_features=5, out_features=3)  # float32
    with pytest.raises(ValueError, match=r"initial_net: holds torch.float32 .* net torch.float64"):
        path_contributions(net, torch.randn(16, 5, dtype=torch.float64), skip="init", initial_net=initial)


def test_clipping_layer_gradients_checks_its_batch_and_leaves_batch_norm_alone():
    from explodegrad.studies.clipping import layer_gradients

    net = eg.build_mlp(4, 8, norm="batch", in_features=5, out_features=3, dtype=torch.float64)
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randint(3, (16,))
    buffers = [b.clone() for b in net.buffers()]
    in_training = layer_gradients(net, x, y)
    net.eval()  # measured with the batch's statistics all the same
    in_eval = layer_gradients(net, x, y)
    assert all(torch.equal(a, b) for a, b in zip(in_training, in_eval))
    assert all(torch.equal(a, b) for a, b in zip(buffers, net.buffers())) and not net.training
    assert len(layer_gradients(net, x.float(), y)) == 4  # put on the network's dtype
    with pytest.raises(ValueError, match="inputs"):
        layer_gradients(net, torch.randn(16, 7, dtype=torch.float64), y)


def test_taylor_compression_restores_every_modules_own_mode():
    from explodegrad.measures.taylor import taylor_compression

    net = eg.build_mlp(4, 8, norm="batch", in_features=5, out_features=3, dtype=torch.float64)
    net.units[1].eval()  # a module the user froze
    before = [module.training for module in net.modules()]
    taylor_compression(net, torch.randn(32, 5, dtype=torch.float64), torch.randint(3, (32,)), ks=[0, 1])
    assert [module.training for module in net.modules()] == before


def test_an_explosion_verdict_without_a_fit_gives_the_fits_reason():
    from explodegrad.claims.explosion import explosion_verdict

    net = eg.build_mlp(3, 8, in_features=5, out_features=3, dtype=torch.float64)
    profile = eg.gsc_profile(net, torch.randn(16, 5, dtype=torch.float64), torch.randint(3, (16,)))
    check = explosion_verdict(profile)
    assert check.verdict == "inconclusive" and "overflowed" not in check.line
    assert "a fit needs at least 3" in check.line
