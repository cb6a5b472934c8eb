"""Gradient clipping with PyTorch's semantics: ``clip_grad_norm_`` and ``clip_grad_value_``; ``grad_norm``.

Gradients are read and written only through ``grad_array``/``set_grad`` below, so this works whether
``.grad`` holds an ndarray or a Tensor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "grad_array", "grad_norm", "set_grad"]


def grad_array(p: Tensor) -> np.ndarray | None:
    """``p.grad`` as an ndarray (None when there is none), whether ``.grad`` is an ndarray or a Tensor."""
    g = p.grad
    if g is None:
        return None
    return g.data if isinstance(g, Tensor) else np.asarray(g)


def set_grad(p: Tensor, arr: np.ndarray) -> None:
    """Store ``arr`` as ``p``'s gradient: written into the existing gradient when that is possible
    (same shape and dtype, writable: PyTorch's in-place ``grad.mul_``), else assigned."""
    g = p.grad
    cur = g.data if isinstance(g, Tensor) else g
    if (isinstance(cur, np.ndarray) and cur.shape == arr.shape and cur.dtype == arr.dtype
            and cur.flags.writeable):
        np.copyto(cur, arr)
    elif isinstance(g, Tensor):
        g.data = arr
    else:
        p.grad = arr


def _params(parameters: Tensor | Iterable[Tensor], fn: str) -> list[Tensor]:
    ps = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in ps:
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: expected Tensors/Parameters, got {type(p).__name__}")
    return ps


def _norm_order(norm_type: Any, fn: str) -> float:
    p = float(norm_type)
    if math.isnan(p) or (p <= 0 and not math.isinf(p)) or p == -math.inf:
        raise ValueError(f"{fn}: norm_type must be > 0 or inf, got {norm_type}")
    return p


def _total_norm(grads: list[np.ndarray], p: float) -> float:
    """(sum_i ||g_i||_p^p)^(1/p) over all gradients as one vector (max_i |g_i| for p = inf), float64."""
    if not grads:
        return 0.0
    if math.isinf(p):
        return float(max(np.max(np.abs(g), initial=0.0) for g in grads))
    norms = np.array([np.linalg.norm(np.asarray(g, np.float64).ravel(), p) for g in grads])
    return float(np.linalg.norm(norms, p))


def grad_norm(parameters: Tensor | Iterable[Tensor], norm_type: float = 2.0) -> float:
    """The ``norm_type``-norm of all gradients taken together (as one long vector), as a Python float
    computed in float64: (sum_i ||g_i||_p^p)^(1/p), or max_i |g_i| for p = inf. 0.0 when no parameter
    has a gradient. Measures only (no clipping)."""
    p = _norm_order(norm_type, "grad_norm")
    ps = _params(parameters, "grad_norm")
    return _total_norm([g for g in map(grad_array, ps) if g is not None], p)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = True) -> Tensor:
    """Scale all gradients in place by min(1, max_norm / (total + 1e-6)), where total is ``grad_norm``
    over all of them (``norm_type`` 2, 1, ..., or ``float('inf')``). Returns total (before clipping)
    as a 0-d Tensor of the gradients' dtype, as PyTorch does: ``float(norm)``, ``norm.item()`` and
    ``f"{norm:.3f}"`` give the number.

    ``max_norm`` must be >= 0 (a negative or NaN one is a ``ValueError``). If total is NaN or inf:
    ``RuntimeError`` when ``error_if_nonfinite`` (nothing is changed), else the gradients are scaled
    anyway (by NaN or 0, as PyTorch does)."""
    fn = "clip_grad_norm_"
    m = float(max_norm)
    if not m >= 0:
        raise ValueError(f"{fn}: max_norm must be >= 0, got {max_norm}")
    order = _norm_order(norm_type, fn)
    ps = [p for p in _params(parameters, fn) if p.grad is not None]
    grads = [grad_array(p) for p in ps]
    total = _total_norm(grads, order)
    dt = np.result_type(*grads) if grads else np.dtype(np.float32)
    if not math.isfinite(total) and error_if_nonfinite:
        raise RuntimeError(f"{fn}: the total norm of order {norm_type} of the gradients is {total}, so "
                           "they cannot be clipped; pass error_if_nonfinite=False to scale them anyway")
    with np.errstate(invalid="ignore", divide="ignore"):
        coef = m / (total + 1e-6)
    coef = min(coef, 1.0) if not math.isnan(coef) else coef
    if coef != 1.0:
        done: set[int] = set()  # a gradient array shared by two parameters is scaled once
        for p, g in zip(ps, grads):
            if id(g) not in done:
                done.add(id(g))
                with np.errstate(invalid="ignore", over="ignore"):
                    set_grad(p, (g * np.asarray(coef, g.dtype)).astype(g.dtype, copy=False))
    return Tensor(np.asarray(total, dt))


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value] in place (NaN stays NaN)."""
    c = float(clip_value)
    if not c >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p in _params(parameters, "clip_grad_value_"):
        g = grad_array(p)
        if g is not None:
            set_grad(p, np.clip(g, -c, c).astype(g.dtype, copy=False))
