"""Initialisers that fill a tensor in place (PyTorch's ``torch.nn.init`` formulas) and return it.

Every random initialiser takes ``rng``: a ``numpy.random.Generator`` (default: minigrad's global one,
``mg.default_rng()``, which ``mg.manual_seed(s)`` resets), so runs are reproducible. Values are drawn
in float64 and cast to the tensor's dtype.

For a weight of shape (out, in, *k): fan_in = in * prod(k), fan_out = out * prod(k).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..creation import default_rng
from ..tensor import Tensor

__all__ = [
    "calculate_gain", "constant_", "eye_", "glorot_normal_", "glorot_uniform_", "kaiming_normal_",
    "kaiming_uniform_", "normal_", "ones_", "orthogonal_", "uniform_", "xavier_normal_",
    "xavier_uniform_", "zeros_",
]


def _fill(t: Tensor, values: Any) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"init: expected a Tensor or Parameter, got {type(t).__name__}")
    if not t.data.flags.writeable:
        t.data = t.data.copy()
    t.data[...] = np.asarray(values).astype(t.dtype, copy=False)
    return t


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    if rng is None:
        return default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"init: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def calculate_fan_in_and_fan_out(t: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    if t.ndim < 2:
        raise ValueError(f"init: fan in/out need a tensor with at least 2 dimensions, got shape {t.shape}")
    receptive = int(np.prod(t.shape[2:])) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain: 1 for linear/sigmoid, 5/3 for tanh, sqrt(2) for relu,
    sqrt(2 / (1 + a^2)) for leaky_relu with slope a (default 0.01), 3/4 for selu."""
    if nonlinearity in ("linear", "identity", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    """Fill with U(a, b)."""
    if not a <= b:
        raise ValueError(f"uniform_: need a <= b, got a={a}, b={b}")
    return _fill(t, _rng(rng).uniform(a, b, t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    """Fill with N(mean, std^2)."""
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return _fill(t, _rng(rng).normal(mean, std, t.shape))


def constant_(t: Tensor, value: float) -> Tensor:
    return _fill(t, value)


def zeros_(t: Tensor) -> Tensor:
    return _fill(t, 0)


def ones_(t: Tensor) -> Tensor:
    return _fill(t, 1)


def eye_(t: Tensor) -> Tensor:
    """The identity matrix (2-D tensors)."""
    if t.ndim != 2:
        raise ValueError(f"eye_: needs a 2-D tensor, got shape {t.shape}")
    return _fill(t, np.eye(*t.shape))


def xavier_uniform_(t: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    """Glorot: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(t, _rng(rng).uniform(-a, a, t.shape))


def xavier_normal_(t: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    """Glorot: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(t, _rng(rng).normal(0.0, std, t.shape))


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     rng: np.random.Generator | None = None) -> Tensor:
    """He: U(-b, b) with b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).
    (``a = sqrt(5)`` gives PyTorch's Linear default U(-1/sqrt(fan_in), 1/sqrt(fan_in)).)"""
    b = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity)
    return _fill(t, _rng(rng).uniform(-b, b, t.shape))


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    rng: np.random.Generator | None = None) -> Tensor:
    """He: N(0, std^2) with std = gain / sqrt(fan)."""
    return _fill(t, _rng(rng).normal(0.0, _kaiming_std(t, a, mode, nonlinearity), t.shape))


def orthogonal_(t: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    """A (semi-)orthogonal matrix times ``gain``: rows (or columns, whichever are fewer) orthonormal.
    The tensor is viewed as (shape[0], prod(shape[1:])); Q of a QR decomposition of a Gaussian
    matrix, with signs fixed by diag(R) so the distribution is uniform (Haar)."""
    if t.ndim < 2:
        raise ValueError(f"orthogonal_: needs at least 2 dimensions, got shape {t.shape}")
    rows = t.shape[0]
    cols = t.size // rows if rows else 0
    if rows == 0 or cols == 0:
        return t
    flat = _rng(rng).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(t, gain * q.reshape(t.shape))
