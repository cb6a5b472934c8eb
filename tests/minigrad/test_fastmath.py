"""Fast pointwise maths (``minigrad.kernels.fastmath``) against NumPy in ulps, jitted and as plain Python.

Bars: float32 within 2 ulp of NumPy's float64 result rounded to float32 (a correctly rounded
reference, stricter than NumPy's own float32 functions), float64 within 4 ulp of NumPy's float64
result (and of an extended-precision reference where ``np.longdouble`` has one). NaN, ±inf and the
signs of zeros exactly as NumPy's; overflow to inf and underflow to 0 exactly where NumPy's do. The
jitted functions must also inline into a caller's loop with no call left (what lets LLVM vectorise
the compiler's generated loops), and the polynomial coefficients must be what their derivation gives.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad.kernels import fastmath as fm

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")

DTYPES = [np.float32, np.float64]
NAMES = [*fm.FUNCTIONS, "softplus"]  # softplus: exp and log1p composed in the loop (softplus_array)
BAR = {np.float32: 2, np.float64: 4}
EXTENDED = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant  # x87 80-bit on x86-64 Linux


def _sigmoid(x):
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


NUMPY = {"exp": np.exp, "log": np.log, "log1p": np.log1p, "tanh": np.tanh, "sigmoid": _sigmoid,
         "softplus": lambda x: np.logaddexp(x.dtype.type(0), x)}


def reference(name: str, x: np.ndarray, precise: bool = True) -> np.ndarray:
    """NumPy's result in ``x.dtype``: for float32 computed in float64 and rounded; for float64 in
    extended precision when ``precise`` (and available), else NumPy's float64 itself."""
    wide = np.float64 if x.dtype == np.float32 else (np.longdouble if precise and EXTENDED else np.float64)
    with np.errstate(all="ignore"):
        return NUMPY[name](x.astype(wide)).astype(x.dtype)


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place: the number of floats between a and b (0 for two NaNs,
    +0 and -0 are 0 apart, the largest float and inf are 1 apart)."""
    it = np.int32 if a.dtype == np.float32 else np.int64

    def line(v):  # IEEE bit patterns, ordered like the numbers they encode
        i = v.view(it).astype(np.int64)
        return np.where(i < 0, np.int64(np.iinfo(it).min) - i, i)

    d = np.abs(line(a) - line(b))
    d[np.isnan(a) & np.isnan(b)] = 0
    return d


def run(name: str, x: np.ndarray, python: bool = False) -> np.ndarray:
    """``fastmath.<name>_array`` on x (``python``: the plain-Python ``_<name>_array``)."""
    kernel = getattr(fm, ("_" if python else "") + name + "_array")
    out = np.full_like(x, -7.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # plain Python: numpy scalar overflow warnings
        kernel(x, out)
    return out


def grid(dtype: type, n: int, seed: int = 0) -> np.ndarray:
    """Special values, dense runs of consecutive floats around every threshold, random bit patterns
    (the whole range, subnormals included), and random values where the functions do their work."""
    rng = np.random.default_rng(seed)
    fi = np.finfo(dtype)
    it = np.int32 if dtype == np.float32 else np.int64
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, fi.tiny, -fi.tiny, fi.smallest_subnormal,
               -fi.smallest_subnormal, fi.max, -fi.max, fi.eps, 1.0, -1.0, 2.0, 0.5, -0.5]
    # exp/sigmoid over- and underflow (also to subnormal), log near 1 and at the mantissa split,
    # tanh's branch point, log1p near -1, and zero
    centres = [math.log(fi.max), -math.log(fi.max), math.log(fi.smallest_subnormal),
               math.log(fi.smallest_subnormal) - math.log(2), math.log(fi.tiny), 1.0, math.sqrt(0.5),
               math.sqrt(2), 0.625, -0.625, -1.0, fi.tiny, 20.0]
    k = max(2, n // (10 * len(centres)))
    dense = [(np.array(c, dtype).view(it) + np.arange(-k, k, dtype=it)).view(dtype) for c in centres]
    dense += [np.arange(k, dtype=it).view(dtype), -np.arange(k, dtype=it).view(dtype)]  # ±subnormals
    bits = rng.integers(np.iinfo(it).min, np.iinfo(it).max, n // 5, dtype=it, endpoint=True).view(dtype)
    m = n // 5
    wide = [rng.uniform(-110, 110, m), rng.uniform(-800, 800, m // 4), rng.uniform(-3, 3, m),
            np.exp(rng.uniform(-745, 709, m // 2)) * rng.choice([-1, 1], m // 2), rng.normal(0, 1e-4, m // 4)]
    with np.errstate(over="ignore"):  # float32: +-800 and e^709 overflow to +-inf, as they should
        wide = [w.astype(dtype) for w in wide]
    return np.concatenate([np.array(special, dtype), *dense, bits, *wide])


def _check(name: str, x: np.ndarray, out: np.ndarray) -> None:
    """The ulp bar against the reference(s), and special values exactly as NumPy's."""
    dtype = x.dtype.type
    ref = reference(name, x)
    worst = int(np.argmax(ulps(out, ref)))
    assert ulps(out, ref).max() <= BAR[dtype], (name, x[worst], out[worst], ref[worst])
    if dtype == np.float64:
        own = reference(name, x, precise=False)  # NumPy's float64 itself
        assert ulps(out, own).max() <= BAR[dtype], name
    with np.errstate(all="ignore"):
        numpy = NUMPY[name](x)  # NumPy in x's own dtype
    for mask in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(mask(out), mask(numpy), err_msg=f"{name}: {mask.__name__}")
    zero = numpy == 0
    np.testing.assert_array_equal(out == 0, zero, err_msg=f"{name}: zeros")
    np.testing.assert_array_equal(np.signbit(out[zero]), np.signbit(numpy[zero]), err_msg=f"{name}: ±0")


