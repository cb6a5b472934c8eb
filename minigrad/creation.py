"""Tensor creation: ``tensor``, ``zeros``, ``ones``, ``randn``, ... with ``dtype``, ``requires_grad`` and
``device`` (PyTorch's keyword: only the CPU is accepted).

Random creation draws from minigrad's global ``numpy.random.Generator`` (``mg.manual_seed(s)`` resets
it) unless a ``rng`` is passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import dtypes
from .tensor import Tensor

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator used by ``randn``/``rand`` and initialisers; returns it."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def default_rng() -> np.random.Generator:
    return _rng


def _shape(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = shape[0]
    return tuple(map(int, shape))  # (a generator costs ~0.4 us more: layers make zero states per call)


def _new(arr: np.ndarray, requires_grad: bool, device: Any = None) -> Tensor:
    dtypes.check_device(device, "tensor creation")
    return Tensor(arr, requires_grad=requires_grad)


def tensor(data: Any, dtype: dtypes.DTypeLike = None, requires_grad: bool = False,
           device: Any = None) -> Tensor:
    """A leaf tensor holding a copy of ``data`` (as ``torch.tensor``). ndarrays keep their dtype;
    Python floats become float32, ints int64, bools bool."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        data = data.copy()
    dtypes.check_device(device, "tensor")
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def from_numpy(arr: np.ndarray) -> Tensor:
    """A leaf tensor sharing ``arr``'s memory (as ``torch.from_numpy``): in-place updates of one show
    in the other."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"from_numpy: expected an ndarray, got {type(arr).__name__}")
    return Tensor(arr)


def zeros(*shape: Any, dtype: dtypes.DTypeLike = "float32", requires_grad: bool = False,
          device: Any = None) -> Tensor:
    return _new(np.zeros(_shape(shape), dtypes.resolve(dtype)), requires_grad, device)


def ones(*shape: Any, dtype: dtypes.DTypeLike = "float32", requires_grad: bool = False,
         device: Any = None) -> Tensor:
    return _new(np.ones(_shape(shape), dtypes.resolve(dtype)), requires_grad, device)


def full(shape: Any, fill_value: float, dtype: dtypes.DTypeLike = "float32",
         requires_grad: bool = False, device: Any = None) -> Tensor:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return _new(np.full(shape, fill_value, dtypes.resolve(dtype)), requires_grad, device)


def zeros_like(t: Tensor, dtype: dtypes.DTypeLike = None, requires_grad: bool = False,
               device: Any = None) -> Tensor:
    return _new(np.zeros(t.shape, dtypes.resolve(dtype or t.dtype)), requires_grad, device)


def ones_like(t: Tensor, dtype: dtypes.DTypeLike = None, requires_grad: bool = False,
              device: Any = None) -> Tensor:
    return _new(np.ones(t.shape, dtypes.resolve(dtype or t.dtype)), requires_grad, device)


def randn(*shape: Any, dtype: dtypes.DTypeLike = "float32", requires_grad: bool = False,
          rng: np.random.Generator | None = None, device: Any = None) -> Tensor:
    """Standard normal samples."""
    dt = dtypes.resolve(dtype)
    return _new((rng or _rng).standard_normal(_shape(shape)).astype(dt), requires_grad, device)


def rand(*shape: Any, dtype: dtypes.DTypeLike = "float32", requires_grad: bool = False,
         rng: np.random.Generator | None = None, device: Any = None) -> Tensor:
    """Uniform samples on [0, 1)."""
    dt = dtypes.resolve(dtype)
    return _new((rng or _rng).random(_shape(shape)).astype(dt), requires_grad, device)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: dtypes.DTypeLike = None,
           requires_grad: bool = False, device: Any = None) -> Tensor:
    """NumPy's ``arange``; integer arguments give int64 unless a dtype is given."""
    arr = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is not None:
        arr = arr.astype(dtypes.resolve(dtype))
    elif arr.dtype.kind == "f":
        arr = arr.astype(dtypes.DEFAULT_FLOAT)
    return _new(arr, requires_grad, device)


def linspace(start: float, end: float, steps: int, dtype: dtypes.DTypeLike = "float32",
             requires_grad: bool = False, device: Any = None) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive, as ``torch.linspace``."""
    return _new(np.linspace(start, end, int(steps)).astype(dtypes.resolve(dtype)), requires_grad, device)


def eye(n: int, m: int | None = None, dtype: dtypes.DTypeLike = "float32",
        requires_grad: bool = False, device: Any = None) -> Tensor:
    return _new(np.eye(n, m, dtype=dtypes.resolve(dtype)), requires_grad, device)


def randint(low: int, high: Any = None, size: Any = None, dtype: dtypes.DTypeLike = "int64",
            rng: np.random.Generator | None = None, device: Any = None) -> Tensor:
    """Integers uniform in [low, high), as ``torch.randint(low, high, size)`` or
    ``torch.randint(high, size)``."""
    if size is None:
        (low, high), size = (0, low), (() if high is None else high)
    shape = (int(size),) if isinstance(size, (int, np.integer)) else tuple(int(k) for k in size)
    return _new((rng or _rng).integers(low, high, size=shape).astype(dtypes.resolve(dtype)), False, device)


def randperm(n: int, dtype: dtypes.DTypeLike = "int64", rng: np.random.Generator | None = None,
             device: Any = None) -> Tensor:
    """A random permutation of 0..n-1, as ``torch.randperm``."""
    return _new((rng or _rng).permutation(int(n)).astype(dtypes.resolve(dtype)), False, device)
