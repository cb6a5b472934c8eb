"""BLAS for generated code that runs inside Numba (a compiled recurrence's loops).

``dot(a, b)`` is ``np.dot``, jitted once per dtype and memory layout and cached on disk like every
kernel here. A generated module that calls it links this compiled code; one that called ``np.dot``
itself would have Numba type and compile its BLAS wrapper again for every new program (measured:
0.25-0.5 s per product in a cold LSTM recurrence, about a third of its compile time).
"""

from __future__ import annotations

import numpy as np

from ._jit import lazy_kernels


def _dot(a, b):
    """a @ b for 2-D float arrays of one dtype (BLAS gemm)."""
    return np.dot(a, b)


__getattr__ = lazy_kernels(globals(), error_model="numpy")
