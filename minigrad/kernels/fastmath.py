"""Fast pointwise maths for generated Numba loops: exp, log, log1p, tanh, sigmoid (and NumPy's
NaN-propagating maximum and minimum as scalar functions).

Inside a Numba loop ``np.tanh(x[i])`` is a libm call per element (~21 ns measured on the bench
machine, ``np.exp`` ~3.3 ns, against ~0.5 ns for NumPy's own SIMD ``np.exp`` on an array): LLVM cannot
vectorise across an opaque call. These functions are arithmetic, integer bit patterns and selects
(``a if c else b``) only, small enough for LLVM to inline, so that ``for i in range(n): out[i] =
fm.tanh(x[i])`` compiles to SIMD code. Generated code uses them as

    from minigrad.kernels import fastmath as fm
    ... fm.exp(v), fm.log(v), fm.log1p(v), fm.tanh(v), fm.sigmoid(v)
    ... softplus: y = fm.log1p(fm.exp(-abs(v))); v + y if v > 0 else y   (composed at the call site: one
        function holding both would be too big to inline)

in a function jitted with ``vectorising()``'s options: ``error_model="numpy"`` (Numba's default Python
error model puts a zero-division check, i.e. a branch to an exception, on every float division, which
blocks vectorisation) and ``contract`` (below). A scalar function takes a float32 or float64 and returns
the same dtype, computing float32 in float32 lanes (any other type is computed in float64).
``name_array(x, out)`` maps one over flat arrays (the tests and ``bench/fastmath.py`` use these). As in
the other kernel modules, ``_name`` is plain Python (what runs under ``NUMBA_DISABLE_JIT=1``) and
``name`` the jitted function, compiled on first access and cached on disk.

No ``fastmath`` flag but ``contract``: ``a * b + c`` may be one fused multiply-add, rounded once (the
polynomials below become FMA chains; with the float32 sigmoid dividing in float32, an LSTM's gate loop
runs ~25% faster); NaN, ±inf, ±0, subnormals, overflow to inf and underflow to 0 come out as in NumPy.
Measured error in ulp against a correctly rounded reference (tests/minigrad/test_fastmath.py; float32
over all 2^32 inputs, float64 on 12 million values of its grids): float32 exp, log, log1p, tanh 1,
sigmoid 2 (its division in float32), softplus (composed as above) 2; float64 exp, log, log1p 1, sigmoid,
tanh, softplus 2 (3 against NumPy's own float64 tanh and softplus). The bars: 2 and 4.

Method. exp: c = n ln2 + r with n = rint(c/ln2) (add and subtract 1.5 * 2^p), |r| <= ln2/2, ln2 split in
a short high part (n * hi exact) and a low part; e^r = 1 + r + r^2 P(r); 2^n from integer exponent bits,
as two factors so that results near overflow and subnormal results are rounded once. log: exponent and
mantissa m in [sqrt(1/2), sqrt(2)) read from the bits (subnormals scaled by 2^p first), f = m - 1 exact;
float32 log(1+f) = f - f^2/2 + f^3 Q(f), float64 through s = f/(2+f), log(1+f) = 2 atanh(s) = f - (f^2/2
- s (f^2/2 + z P(z))), z = s^2. log1p(u) = log(w) + c/w with w = fl(1 + u) and c = 1 + u - w (exact).
tanh float32: x + x z N(z)/D(z) for |x| < 0.625 (z = x^2, N/D a convergent of Lambert's continued
fraction x/(1 + z/(3 + z/(5 + ...))), which keeps the relative accuracy near 0), else ±(1 - 2/(e^{2|x|}
+ 1)), one division for both; float64: E/(E + 2) with E = e^{2|x|} - 1 = 2^n (1 + q) - 1 (q = e^r - 1
from the polynomial, accurate near 0), fewer instructions so that LLVM still inlines it. sigmoid: (1 or
e)/(1 + e) with e = e^{-|x|}, never overflowing (float32 divides in float32; dividing in float64, one
rounding fewer, cost a third more time). The polynomials are Chebyshev interpolants of the exact
remainder series, computed in rational arithmetic and rounded to the dtype (the test re-derives them).
"""

from __future__ import annotations

import math
import types
from typing import Any

import numpy as np

from ._jit import lazy_kernels

_f = np.float32

