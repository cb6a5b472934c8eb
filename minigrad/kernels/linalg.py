"""BLAS for generated code that runs inside Numba (a compiled recurrence's loops).

``dot(a, b)`` is ``a @ b`` for two 2-D float32 or two float64 arrays, jitted once per dtype and memory
layout and cached on disk like every kernel here. A generated module that calls it links this compiled
code; one that called ``np.dot`` itself would have Numba type and compile its BLAS wrapper again for
every new program (measured: 0.25-0.5 s per product in a cold LSTM recurrence, about a third of its
compile time).

The jitted ``dot`` calls a row-major CBLAS gemm with 64-bit integers by the symbol name
``minigrad_sgemm`` / ``minigrad_dgemm``, which this module registers with LLVM on import, so that
compiled code (cached on disk by any caller) can always resolve it. ``BLAS`` names what it is:

- ``"numpy:scipy_cblas_sgemm64_"``: NumPy's own gemm, found in the libraries NumPy's extension links
  (NumPy's wheels bundle OpenBLAS with 64-bit integers) and checked on one product: the library
  ``np.dot`` uses. C- or F-ordered operands are passed as they are.
- ``"numba"``: where NumPy exports none, or with ``MINIGRAD_BLAS=numba``, a gemm compiled here
  (``numba.cfunc``) on Numba's ``np.dot``, which calls SciPy's BLAS.
- ``"mkl:cblas_sgemm_64"``: with ``MINIGRAD_BLAS=mkl``, Intel oneMKL's gemm (64-bit integers), from the
  ``libmkl_rt`` of ``pip install mkl`` or on the loader's path; an error naming where it looked when
  there is none. Optional and opt-in: faster at the medium and large workloads, slower at the tiny ones
  (docs/performance.md). Its threads follow MKL's settings (``MKL_NUM_THREADS``,
  ``MKL_THREADING_LAYER``).
- ``"python"``: without the JIT (``NUMBA_DISABLE_JIT=1``) ``dot`` is ``np.dot``.

Why not Numba's ``np.dot`` everywhere: the two libraries can be different builds. With NumPy 2.4's
OpenBLAS 0.3.31 and SciPy 1.17's 0.3.30, float32 products of a medium LSTM step's shapes ((32, 256) @
(256, 1024)) ran at ~100 against ~78 GFLOP/s on one core, and Numba's wrapper costs more per call
(products at B = 1-4: 1.2-1.8x slower); ``python -m bench.blas``. Compiled code links the symbol by
name, so a program compiled and cached with one library runs with the other. The fallback is compiled
when this module is first imported (a few seconds, then cached on disk like the kernels), which only
the fallback case pays.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
import os
import sys

import numpy as np

from ._jit import cfunc, jit, lazy_kernels

#: CBLAS constants: row-major storage, no transpose, transpose
_ROW, _N, _T = 101, 111, 112
#: (float32 gemm, float64 gemm) symbol names of a 64-bit-integer CBLAS, most recent NumPy first
_CANDIDATES = (("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_"), ("cblas_sgemm64_", "cblas_dgemm64_"))
#: oneMKL's single runtime library (it loads the rest), newest first; its 64-bit-integer gemms
_MKL_FILES = ("libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so", "libmkl_rt.2.dylib", "libmkl_rt.dylib")
_MKL_NAMES = ("cblas_sgemm_64", "cblas_dgemm_64")
#: what registered code lives in (the fallback's ``numba.cfunc`` objects, MKL's library), kept alive
_KEEP: list = []


def _numpy_gemm() -> tuple[str, dict[str, int]] | None:
    """(name, {"s" or "d": address}) of the gemm NumPy's extension links, checked on products."""
    try:
        try:
            from numpy._core import _multiarray_umath as umath
        except ImportError:  # NumPy 1.x
            from numpy.core import _multiarray_umath as umath
        lib = ctypes.CDLL(umath.__file__)  # dlsym on it also searches the libraries it links
    except (ImportError, AttributeError, OSError):  # no file (a static build), not loadable
        return None
    for names in _CANDIDATES:
        found = _checked(lib, names)
        if found is not None:
            return names[0], found
    return None