def test_every_array_function_is_tested() -> None:
    assert sorted(n[1:-len("_array")] for n in vars(fm) if n.startswith("_") and n.endswith("_array")) \
        == sorted(NAMES)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_jitted_within_ulp_bar(name, dtype) -> None:
    """The jitted array functions (plain Python under NUMBA_DISABLE_JIT=1: a smaller grid)."""
    x = grid(dtype, 2_000 if JIT_DISABLED else 200_000)
    out = run(name, x)
    assert out.dtype == dtype
    _check(name, x, out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_plain_python_within_ulp_bar(name, dtype) -> None:
    """The ``_name`` functions as plain Python (NumPy scalars) meet the same bars."""
    x = grid(dtype, 1_000, seed=1)
    _check(name, x, run(name, x, python=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", fm.FUNCTIONS)
def test_scalar_keeps_dtype(name, dtype) -> None:
    """A float32 is computed in float32 (jitted, it comes back to Python as a float holding a float32
    value; plain Python returns the NumPy scalar type), a float64 in float64; ints in float64."""
    x = dtype(0.75)
    expected = reference(name, np.array([x]))[0]
    y = getattr(fm, "_" + name)(x)
    assert type(y) is dtype and ulps(np.array([y]), np.array([expected]))[0] <= BAR[dtype]
    y = getattr(fm, name)(x)
    assert dtype(y) == y and ulps(np.array([y], dtype), np.array([expected]))[0] <= BAR[dtype]
    for fn in (getattr(fm, name), getattr(fm, "_" + name)):
        assert ulps(np.array([float(fn(2))]), reference(name, np.array([2.0])))[0] <= BAR[np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(dtype) -> None:
    """Spot values a fastmath-flagged or naive implementation gets wrong."""
    inf, nan = np.inf, np.nan
    cases = {
        "exp": ([-inf, inf, nan, 0.0, -0.0, 1000.0, -1000.0], [0.0, inf, nan, 1.0, 1.0, inf, 0.0]),
        "log": ([0.0, -0.0, -1.0, -inf, inf, nan, 1.0], [-inf, -inf, nan, nan, inf, nan, 0.0]),
        "log1p": ([-1.0, -2.0, inf, -inf, nan, 0.0, -0.0], [-inf, nan, inf, nan, nan, 0.0, -0.0]),
        "tanh": ([inf, -inf, nan, 0.0, -0.0, 1000.0, -1000.0], [1.0, -1.0, nan, 0.0, -0.0, 1.0, -1.0]),
        "sigmoid": ([inf, -inf, nan, 0.0, -0.0, 1000.0, -1000.0], [1.0, 0.0, nan, 0.5, 0.5, 1.0, 0.0]),
        "softplus": ([inf, -inf, nan, 0.0, 1000.0, -1000.0], [inf, 0.0, nan, math.log(2), 1000.0, 0.0]),
    }
    for name, (x, y) in cases.items():
        x, y = np.array(x, dtype), np.array(y, dtype)
        for python in (False, True):
            out = run(name, x, python)
            np.testing.assert_array_equal(out, y, err_msg=f"{name} python={python}")
            zero = y == 0
            np.testing.assert_array_equal(np.signbit(out[zero]), np.signbit(y[zero]), err_msg=f"{name}: ±0")


@given(data=st.data(), dtype=st.sampled_from(DTYPES), name=st.sampled_from(NAMES))
def test_hypothesis_arrays(data, dtype, name) -> None:
    """Any floats at all (subnormals, infinities, NaN), jitted and as plain Python."""
    x = data.draw(hnp.arrays(dtype, st.integers(1, 40), elements=st.floats(width=np.finfo(dtype).bits)))
    _check(name, x, run(name, x))
    _check(name, x, run(name, x, python=True))


# ----------------------------------------------------------------------- inlined, hence vectorised


@pytest.mark.jit_only
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_inlined_into_callers_loop(name, dtype) -> None:
    """Compiled fresh (not from the cache) as the compiler's generated code calls them, the loop body
    has no call left (LLVM inlined the function) and works on SIMD vectors. LLVM inlines by a size
    budget: a function that grows past it silently falls back to one call per element."""
    import numba

    fn = getattr(fm, name) if name != "softplus" else None

    def loop(x, out):
        for i in range(x.size):
            out[i] = fn(x[i])

    assert (fn or fm.exp).targetoptions["fastmath"] == {"contract"}  # what ships: fm.vectorising()
    kernel = numba.njit(**fm.vectorising())(loop if fn is not None else fm._softplus_array)
    x = grid(dtype, 1000)
    out = np.empty_like(x)
    kernel(x, out)
    _check(name, x, out)
    ir = kernel.inspect_llvm(kernel.signatures[0])
    # the jitted function itself (not its CPython or cfunc wrappers)
    body = re.search(r"\ndefine [^\n]*@_ZN(?!7cpython)[^\n]*\{\n(.*?)\n\}", ir, re.S).group(1)
    calls = [line for line in body.splitlines()
             if " call " in line and "@llvm." not in line and "@NRT_" not in line]
    assert calls == [], calls
    lane = "float" if dtype == np.float32 else "double"
    assert f"x {lane}>" in body, "loop not vectorised"


# ----------------------------------------------------------------------- coefficients


def _chebyshev_interpolant(g, a: float, b: float, degree: int) -> list[Fraction]:
    """Monomial coefficients of the polynomial through g at the Chebyshev nodes of [a, b], exactly."""
    nodes = [Fraction((a + b) / 2 + (b - a) / 2 * math.cos(math.pi * (k + 0.5) / (degree + 1)))
             for k in range(degree + 1)]
    rows = [[t ** j for j in range(degree + 1)] + [g(t)] for t in nodes]
    n = degree + 1
    for c in range(n):  # Gauss-Jordan in rationals
        p = next(r for r in range(c, n) if rows[r][c] != 0)
        rows[c], rows[p] = rows[p], rows[c]
        for r in range(n):
            if r != c and rows[r][c] != 0:
                f = rows[r][c] / rows[c][c]
                rows[r] = [u - f * v for u, v in zip(rows[r], rows[c])]
    return [rows[i][n] / rows[i][i] for i in range(n)]


def _series(coefficient, terms: int):
    """t -> sum_k coefficient(k) t^k, in rationals."""
    def g(t):
        return sum((coefficient(k) * t ** k for k in range(terms)), Fraction(0))
    return g


def test_coefficients_are_their_derivation() -> None:
    """Each polynomial is the Chebyshev interpolant of its remainder series (rounded to the dtype), and
    tanh's small-|x| rational the Lambert convergent; so they can be re-derived, e.g. for another degree."""
    ln2 = math.log(2)
    exp_rest = _series(lambda k: Fraction(1, math.factorial(k + 2)), 30)  # (e^r - 1 - r)/r^2
    log_rest = _series(lambda k: Fraction((-1) ** k, k + 3), 160)  # (log(1+f) - f + f^2/2)/f^3
    atanh_rest = _series(lambda k: Fraction(2, 2 * k + 3), 40)  # (2 atanh(s)/s - 2)/s^2, in s^2
    smax2 = ((math.sqrt(2) - 1) / (math.sqrt(2) + 1)) ** 2
    derived = [
        (fm._EXP_P32, np.float32, _chebyshev_interpolant(exp_rest, -ln2 / 2, ln2 / 2, 4)),
        (fm._EXP_P64, np.float64, _chebyshev_interpolant(exp_rest, -ln2 / 2, ln2 / 2, 9)),
        (fm._LOG_Q32, np.float32, _chebyshev_interpolant(log_rest, math.sqrt(0.5) - 1, math.sqrt(2) - 1, 8)),
        (fm._LOG_P64, np.float64, _chebyshev_interpolant(atanh_rest, 0.0, smax2, 6)),
        # tanh x = x/(1 + z/(3 + z/(5 + z/(7 + z/9)))) = x (945 + 105 z + z^2)/(945 + 420 z + 15 z^2)
        #        = x + x z N(z)/D(z), N = (-315 - 14 z)/945, D = (945 + 420 z + 15 z^2)/945
        (fm._TANH_N32, np.float32, [Fraction(-315, 945), Fraction(-14, 945)]),
        (fm._TANH_D32, np.float32, [Fraction(1), Fraction(420, 945), Fraction(15, 945)]),
    ]
    for constants, dtype, exact in derived:
        assert [dtype(c) for c in constants] == [dtype(float(c)) for c in exact]


# ----------------------------------------------------------------------- laziness


def test_import_compiles_nothing() -> None:
    """Importing the module imports no Numba (the functions are jitted on first attribute access)."""
    code = ("import sys; import minigrad.kernels.fastmath as fm; assert 'numba' not in sys.modules; "
            "assert callable(fm.tanh) and 'numba' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
