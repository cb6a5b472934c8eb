"""Which dtypes a Tensor may hold, and how Python/NumPy values become arrays.

Rules (documented in the README):
- float32 and float64 are the differentiable dtypes;
- integer and bool tensors may exist (indices, targets, masks) but never require grad;
- anything else (float16, complex, object, str, ...) is a ``TypeError``;
- Python data follows PyTorch: floats become float32, ints int64, bools bool (unless a dtype is
  given); an ndarray keeps its dtype;
- a non-Tensor operand of an op (Python or NumPy scalar, array) adopts the Tensor operand's float
  dtype, so float32 stays float32 when constants are mixed in (JAX's "weak types").
"""

from __future__ import annotations

from typing import Any

import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
bool_ = np.dtype(np.bool_)
FLOAT_DTYPES = (float32, float64)
DEFAULT_FLOAT = float32

DTypeLike = Any


def resolve(dtype: DTypeLike) -> np.dtype:
    """Map ``"float32"``, ``np.float64``, ... to an ``np.dtype`` we support, else ``TypeError``."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"unsupported dtype {dtype!r}") from exc
    check(dt, "tensor")
    return dt


def check(dt: np.dtype, op: str) -> None:
    if dt.kind not in "fiub" or (dt.kind == "f" and dt not in FLOAT_DTYPES):
        raise TypeError(
            f"{op}: unsupported dtype {dt}; minigrad supports float32 and float64 "
            "(and integer/bool tensors without gradients)"
        )


def is_float(dt: np.dtype) -> bool:
    return dt.kind == "f"


def as_array(data: Any, dtype: DTypeLike = None) -> np.ndarray:
    """Convert user data to an ndarray following the rules above."""
    if dtype is not None:
        dt = resolve(dtype)
        arr = np.asarray(data, dtype=dt)
    elif isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, np.generic):
        arr = np.asarray(data)
    elif isinstance(data, bool):
        arr = np.asarray(data)
    else:
        arr = np.asarray(data)
        if arr.dtype.kind == "f":
            arr = arr.astype(DEFAULT_FLOAT)
        elif arr.dtype.kind in "iu":
            arr = arr.astype(int64)
    check(arr.dtype, "tensor")
    return arr


def is_device(x: Any) -> bool:
    """Whether ``x`` names a device (``"cpu"``, ``"cuda:0"``, a ``torch.device``) rather than a dtype."""
    return (isinstance(x, str) and x.split(":")[0] in ("cpu", "cuda", "mps", "meta", "xla")) or \
        type(x).__name__ == "device"


def check_device(x: Any, op: str) -> None:
    """minigrad computes on the CPU: any other device is an error."""
    if x is not None and str(x).split(":")[0] != "cpu":
        raise ValueError(f"{op}: minigrad runs on the CPU only, got device {x!r}")
