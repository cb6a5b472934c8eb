"""Numba kernels against NumPy references (jitted ``K.name`` and pure-Python ``K._name``), NaN/inf
propagation, lazy compilation (``import minigrad`` imports no Numba), and the cache fallback for
read-only installs."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from minigrad.kernels import _jit
from minigrad.kernels import elementwise as K

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

SPECIAL = [-np.inf, -1000.0, -30.0, -1.5, -1e-8, -0.0, 0.0, 1e-8, 0.5, 1.0, 1.5, 30.0, 1000.0, np.inf, np.nan]
G_VALUES = [np.nan, np.inf, -np.inf, 0.0, -2.5, 1.0, 3.0]


def _sigmoid_neg_stable(x):
    """exp(x)/(1+exp(x)) for x < 0 (what the kernels compute, avoids 1 - pos cancellation)."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


# kernel name -> (argument names, NumPy reference on arrays of one dtype)
REFERENCES = {
    "sigmoid_forward": (("x",), lambda x: _sigmoid_neg_stable(x)),
    "softplus_forward": (("x",), lambda x: np.logaddexp(x.dtype.type(0), x)),
}


def kernel_names() -> list[str]:
    """Every ``_name`` function defined in minigrad/kernels/elementwise.py."""
    return sorted(n[1:] for n, f in vars(K).items()
                  if inspect.isfunction(f) and n.startswith("_") and not n.startswith("__")
                  and f.__module__ == K.__name__)


def test_every_kernel_has_a_reference() -> None:
    assert kernel_names() == sorted(REFERENCES)


def _args(names, dtype, rng):
    s = np.array(SPECIAL, dtype)
    extra = rng.standard_normal(20).astype(dtype) * 3
    x = np.concatenate([np.tile(s, len(G_VALUES)), extra])
    g = np.concatenate([np.repeat(np.array(G_VALUES, dtype), len(s)), rng.standard_normal(20).astype(dtype)])
    out = []
    for n in names:
        if n == "g":
            out.append(g)
        elif n in ("x", "y"):
            out.append(x)
        elif n == "lo":
            out.append(-1.0)
        elif n == "hi":
            out.append(1.0)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", ["python", "jit"])
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_kernel_matches_numpy(name, variant, dtype) -> None:
    names, ref = REFERENCES[name]
    args = _args(names, dtype, np.random.default_rng(0))
    kernel = getattr(K, "_" + name) if variant == "python" else getattr(K, name)
    out = np.full(args[0].shape, -7.0, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kernel(*args, out)
        expected = ref(*[a if isinstance(a, np.ndarray) else dtype(a) for a in args])
    assert expected.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out, expected, rtol=tol, atol=0, equal_nan=True)
    # NaN/inf propagate exactly where the reference has them (no fastmath)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(out), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(out), np.isneginf(expected))


