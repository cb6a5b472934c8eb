"""BLAS for generated code that runs inside Numba (a compiled recurrence's loops).

``dot(a, b)`` is ``a @ b`` for 2-D float arrays of one dtype, jitted once per dtype and memory layout
and cached on disk like every kernel here. A generated module that calls it links this compiled code;
one that called ``np.dot`` itself would have Numba type and compile its BLAS wrapper again for every
new program (measured: 0.25-0.5 s per product in a cold LSTM recurrence, about a third of its compile
time).

Which BLAS (``BLAS`` names it): NumPy's own gemm when its extension exports a 64-bit-integer CBLAS
(NumPy's wheels bundle OpenBLAS as ``scipy_cblas_?gemm64_``), called by symbol name from the jitted
code, else Numba's ``np.dot``, which calls SciPy's BLAS. The two can be different builds: with NumPy
2.4's OpenBLAS 0.3.31 and SciPy 1.17's 0.3.30, float32 products of a recurrent step's shapes ((32, 256)
@ (256, 1024)) ran at 101 against 79 GFLOP/s on one core (``bench/blas.py``). ``MINIGRAD_BLAS=numba``
chooses Numba's. The choice is part of every generated module's cache key (``compiler/cache.py``).
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from ._jit import lazy_kernels

#: CBLAS constants: row-major storage, no transpose, transpose
_ROW, _N, _T = 101, 111, 112
#: (float32 gemm, float64 gemm) symbol names of a 64-bit-integer CBLAS, most recent NumPy first
_CANDIDATES = (("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_"), ("cblas_sgemm64_", "cblas_dgemm64_"))


def _numpy_gemm() -> tuple[str, dict[str, int]] | None:
    """(name, {"s" or "d": address}) of the gemm NumPy's extension links, checked on one product."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as umath
    try:
        lib = ctypes.CDLL(umath.__file__)  # dlsym on it also searches the libraries it links
    except OSError:
        return None
    for names in _CANDIDATES:
        try:
            fns = [getattr(lib, name) for name in names]
        except AttributeError:
            continue
        if all(_agrees(fn, dt) for fn, dt in zip(fns, (np.float32, np.float64))):
            return names[0], {dt: ctypes.cast(fn, ctypes.c_void_p).value for fn, dt in zip(fns, "sd")}
    return None


def _agrees(fn, dtype) -> bool:
    """Whether ``fn`` (a CBLAS gemm with 64-bit integers) computes one padded product as np.dot does."""
    real, i64, ptr = np.ctypeslib.as_ctypes_type(dtype), ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [ctypes.c_int] * 3 + [i64] * 3 + [real, ptr, i64, ptr, i64, real, ptr, i64]
    fn.restype = None
    a = np.arange(1.0, 16.0, dtype=dtype).reshape(3, 5)[:, :4]  # lda 5 > k 4
    b = np.arange(-4.0, 4.0, dtype=dtype).reshape(4, 2)
    out = np.full((3, 2), np.nan, dtype)
    fn(_ROW, _N, _N, 3, 2, 4, 1.0, a.ctypes.data, 5, b.ctypes.data, 2, 0.0, out.ctypes.data, 2)
    return bool(np.array_equal(out, a @ b))


def _select() -> str:
    """Register NumPy's gemm for the jitted code when it is there and wanted; the backend's name."""
    import numba

    if numba.config.DISABLE_JIT or os.environ.get("MINIGRAD_BLAS") == "numba":
        return "numba"
    found = _numpy_gemm()
    if found is None:
        return "numba"
    import llvmlite.binding as llb

    for char, address in found[1].items():
        llb.add_symbol(f"minigrad_{char}gemm", address)
    return "numpy:" + found[0]


def _externals() -> tuple:
    """The registered gemms as functions Numba calls by symbol (pointers passed as integers)."""
    from numba import types

    def gemm(real):
        i32, i64, p = types.int32, types.int64, types.intp
        return types.void(i32, i32, i32, i64, i64, i64, real, p, i64, p, i64, real, p, i64)

    return (types.ExternalFunction("minigrad_sgemm", gemm(types.float32)),
            types.ExternalFunction("minigrad_dgemm", gemm(types.float64)))


BLAS = _select()
_sgemm, _dgemm = _externals() if BLAS != "numba" else (None, None)


def _numba_dot(a, b):
    """a @ b (Numba's np.dot: SciPy's BLAS gemm)."""
    return np.dot(a, b)


def _numpy_dot(a, b):
    """a @ b by NumPy's gemm: C- or F-ordered operands passed as they are (transposed views of the
    weights included), any other layout copied first. ``out = 1 a b + 0 out``: NaN and inf in a or b
    propagate, as np.dot's do."""
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n), a.dtype)
    if m == 0 or n == 0:
        return out
    if k == 0:
        out[:] = 0
        return out
    if a.flags.c_contiguous:
        ta, lda = _N, k
    elif a.flags.f_contiguous:
        ta, lda = _T, m
    else:
        a = np.ascontiguousarray(a)
        ta, lda = _N, k
    if b.flags.c_contiguous:
        tb, ldb = _N, n
    elif b.flags.f_contiguous:
        tb, ldb = _T, k
    else:
        b = np.ascontiguousarray(b)
        tb, ldb = _N, n
    if a.itemsize == 4:  # float32
        _sgemm(_ROW, ta, tb, m, n, k, np.float32(1), a.ctypes.data, lda, b.ctypes.data, ldb,
               np.float32(0), out.ctypes.data, n)
    else:
        _dgemm(_ROW, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, 0.0, out.ctypes.data, n)
    return out


_dot = _numba_dot if BLAS == "numba" else _numpy_dot

__getattr__ = lazy_kernels(globals(), error_model="numpy")