# ---------------------------------------------------------------- constants (f32 in float32 lanes)
_NAN32, _INF32, _ONE32, _TWO32, _HALF32 = _f(np.nan), _f(np.inf), _f(1.0), _f(2.0), _f(0.5)
_LOG2E32 = _f(1.4426950408889634)
_SHIFT32 = _f(12582912.0)  # 1.5 * 2^23: (t + shift) - shift rounds t to an integer
_LN2_HI32, _LN2_LO32 = _f(0.693359375), _f(-2.1219444e-04)  # hi = 355/512: n * hi exact for |n| < 2^15
_EXP_LO32, _EXP_HI32 = _f(-105.0), _f(89.0)  # e^-105 < 2^-150 (rounds to 0); e^89 > max float32
_TINY32, _TWO23_32 = _f(1.1754944e-38), _f(8388608.0)  # smallest normal; 2^23
_TANH_SMALL32, _TANH_TINY32 = _f(0.625), _f(2.0**-12)  # x^3/3 < ulp(x)/2 below 2^-12

_NAN64, _INF64 = np.nan, np.inf
_LOG2E64 = 1.4426950408889634
_SHIFT64 = 6755399441055744.0  # 1.5 * 2^52
_LN2_HI64, _LN2_LO64 = 0.6931471803691238, 1.9082149292705877e-10  # hi: ln 2 to 32 bits
_EXP_LO64, _EXP_HI64 = -750.0, 710.0  # e^-750 < 2^-1075; e^710 > max float64
_TINY64, _TWO54_64 = 2.2250738585072014e-308, 18014398509481984.0  # smallest normal; 2^54

# (e^r - 1 - r)/r^2 on |r| <= ln2/2: degree 4 (float32), 9 (float64)
_EXP_P32 = (_f(0.5), _f(0.16666578), _f(0.041666556), _f(0.008363173), _f(0.0013926176))
_EXP_P64 = (0.5000000000000001, 0.16666666666666669, 0.041666666666624164, 0.008333333333330065,
            0.0013888888917196719, 0.00019841269863040545, 2.4801521322368692e-05,
            2.7557268480310024e-06, 2.7620075879983367e-07, 2.5100375832561234e-08)
# (log(1+f) - f + f^2/2)/f^3 on sqrt(1/2) - 1 <= f < sqrt(2) - 1: degree 8
_LOG_Q32 = (_f(0.3333333), _f(-0.24999997), _f(0.20000716), _f(-0.16667803), _f(0.14249058),
            _f(-0.12425687), _f(0.1168542), _f(-0.11479734), _f(0.06971612))
# (2 atanh(s)/s - 2)/s^2 as a polynomial in z = s^2 <= ((sqrt(2)-1)/(sqrt(2)+1))^2: degree 6
_LOG_P64 = (0.666666666666667, 0.39999999999899505, 0.28571428625975487, 0.2222221113479508,
            0.18182889125261723, 0.15331721600556042, 0.14616449685043406)
# tanh(x) = x + x z N(z)/D(z) for |x| < 0.625: Lambert's convergent x/(1 + z/(3 + z/(5 + z/(7 + z/9))))
_TANH_N32 = (_f(-1 / 3), _f(-1 / 67.5))
_TANH_D32 = (_ONE32, _f(4 / 9), _f(1 / 63))


# ---------------------------------------------------------------- exp


def _exp_reduce32(c):
    """(q, n) with e^c = 2^n (1 + q), n = rint(c / ln 2) and q = e^r - 1, |r| <= ln2/2, for finite
    |c| < 2^21 (float32)."""
    n = (c * _LOG2E32 + _SHIFT32) - _SHIFT32
    r = (c - n * _LN2_HI32) - n * _LN2_LO32
    P = _EXP_P32
    return r * r * ((((P[4] * r + P[3]) * r + P[2]) * r + P[1]) * r + P[0]) + r, n


def _exp_reduce64(c):
    """(q, n) with e^c = 2^n (1 + q) (as ``_exp_reduce32``, float64)."""
    n = (c * _LOG2E64 + _SHIFT64) - _SHIFT64
    r = (c - n * _LN2_HI64) - n * _LN2_LO64
    P = _EXP_P64
    p = ((((((((P[9] * r + P[8]) * r + P[7]) * r + P[6]) * r + P[5]) * r + P[4]) * r + P[3]) * r
          + P[2]) * r + P[1]) * r + P[0]
    return r * r * p + r, n


def _pow2_32(n):
    """2^n for an integral float n in [-126, 127], from its exponent bits."""
    return np.int32((np.int32(n) + 127) << 23).view(np.float32)


def _pow2_64(n):
    """2^n for an integral float n in [-1022, 1023], from its exponent bits."""
    return np.int64((np.int64(n) + 1023) << 52).view(np.float64)


def _exp32(x):
    """e^x in float32."""
    c = x if x > _EXP_LO32 else _EXP_LO32  # clamps (and a NaN becomes finite; restored below)
    c = c if c < _EXP_HI32 else _EXP_HI32
    q, n = _exp_reduce32(c)
    h = (n * _HALF32 + _SHIFT32) - _SHIFT32  # 2^n as 2^h 2^(n-h): both normal, so that the product
    y = (q + _ONE32) * _pow2_32(h) * _pow2_32(n - h)  # overflows only past max and rounds once if subnormal
    return x if x != x else y