def _mkl_places() -> tuple[list[str], list[str]]:
    """(the candidates for MKL's runtime that exist, every path looked at): the file the ``mkl`` wheel
    installed (any prefix: venv, ``--user``), the environment's lib directories, then the loader's own
    search (a name, loaded as the loader finds it)."""
    try:
        dist = importlib.metadata.distribution("mkl")
        wheel = [str(dist.locate_file(f)) for f in dist.files or () if f.name.startswith("libmkl_rt")]
    except importlib.metadata.PackageNotFoundError:
        wheel = []
    places = [os.path.join(prefix, "lib", name) for prefix in dict.fromkeys((sys.prefix, sys.base_prefix))
              for name in _MKL_FILES]
    found = ctypes.util.find_library("mkl_rt")
    return [p for p in wheel + places if os.path.exists(p)] + ([found] if found else []), wheel + places


def _mkl_gemm() -> tuple[str, dict[str, int]]:
    """(name, {"s" or "d": address}) of oneMKL's gemms, checked on products; ImportError if none."""
    candidates, looked = _mkl_places()
    for place in candidates:
        try:
            lib = ctypes.CDLL(place)
        except OSError:
            continue
        found = _checked(lib, _MKL_NAMES)
        if found is not None:
            _KEEP.append(lib)
            return _MKL_NAMES[0], found
    raise ImportError("MINIGRAD_BLAS=mkl: no oneMKL runtime with a working cblas_sgemm_64 and "
                      f"cblas_dgemm_64 (pip install mkl); looked in {', '.join(looked)} and on the loader's "
                      "path (ctypes.util.find_library('mkl_rt'))")


def _checked(lib: ctypes.CDLL, names: tuple[str, str]) -> dict[str, int] | None:
    """{"s" or "d": address} of ``lib``'s (float32, float64) gemms ``names`` if both agree with np.dot."""
    try:
        fns = [getattr(lib, name) for name in names]
    except AttributeError:
        return None
    if not all(_agrees(fn, dt) for fn, dt in zip(fns, (np.float32, np.float64))):
        return None
    return {dt: ctypes.cast(fn, ctypes.c_void_p).value for fn, dt in zip(fns, "sd")}


def _agrees(fn, dtype) -> bool:
    """Whether ``fn`` computes two padded products as np.dot does, as a CBLAS gemm with 64-bit integers:
    the second has lda = 2^32 + 1 (one row: nothing read past it), which a 32-bit one reads as 1 < k and
    refuses."""
    real, i64, ptr = np.ctypeslib.as_ctypes_type(dtype), ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [ctypes.c_int] * 3 + [i64] * 3 + [real, ptr, i64, ptr, i64, real, ptr, i64]
    fn.restype = None
    a = np.arange(1.0, 16.0, dtype=dtype).reshape(3, 5)[:, :4]  # lda 5 > k 4
    b = np.arange(-4.0, 4.0, dtype=dtype).reshape(4, 2)
    for m, lda in ((3, 5), (1, 2**32 + 1)):
        out = np.full((m, 2), np.nan, dtype)
        fn(_ROW, _N, _N, m, 2, 4, 1.0, a.ctypes.data, lda, b.ctypes.data, 2, 0.0, out.ctypes.data, 2)
        if not np.array_equal(out, a[:m] @ b):
            return False
    return True


def _signature(real, pointer):
    """CBLAS gemm: (order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) -> void."""
    from numba import types

    i32, i64 = types.int32, types.int64
    return types.void(i32, i32, i32, i64, i64, i64, real, pointer, i64, pointer, i64, real, pointer, i64)


def _fallback_gemms() -> dict[str, int]:
    """{"s" or "d": address} of row-major gemms compiled here on Numba's ``np.dot``."""
    from numba import carray, types

    def gemm(order, ta, tb, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc):
        a = carray(pa, (m, lda))[:, :k] if ta == _N else carray(pa, (k, lda))[:, :m].T
        b = carray(pb, (k, ldb))[:, :n] if tb == _N else carray(pb, (n, ldb))[:, :k].T
        c = carray(pc, (m, ldc))[:, :n]
        r = np.dot(np.ascontiguousarray(a), np.ascontiguousarray(b))
        if alpha != 1:
            r *= alpha
        if beta == 0:
            c[:, :] = r
        else:
            c[:, :] = r + beta * c

    out = {}
    for char, real in (("s", types.float32), ("d", types.float64)):
        fn = cfunc(_signature(real, types.CPointer(real)), gemm, error_model="numpy")
        _KEEP.append(fn)
        out[char] = fn.address
    return out


