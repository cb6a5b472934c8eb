"""The bench's hand-written NumPy BPTT (bench/reference.py) is a correct reference: it matches central
finite differences, and minigrad's graph (every bench path and rnn's layers) gives the same loss and
gradients on small sizes. Also smoke runs of the harness."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import mg_loop, problems, reference, run, torch_impl  # noqa: E402

KINDS = ["rnn", "gru", "lstm"]


def _numeric(kind, x, y, p, key, idx, eps=1e-6, **kw):
    q = {k: v.copy() for k, v in p.items()}
    q[key][idx] += eps
    lp, _ = reference.STEPS[kind](x, y, q, **kw)
    q[key][idx] -= 2 * eps
    lm, _ = reference.STEPS[kind](x, y, q, **kw)
    return (lp - lm) / (2 * eps)


@pytest.mark.parametrize("kind", KINDS)
def test_reference_matches_finite_differences(kind):
    x, y, p = problems.make_problem(kind, 3, 4, 2, 4, np.float64, seed=1)
    loss, g = reference.train_step(kind, x, y, p)
    rng = np.random.default_rng(0)
    for key in ["w_ih", "w_hh", "b_ih", "b_hh"]:
        for _ in range(4):
            idx = tuple(int(rng.integers(0, s)) for s in p[key].shape)
            np.testing.assert_allclose(g[key][idx], _numeric(kind, x, y, p, key, idx), rtol=1e-6, atol=1e-9)
    assert np.isfinite(loss) and loss > 0


def test_reference_relu_rnn_matches_finite_differences():
    x, y, p = problems.make_problem("rnn", 3, 4, 2, 4, np.float64, seed=2)
    _, g = reference.rnn_step(x, y, p, nonlinearity="relu")
    for key in ["w_ih", "w_hh", "b_hh"]:
        idx = (1,) + (0,) * (p[key].ndim - 1)
        num = _numeric("rnn", x, y, p, key, idx, nonlinearity="relu")
        np.testing.assert_allclose(g[key][idx], num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("impl", mg_loop.IMPLS)
@pytest.mark.parametrize("kind", KINDS)
def test_minigrad_equals_reference(kind, impl):
    x, y, p = problems.make_problem(kind, 3, 5, 2, 6, np.float64, seed=3)
    l_ref, g_ref = reference.train_step(kind, x, y, p)
    l_mg, g_mg = mg_loop.step_fn(kind, x, y, p, impl)()
    assert abs(l_ref - l_mg) <= 1e-12 * max(1.0, abs(l_ref))
    for k in g_ref:
        assert g_mg[k].dtype == np.float64
        np.testing.assert_allclose(g_mg[k], g_ref[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("compile", [True, False])
def test_rnn_layer_runs_as_asked(compile):
    """make_rnn_layer passes ``compile`` through: True is one compiled-scan node over the sequence (the
    default "rnn" impl when Numba's JIT is on), False the eager graph of every step ("rnn-eager")."""
    import minigrad as mg
    from minigrad.autograd import toposort

    x, _, p = problems.make_problem("lstm", 3, 5, 2, 6, np.float64, seed=3)
    layer = mg_loop.make_rnn_layer("lstm", p, compile=compile)
    assert layer.compile is compile
    names = [n.name for n in toposort(layer(mg.tensor(x))[0].node)]
    assert ("compiled scan" in names) is compile
    assert mg_loop.make_rnn_layer("lstm", p).compile is None


def test_step_fn_rejects_unknown_impls():
    x, y, p = problems.make_problem("rnn", 3, 5, 2, 6, np.float64, seed=3)
    for impl in ["rnn-compiled", "loop-3node", "fused"]:
        with pytest.raises(ValueError, match="impl must be one of rnn, rnn-eager, loop"):
            mg_loop.step_fn("rnn", x, y, p, impl)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_stays_float32(kind):
    x, y, p = problems.make_problem(kind, 3, 4, 2, 3, np.float32)
    _, g_ref = reference.train_step(kind, x, y, p)
    _, g_mg = mg_loop.step_fn(kind, x, y, p, "loop")()
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    _, g64 = reference.train_step(kind, x64, y64, {k: v.astype(np.float64) for k, v in p.items()})
    for k in g_ref:
        assert g_ref[k].dtype == g_mg[k].dtype == np.float32
        np.testing.assert_allclose(g_ref[k], g64[k], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(g_mg[k], g64[k], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("impl", ["layer", "cell"])
@pytest.mark.parametrize("kind", KINDS)
def test_torch_equals_reference(kind, impl):
    pytest.importorskip("torch")
    x, y, p = problems.make_problem(kind, 3, 4, 2, 5, np.float64, seed=4)
    l_ref, g_ref = reference.train_step(kind, x, y, p)
    l_t, g_t = torch_impl.step_fn(kind, x, y, p, impl)()
    assert abs(l_ref - l_t) < 1e-12
    for k in g_ref:
        np.testing.assert_allclose(g_t[k], g_ref[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_jax_equals_reference(kind):
    pytest.importorskip("jax")
    from bench import jax_impl

    x, y, p = problems.make_problem(kind, 3, 4, 2, 5, np.float64, seed=4)
    l_ref, g_ref = reference.train_step(kind, x, y, p)
    l_j, g_j = jax_impl.step_fn(kind, x, y, p)()
    assert abs(l_ref - l_j) < 1e-12
    for k in g_ref:
        np.testing.assert_allclose(g_j[k], g_ref[k], rtol=1e-10, atol=1e-12)


def test_workloads_are_the_issue_sizes():
    got = {k: (w.I, w.H, w.B, w.T) for k, w in problems.WORKLOADS.items()}
    assert got == {"tiny": (8, 16, 1, 32), "small": (32, 64, 16, 64), "medium": (64, 256, 32, 64),
                   "long": (16, 32, 4, 1000), "large": (256, 512, 64, 32)}


def test_harness_smoke(tmp_path, monkeypatch):
    """One tiny workload through the steps section: tables and the targets summary are produced."""
    monkeypatch.setitem(problems.WORKLOADS, "tiny", problems.Workload("tiny", 2, 3, 1, 3))
    out = tmp_path / "r.md"
    args = argparse.Namespace(quick=True, workloads="tiny", cells="rnn,lstm", dtypes="float32", reps=1,
                              warmup=1, budget=0.0, threads=1, sections="steps", no_torch=True, no_jax=True,
                              write=False, out=str(out))
    assert run.main(args) == 0
    text = out.read_text()
    assert "| tiny LSTM |" in text and "| tiny RNN |" in text and "| tiny GRU |" not in text
    assert "### Targets (ratios from this run):" in text
    header = next(ln for ln in text.splitlines() if ln.startswith("| workload"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols[1:8] == ["NumPy BPTT ms", "minigrad ms", "minigrad / NumPy", "eager ms", "eager / NumPy",
                         "bench loop ms", "loop / NumPy"]
    assert "fused" not in text and "compiled ms" not in text


def test_cells_section_times_every_registered_cell(tmp_path, monkeypatch):
    """The cells section runs every cell of rnn.CELLS (built-in or registered) through rnn.make_rnn."""
    import rnn

    monkeypatch.setitem(problems.WORKLOADS, "tiny", problems.Workload("tiny", 2, 3, 1, 3))
    out = tmp_path / "r.md"
    args = argparse.Namespace(quick=True, workloads="tiny", cells=None, dtypes="float64", reps=1,
                              warmup=1, budget=0.0, threads=1, sections="cells", no_torch=True,
                              write=False, out=str(out))
    assert run.main(args) == 0
    header = next(ln for ln in out.read_text().splitlines() if ln.startswith("| workload"))
    assert [c.strip() for c in header.strip("|").split("|")][1:] == list(rnn.CELLS)
    for c in rnn.CELLS:
        assert np.isfinite(mg_loop.cell_step_fn(c, 2, 3, 1, 3, np.float64)())
    with pytest.raises(SystemExit, match="--cells must be among"):
        run.main(argparse.Namespace(**{**vars(args), "cells": "rnn,nope"}))