def _dot_cases(dtype):
    """(a, b) pairs in every layout the generated code passes, and the edge shapes."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype)
    a[0, 1], a[2, 2], b[1, 3] = np.nan, np.inf, -np.inf
    big = rng.standard_normal((9, 8)).astype(dtype)
    return [(a, b.T), (a, np.ascontiguousarray(b.T)), (a.T.copy().T, b.T), (b, a.T),
            (big[::2, 1:5], big[1:5, ::3]), (big[::2, ::2].T, big[1:6, :3]),
            (big[:1], big[:8, :1]), (big[:, :1], big[:1]), (big[:0], big[:8]), (big[:, :0], big[:0, :3]),
            (big[:3], big[:8, :0])]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linalg_dot_is_numpys_for_every_layout(dtype) -> None:
    """``minigrad.kernels.linalg.dot`` (what a compiled recurrence's products call): np.dot's values
    for C- and F-ordered operands (the generated code passes ``w.T`` views), strided ones (copied),
    empty and single-row or -column ones, NaN and inf included."""
    from minigrad.kernels import linalg

    for x, y in _dot_cases(dtype):
        with np.errstate(invalid="ignore"):
            got, want = linalg.dot(x, y), np.dot(x, y)
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-13, equal_nan=True)


_LAYOUTS_SCRIPT = """
import numpy as np
from minigrad.kernels import linalg
print(linalg.BLAS)
rng = np.random.default_rng(0)
for dt in (np.float32, np.float64):
    for m, k, n in [(5, 4, 3), (64, 64, 64), (300, 200, 100)]:
        A, B = rng.standard_normal((m, 2 * k)).astype(dt), rng.standard_normal((k, 2 * n)).astype(dt)
        a, b = A[:, ::2], B[:, ::2]  # strided: copied inside dot
        for x, y in [(a, b), (np.asfortranarray(a), b), (a, np.asfortranarray(b)), (a[::-1], b)]:
            got, want = linalg.dot(x, y), np.dot(x, y)
            assert got.dtype == dt and np.allclose(got, want, rtol=1e-4, atol=1e-4), (m, k, n, dt)
"""


def _mkl_installed() -> bool:
    """Whether oneMKL's wheel (``pip install mkl``, optional) is installed here."""
    import importlib.metadata

    try:
        importlib.metadata.version("mkl")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize("blas", ["numpy", "numba", "mkl"])
def test_linalg_dot_in_a_fresh_process_with_scribbled_frees(blas) -> None:
    """Every backend (NumPy's gemm; the fallback on Numba's np.dot; oneMKL's, where it is installed) in
    a process where glibc fills freed memory with garbage (``MALLOC_PERTURB_``): an operand ``dot``
    copies (strided, reversed) must stay alive until the gemm has read it, and F-ordered ones pass the
    transpose flags right."""
    import os
    import subprocess
    import sys

    import numba

    if numba.config.DISABLE_JIT:
        pytest.skip("the gemm backends are for jitted code")
    if blas == "mkl" and not _mkl_installed():
        pytest.skip("oneMKL (pip install mkl) is optional and not installed")
    env = {**os.environ, "MINIGRAD_BLAS": blas, "MALLOC_PERTURB_": "165"}
    got = subprocess.run([sys.executable, "-c", _LAYOUTS_SCRIPT], env=env, capture_output=True, text=True)
    assert got.returncode == 0, got.stderr[-2000:]
    name = got.stdout.split()[0]
    if blas == "numpy":  # NumPy's gemm, or the fallback where NumPy exports none
        assert name.startswith("numpy:") or name == "numba"
    else:
        assert name == {"numba": "numba", "mkl": "mkl:cblas_sgemm_64"}[blas]


#: an environment without oneMKL, as linalg sees it: no ``mkl`` wheel, nothing under the prefixes
_NO_MKL_SCRIPT = """
import importlib.metadata, sys
def _absent(name):
    raise importlib.metadata.PackageNotFoundError(name)
importlib.metadata.distribution = _absent
sys.prefix = sys.base_prefix = "/nonexistent"
import minigrad.kernels.linalg
"""


def test_linalg_blas_names_the_library() -> None:
    """NumPy's own gemm where NumPy's wheel exports one (the library np.dot uses), ``np.dot`` without
    the JIT; a MINIGRAD_BLAS other than numpy, numba or mkl is an error naming it, and so is mkl where
    no oneMKL runtime is found (an environment without it: ``sys.prefix`` pointed elsewhere)."""
    import os
    import subprocess
    import sys

    import numba

    from minigrad.kernels import linalg

    if numba.config.DISABLE_JIT:
        assert linalg.BLAS == "python"
        return
    assert linalg.BLAS == "numba" or linalg.BLAS.startswith(("numpy:", "mkl:"))  # MINIGRAD_BLAS's choice
    if linalg.BLAS.startswith("numpy:"):
        a, b = np.random.default_rng(0).standard_normal((2, 37, 29)).astype(np.float32)
        np.testing.assert_array_equal(linalg.dot(a, b.T), np.dot(a, b.T))
    env = {**os.environ, "MINIGRAD_BLAS": "atlas"}
    got = subprocess.run([sys.executable, "-c", "import minigrad.kernels.linalg"], env=env,
                         capture_output=True, text=True)
    assert got.returncode != 0 and \
        "MINIGRAD_BLAS must be 'numpy' (the default), 'numba' or 'mkl', got 'atlas'" in got.stderr
    import ctypes.util

    if ctypes.util.find_library("mkl_rt"):  # a system-wide MKL: nowhere to hide it from the loader
        return
    got = subprocess.run([sys.executable, "-c", _NO_MKL_SCRIPT], env={**env, "MINIGRAD_BLAS": "mkl"},
                         capture_output=True, text=True)
    assert got.returncode != 0 and "ImportError: MINIGRAD_BLAS=mkl: no oneMKL runtime" in got.stderr \
        and "(pip install mkl); looked in /nonexistent/lib/libmkl_rt.so.3" in got.stderr \
        and "and on the loader's path (ctypes.util.find_library('mkl_rt'))" in got.stderr


_MKL_LSTM_SCRIPT = """
import warnings
import numpy as np, minigrad as mg, rnn
from minigrad.kernels import linalg
warnings.simplefilter("error")  # a cell that cannot compile warns and runs eager: fail instead
assert linalg.BLAS == "mkl:cblas_sgemm_64", linalg.BLAS
got = []
for compile in (True, False):  # the same weights and data; eager products are NumPy's
    rng = np.random.default_rng(3)
    layer = rnn.LSTM(5, 7, num_layers=2, bidirectional=True, dtype=np.float64, rng=rng, compile=compile)
    x = mg.tensor(rng.standard_normal((6, 3, 5)))
    out, _ = layer(x)
    (out * out).sum().backward()
    got.append([out.data] + [p.grad.data for p in layer.parameters()])
for a, b in zip(*got):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
print("MATCH")
"""


def test_a_compiled_lstm_on_mkl_matches_the_eager_graph() -> None:
    """With ``MINIGRAD_BLAS=mkl`` (where oneMKL is installed) a compiled two-layer bidirectional LSTM's
    outputs and gradients are the eager graph's (NumPy's BLAS) to 1e-12 in float64, its products made
    by MKL (``MKL_VERBOSE`` logs each call: far more than linalg's import-time checks)."""
    import os
    import subprocess
    import sys

    import numba

    if numba.config.DISABLE_JIT or not _mkl_installed():
        pytest.skip("oneMKL (pip install mkl) is optional and not installed, or the JIT is off")
    env = {**os.environ, "MINIGRAD_BLAS": "mkl", "MKL_VERBOSE": "1"}
    got = subprocess.run([sys.executable, "-c", _MKL_LSTM_SCRIPT], env=env, capture_output=True, text=True)
    assert got.returncode == 0, got.stderr[-2000:]
    assert "MATCH" in got.stdout and got.stdout.count("DGEMM_64") >= 20, got.stdout[-2000:]


@pytest.mark.parametrize("pair", [("float64", "float32"), ("float32", "float64"), ("int64", "int64")])
def test_linalg_dot_refuses_mixed_or_non_float_operands(pair) -> None:
    """The gemm is chosen by a's dtype and reads b as the same type: anything else is a typing error
    (never a product of reinterpreted bytes)."""
    import numba

    from minigrad.kernels import linalg

    if numba.config.DISABLE_JIT:
        pytest.skip("a Numba typing check")
    a, b = np.ones((3, 2), pair[0]), np.ones((2, 4), pair[1])
    with pytest.raises(numba.core.errors.TypingError, match="two 2-D float32 or two 2-D float64"):
        linalg.dot(a, b)


@pytest.mark.parametrize("variant", ["python", "jit"])
def test_kernel_special_values(variant) -> None:
    """Spot values that a fastmath or naive kernel gets wrong."""
    k = (lambda n: getattr(K, "_" + n)) if variant == "python" else (lambda n: getattr(K, n))
    x = np.array([-np.inf, -1000.0, 0.0, 1000.0, np.inf, np.nan])
    out = np.empty_like(x)
    k("sigmoid_forward")(x, out)
    np.testing.assert_array_equal(out, [0.0, 0.0, 0.5, 1.0, 1.0, np.nan])
    k("softplus_forward")(x, out)
    np.testing.assert_array_equal(out[:2], [0.0, 0.0])
    assert out[2] == np.log(2) and out[3] == 1000.0 and out[4] == np.inf and np.isnan(out[5])


def test_pointwise_derivatives_at_special_values() -> None:
    """The derivative formulas (evaluated by the eager ops) where a naive one goes wrong."""
    import minigrad as mg

    x = np.array([-np.inf, -1000.0, 0.0, 1000.0, np.inf, np.nan])

    def grad(f):
        t = mg.tensor(x, dtype="float64", requires_grad=True)
        f(t).sum().backward()
        return t.grad.numpy()

    np.testing.assert_array_equal(grad(lambda t: t.abs()), [-1, -1, 0, 1, 1, np.nan])  # abs'(0) = 0
    np.testing.assert_array_equal(grad(lambda t: t.relu()), [0, 0, 0, 1, 1, 0])  # relu'(0) = 0
    np.testing.assert_array_equal(grad(lambda t: t.clip(-1000.0, 1000.0)), [0, 1, 1, 1, 0, 0])  # bounds pass


def test_importing_minigrad_does_not_import_numba() -> None:
    code = "import minigrad, sys; assert 'numba' not in sys.modules, 'numba imported'; print('ok')"
    r = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_kernel_attributes_are_lazy_and_cached() -> None:
    f = K.sigmoid_forward
    assert K.sigmoid_forward is f  # compiled once, then a plain module attribute
    with pytest.raises(AttributeError):
        K.no_such_kernel
    with pytest.raises(AttributeError):
        K.__getattr__("_sigmoid_forward")


def _double(x, out):
    for i in range(x.size):
        out[i] = 2.0 * x[i]


def test_cache_fallback_when_numba_cannot_cache(monkeypatch) -> None:
    import numba

    real = numba.njit
    calls = []

    def njit(*args, cache=False, **kw):
        calls.append(cache)
        if cache:
            raise RuntimeError("cannot cache function '_double': no locator available for file 'x.py'")
        return real(*args, cache=cache, **kw)

    monkeypatch.setattr(numba, "njit", njit)
    with pytest.warns(RuntimeWarning, match="cache unavailable"):
        fn = _jit.jit(_double)
    assert calls == [True, False]
    out = np.empty(3)
    fn(np.array([1.0, 2.0, 3.0]), out)
    np.testing.assert_array_equal(out, [2.0, 4.0, 6.0])
    # the same through a kernel module's lazy __getattr__
    mod = types.ModuleType("fake_kernels")
    mod._double = _double
    mod.__getattr__ = _jit.lazy_kernels(vars(mod))
    with pytest.warns(RuntimeWarning, match="cache unavailable"):
        fn2 = mod.double
    assert mod.double is fn2
    fn2(np.array([0.5]), out[:1])
    assert out[0] == 1.0


def test_cfunc_has_the_same_cache_fallback(monkeypatch) -> None:
    """``_jit.cfunc`` (the fallback gemm of ``linalg``) compiles without cache, warning, when Numba
    cannot cache."""
    import numba

    if numba.config.DISABLE_JIT:
        pytest.skip("a C callable needs the JIT")
    real = numba.cfunc
    calls = []

    def cfunc(sig, cache=False, **kw):
        calls.append(cache)
        if cache:
            raise RuntimeError("cannot cache function 'twice': no locator available for file 'x.py'")
        return real(sig, cache=cache, **kw)

    monkeypatch.setattr(numba, "cfunc", cfunc)
    with pytest.warns(RuntimeWarning, match="cache unavailable"):
        fn = _jit.cfunc("float64(float64)", lambda x: 2.0 * x)
    assert calls == [True, False] and fn.ctypes(1.5) == 3.0


def test_other_errors_are_not_swallowed(monkeypatch) -> None:
    import numba

    def njit(*args, **kw):
        raise TypeError("bad option")

    monkeypatch.setattr(numba, "njit", njit)
    with pytest.raises(TypeError, match="bad option"):
        _jit.jit(_double)


READONLY_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import minigrad as mg
        x = mg.tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
        y = (x.sigmoid() * x.tanh()).softplus().sum()
        y.backward()
    print(json.dumps({"file": mg.__file__, "y": float(y.item()), "grad": x.grad.tolist(),
                      "warnings": [str(w.message) for w in caught]}))
""")


@pytest.mark.jit_only
def test_read_only_install_imports_and_runs(tmp_path) -> None:
    """A copy of the package that nobody may write to, with no writable Numba cache anywhere: it
    imports, compiles in memory (warning once per kernel) and computes the right numbers.

    Root ignores file permissions, so the cache locations are also blocked by regular files standing
    where Numba would create directories (``__pycache__``, the user cache dir)."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "minigrad", site / "minigrad",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for d in [site / "minigrad", *[p for p in (site / "minigrad").rglob("*") if p.is_dir()]]:
        (d / "__pycache__").write_text("not a directory")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, so nothing can be created beneath it")
    before = sorted(str(p) for p in site.rglob("*"))
    for p in [site, *site.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1", HOME=str(blocker),
               XDG_CACHE_HOME=str(blocker / "cache"))
    try:
        r = subprocess.run([PY, "-c", READONLY_SCRIPT], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
    finally:
        for p in [site, *site.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["file"].startswith(str(site))
    assert any("cache unavailable" in w for w in res["warnings"]), res["warnings"]
    assert sorted(str(p) for p in site.rglob("*")) == before  # nothing written into the install
    # the numbers are right (NumPy reference)
    xv = np.array([-1.0, 0.5, 2.0])
    s, t = 1 / (1 + np.exp(-xv)), np.tanh(xv)
    u = s * t
    np.testing.assert_allclose(res["y"], np.logaddexp(0, u).sum(), rtol=1e-12)
    du = 1 / (1 + np.exp(-u))
    np.testing.assert_allclose(res["grad"], du * (s * (1 - s) * t + s * (1 - t * t)), rtol=1e-12)


def test_bench_blas_steps_times_a_step_with_the_chosen_gemm() -> None:
    """``python -m bench.blas_steps``'s timer: a fresh process with ``MINIGRAD_BLAS`` set times the
    compiled layer's train step (ms, positive and finite) with that gemm; an unknown gemm is an error
    carrying the process's own."""
    import numba

    from bench import blas_steps

    if numba.config.DISABLE_JIT:
        pytest.skip("the gemms are for jitted code")
    ms = blas_steps.time_step("numba", "rnn", "tiny", "float32")
    assert 0 < ms < 1e4
    with pytest.raises(RuntimeError, match=r"(?s)MINIGRAD_BLAS=atlas failed:.*must be 'numpy'"):
        blas_steps.time_step("atlas", "rnn", "tiny", "float32")