def _select() -> str:
    """Register ``minigrad_?gemm`` (``MINIGRAD_BLAS``'s choice: NumPy's when found, MKL's, or the
    fallback); the name."""
    import numba

    if numba.config.DISABLE_JIT:
        return "python"
    wanted = os.environ.get("MINIGRAD_BLAS", "numpy").strip().lower() or "numpy"
    if wanted not in ("numpy", "numba", "mkl"):
        raise ValueError(f"MINIGRAD_BLAS must be 'numpy' (the default), 'numba' or 'mkl', got {wanted!r}")
    found = _numpy_gemm() if wanted == "numpy" else _mkl_gemm() if wanted == "mkl" else None
    addresses = found[1] if found is not None else _fallback_gemms()
    import llvmlite.binding as llb

    for char, address in addresses.items():
        llb.add_symbol(f"minigrad_{char}gemm", address)
    return "numba" if found is None else f"{wanted}:{found[0]}"


def _externals() -> tuple:
    """The registered gemms as functions Numba calls by symbol (pointers passed as integers)."""
    from numba import types

    return (types.ExternalFunction("minigrad_sgemm", _signature(types.float32, types.intp)),
            types.ExternalFunction("minigrad_dgemm", _signature(types.float64, types.intp)))


def _same_float(a, b) -> None:
    """Nothing at run time; in Numba a typing error unless a and b are 2-D and both float32 or both
    float64 (the gemm is chosen by a's item size and reads b as the same type)."""


def _register_typing_check() -> None:
    from numba import types
    from numba.core.errors import TypingError
    from numba.extending import overload

    @overload(_same_float)
    def _typing(a, b):
        ok = all(isinstance(x, types.Array) and x.ndim == 2 for x in (a, b)) and a.dtype == b.dtype \
            and a.dtype in (types.float32, types.float64)
        if not ok:
            raise TypingError(f"minigrad.kernels.linalg.dot: needs two 2-D float32 or two 2-D float64 "
                              f"arrays, got {a} and {b}")
        return lambda a, b: None


BLAS = _select()
if BLAS != "python":
    _sgemm, _dgemm = _externals()
    _register_typing_check()


def _gemm_into(ta, tb, a, lda, b, ldb, out):
    """out = a b by the registered gemm. The arrays, not their addresses, are passed in: a copy the
    caller made stays alive until the gemm has read it."""
    m, k = a.shape
    n = out.shape[1]
    if a.itemsize == 4:  # float32
        _sgemm(_ROW, ta, tb, m, n, k, np.float32(1), a.ctypes.data, lda, b.ctypes.data, ldb,
               np.float32(0), out.ctypes.data, n)
    else:
        _dgemm(_ROW, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, 0.0, out.ctypes.data, n)


def _blas_dot(a, b):
    """a @ b by the registered gemm: C- or F-ordered operands passed as they are (transposed views of
    the weights included), any other layout copied first. ``out = 1 a b + 0 out``: NaN and inf in a or
    b propagate, as np.dot's do."""
    _same_float(a, b)
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n), a.dtype)
    if m == 0 or n == 0:
        return out
    if k == 0:
        out[:] = 0
        return out
    a, ta, lda = _operand(a)
    b, tb, ldb = _operand(b)
    _gemm_into(ta, tb, a, lda, b, ldb, out)
    return out


def _operand(x):
    """(x or a C-ordered copy of it, its CBLAS transpose flag, its leading dimension) for a row-major
    gemm: C order as it is, F order as the transpose of a C-ordered array."""
    rows, cols = x.shape
    if x.flags.c_contiguous:
        return x, _N, cols
    if x.flags.f_contiguous:
        return x, _T, rows
    return np.ascontiguousarray(x), _N, cols


def _python_dot(a, b):
    """a @ b without the JIT: np.dot."""
    return np.dot(a, b)


if BLAS == "python":
    _dot = _python_dot
else:
    _dot = _blas_dot
    _gemm_into = jit(_gemm_into, error_model="numpy")
    _operand = jit(_operand, error_model="numpy")

__getattr__ = lazy_kernels(globals(), error_model="numpy")