def _exp64(x):
    """e^x in float64."""
    c = x if x > _EXP_LO64 else _EXP_LO64
    c = c if c < _EXP_HI64 else _EXP_HI64
    q, n = _exp_reduce64(c)
    h = (n * 0.5 + _SHIFT64) - _SHIFT64
    y = (q + 1.0) * _pow2_64(h) * _pow2_64(n - h)
    return x if x != x else y


# ---------------------------------------------------------------- log


def _log32(x):
    """ln x in float32 (NaN for x < 0, -inf at ±0)."""
    v = x if x > 0 else _ONE32  # a finite positive stand-in for x <= 0, inf, NaN (fixed below)
    v = v if v < _INF32 else _ONE32
    sub = v < _TINY32
    v = v * _TWO23_32 if sub else v
    i = np.float32(v).view(np.int32) - 0x3F3504F3  # bits of v / sqrt(1/2): exponent k >= 0 iff v >= sqrt(1/2)
    k = (i >> 23) - (23 if sub else 0)
    f = np.int32((i & 0x7FFFFF) + 0x3F3504F3).view(np.float32) - _ONE32  # m - 1, m in [sqrt(1/2), sqrt(2))
    kf = np.float32(k)
    z = f * f
    Q = _LOG_Q32
    q = (((((((Q[8] * f + Q[7]) * f + Q[6]) * f + Q[5]) * f + Q[4]) * f + Q[3]) * f + Q[2]) * f
         + Q[1]) * f + Q[0]
    y = (f + ((f * z * q + kf * _LN2_LO32) - _HALF32 * z)) + kf * _LN2_HI32
    y = y if x < _INF32 else x  # +inf, NaN
    y = -_INF32 if x == 0 else y
    return _NAN32 if x < 0 else y


def _log64(x):
    """ln x in float64 (NaN for x < 0, -inf at ±0)."""
    v = x if x > 0 else 1.0
    v = v if v < _INF64 else 1.0
    sub = v < _TINY64
    v = v * _TWO54_64 if sub else v
    i = np.float64(v).view(np.int64) - 0x3FE6A09E667F3BCD
    k = (i >> 52) - (54 if sub else 0)
    f = np.int64((i & 0xFFFFFFFFFFFFF) + 0x3FE6A09E667F3BCD).view(np.float64) - 1.0
    kf = np.float64(k)
    s = f / (2.0 + f)
    z = s * s
    P = _LOG_P64
    R = z * ((((((P[6] * z + P[5]) * z + P[4]) * z + P[3]) * z + P[2]) * z + P[1]) * z + P[0])
    h = 0.5 * f * f
    y = kf * _LN2_HI64 - ((h - (s * (h + R) + kf * _LN2_LO64)) - f)  # log(1+f) = f - (h - s(h + R))
    y = y if x < _INF64 else x
    y = -_INF64 if x == 0 else y
    return _NAN64 if x < 0 else y


def _log1p32(u):
    """ln(1 + u) in float32, accurate for small u: log(w) + c/w with w = fl(1 + u) and c = 1 + u - w,
    exactly u - (w - 1) (both subtractions exact while w < 2^24; beyond, c/w is below an ulp)."""
    w = u + _ONE32
    y = _log32(w) + (u - (w - _ONE32)) / (w + _f(1e-30))  # + 1e-30: c/w = 0/1e-30 at w = 0 (u = -1)
    y = u if w == _ONE32 else y  # |u| < ulp(1)/2: u itself (keeps -0.0)
    return y if u < _INF32 else u


def _log1p64(u):
    """ln(1 + u) in float64 (as ``_log1p32``)."""
    w = u + 1.0
    y = _log64(w) + (u - (w - 1.0)) / (w + 1e-300)
    y = u if w == 1.0 else y
    return y if u < _INF64 else u


# ---------------------------------------------------------------- tanh, sigmoid


def _tanh32(x):
    """tanh x in float32: x + x z N(z)/D(z) for |x| < 0.625, else ±(1 - 2/(e^{2|x|} + 1)); one
    division serves both."""
    a = abs(x)
    z = x * x
    small = a < _TANH_SMALL32
    m = a + a
    m = m if m < _f(20.0) else _f(20.0)  # 2/(e^20 + 1) < 2^-25: tanh rounds to ±1 (NaN: restored below)
    q, n = _exp_reduce32(m)
    N, D = _TANH_N32, _TANH_D32
    num = x * z * (N[1] * z + N[0]) if small else _TWO32
    den = (D[2] * z + D[1]) * z + D[0] if small else (q + _ONE32) * _pow2_32(n) + _ONE32
    v = num / den
    y = x + v if small else (_ONE32 - v if x > 0 else v - _ONE32)
    y = x if a < _TANH_TINY32 else y  # tanh x rounds to x (and -0.0 stays -0.0: x + v would be +0.0)
    return x if x != x else y


