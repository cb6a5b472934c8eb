"""Single-threaded BLAS for small recurrent workloads.

An RNN step multiplies small matrices (e.g. 50x64 by 64x256) thousands of times. OpenBLAS's worker threads
spin-wait between such calls; on a busy 2-core machine that made ``matmul`` ~100x slower than with one
thread (8 ms instead of 0.07 ms per call in our measurements). ``limit_blas_threads(1)`` asks every
loaded OpenBLAS to use ``n`` threads, unless the user chose a count with ``OPENBLAS_NUM_THREADS`` or
``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import ctypes
import os

_SYMBOLS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads_64_",
            "openblas_set_num_threads64_", "openblas_set_num_threads")


def _openblas_libraries() -> list[str]:
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        paths = set()
    if not paths:
        import glob

        import numpy as np

        base = os.path.dirname(os.path.dirname(np.__file__))
        paths = set(glob.glob(os.path.join(base, "numpy.libs", "*openblas*")))
    return sorted(paths)


def limit_blas_threads(n: int = 1) -> bool:
    """Set OpenBLAS's thread count to ``n``; returns True if a library took it. No-op (False) when the
    environment already fixes the count or no OpenBLAS is loaded."""
    if os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"):
        return False
    done = False
    for path in _openblas_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for sym in _SYMBOLS:
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                done = True
                break
    return done