def _tanh64(x):
    """tanh x in float64: E/(E + 2) with E = e^{2|x|} - 1 (accurate near 0: E = 2^n (1 + q) - 1
    with q = e^r - 1 from the polynomial), sign copied from x. Fewer instructions than the float32
    form, so that LLVM still inlines it into the caller's loop."""
    m = abs(x) + abs(x)
    m = m if m < 40.0 else 40.0  # tanh(20) rounds to 1 (NaN: restored below)
    q, n = _exp_reduce64(m)
    s = _pow2_64(n)
    E = s * q + (s - 1.0)
    y = np.float64(math.copysign(E / (E + 2.0), x))
    return x if x != x else y


def _sigmoid32(x):
    """1/(1 + e^-x) in float32."""
    e = _exp32(-abs(x))
    return (_ONE32 if x >= 0 else e) / (_ONE32 + e)


def _sigmoid64(x):
    """1/(1 + e^-x) in float64."""
    e = _exp64(-abs(x))
    return (1.0 if x >= 0 else e) / (1.0 + e)


# ---------------------------------------------------------------- by dtype, and over arrays


def _exp(x):
    """e^x (float32 in, float32 out; otherwise float64)."""
    return _exp32(x) if isinstance(x, np.float32) else _exp64(x)


def _log(x):
    """ln x."""
    return _log32(x) if isinstance(x, np.float32) else _log64(x)


def _log1p(x):
    """ln(1 + x)."""
    return _log1p32(x) if isinstance(x, np.float32) else _log1p64(x)


def _tanh(x):
    """tanh x."""
    return _tanh32(x) if isinstance(x, np.float32) else _tanh64(x)


def _sigmoid(x):
    """1/(1 + e^-x)."""
    return _sigmoid32(x) if isinstance(x, np.float32) else _sigmoid64(x)


def _maximum(a, b):
    """max(a, b) as NumPy's: NaN if either is NaN."""
    return a if (a >= b or a != a) else b


def _minimum(a, b):
    """min(a, b) as NumPy's: NaN if either is NaN."""
    return a if (a <= b or a != a) else b


def _exp_array(x, out):
    """out[i] = exp(x[i]) over flat arrays (as the generated loops do)."""
    for i in range(x.size):
        out[i] = _exp(x[i])


def _log_array(x, out):
    """out[i] = log(x[i])."""
    for i in range(x.size):
        out[i] = _log(x[i])


def _log1p_array(x, out):
    """out[i] = log1p(x[i])."""
    for i in range(x.size):
        out[i] = _log1p(x[i])


def _tanh_array(x, out):
    """out[i] = tanh(x[i])."""
    for i in range(x.size):
        out[i] = _tanh(x[i])


def _sigmoid_array(x, out):
    """out[i] = sigmoid(x[i])."""
    for i in range(x.size):
        out[i] = _sigmoid(x[i])


def _softplus_array(x, out):
    """out[i] = ln(1 + e^x[i]) = max(x, 0) + log1p(e^-|x|), composed in the loop body as generated code
    would write it (a scalar softplus calling both would be too big for LLVM to inline)."""
    for i in range(x.size):
        v = x[i]
        y = _log1p(_exp(-abs(v)))
        out[i] = v + y if v > 0 else y


#: the scalar functions (each also as ``name_array``; ``softplus_array`` composes exp and log1p)
FUNCTIONS = ("exp", "log", "log1p", "tanh", "sigmoid")

def vectorising(**extra: Any) -> dict[str, Any]:
    """Numba options of the loops that must vectorise (the functions here and the compiler's generated
    code), plus ``extra``: ``error_model="numpy"`` and the one fastmath flag ``contract`` (module
    docstring). They live in this file so that changing them changes it: Numba's disk cache of these
    functions and the compiled programs' cache key (``compiler.cache``) follow the file, not the options."""
    return {"error_model": "numpy", "fastmath": {"contract"}, **extra}


_jitted = lazy_kernels(globals(), **vectorising())
_registered = False


def __getattr__(name: str):
    """``name`` is ``_name`` jitted (``lazy_kernels``) once every ``_`` function here has been made
    callable from Numba code (``register_jitable``): they call one another, and LLVM inlines them."""
    global _registered
    if not _registered and not name.startswith("_"):
        from numba.extending import register_jitable

        for key, fn in list(globals().items()):
            if (key.startswith("_") and not key.startswith("__") and isinstance(fn, types.FunctionType)
                    and fn.__module__ == __name__):
                register_jitable(**vectorising())(fn)
        _registered = True
    return _jitted(name)
