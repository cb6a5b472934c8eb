"""``gradcheck``: compare backward's gradients with central finite differences.

For f: inputs -> outputs, the numerical Jacobian column for input entry x_k is

    dJ[:, k] ~= (f(x + eps e_k) - f(x - eps e_k)) / (2 eps)          (error O(eps^2))

and the analytical row for output entry y_j is what ``backward`` gives with the seed e_j. ``fast=True``
compares random projections v^T J u instead of every entry (one backward, two evaluations per probe).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._state import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` with a report of the worst mismatches."""


def _flatten(out: Any) -> list[Any]:
    """Tensors of a (nested) tuple or list of outputs, e.g. ``max(x, dim)``'s (values, indices)."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    return [out]


def _outputs(fn: Callable[..., Any], inputs: Sequence[Tensor]) -> list[Tensor]:
    outs = _flatten(fn(*inputs))
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: fn must return Tensors, got {type(o).__name__}")
    return outs


def _flat_eval(fn: Callable[..., Any], inputs: Sequence[Tensor]) -> np.ndarray:
    with no_grad():
        return np.concatenate([o.data.astype(np.float64).ravel() for o in _outputs(fn, inputs)])


def _label(i: int, t: Tensor) -> str:
    return f"input {i}" + (f" ({t.name})" if t.name else "") + f" {t.shape}"


def _analytic_pass(outs: list[Tensor], seeds: list[np.ndarray], targets: list[Tensor],
                   labels: list[str]) -> list[np.ndarray]:
    """Gradients of sum_o <seed_o, out_o> w.r.t. every target (zeros where none flows)."""
    for t in targets:
        t.grad = None
    for o, s in zip(outs, seeds):
        if o.requires_grad and np.any(s):
            o.backward(s.reshape(o.shape).astype(o.dtype), retain_graph=True)
    res = []
    for i, t in enumerate(targets):
        g = t.grad
        if g is None:
            res.append(np.zeros(t.shape))
            continue
        if g.shape != t.shape or g.dtype != t.dtype:
            raise GradcheckError(f"gradcheck: gradient of {labels[i]} [{t.dtype}] has shape "
                                 f"{g.shape} and dtype {g.dtype}")
        res.append(g.astype(np.float64))
    return res


def gradcheck(fn: Callable[..., Any], inputs: Sequence[Tensor], eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, fast: bool = False, n_probes: int = 3, seed: int = 0) -> bool:
    """Check ``fn(*inputs)``'s backward against float64 central differences.

    Every input with ``requires_grad`` is checked. Full Jacobians by default; ``fast=True`` checks
    ``n_probes`` random projections v^T J u. Entries pass when |analytic - numeric| <= atol + rtol |numeric|.
    Returns True or raises ``GradcheckError`` listing the worst entries. The inputs' ``.grad`` are
    restored afterwards.
    """
    inputs = list(inputs)
    targets = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    labels = [_label(k, t) for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not targets:
        raise ValueError("gradcheck: no input requires grad")
    for t in targets:
        if t.dtype != np.float64:
            warnings.warn(f"gradcheck: {t.shape} input is {t.dtype}; finite differences need float64 "
                          "to be accurate", RuntimeWarning, stacklevel=2)
    saved = [t.grad for t in targets]
    try:
        outs = _outputs(fn, inputs)
        sizes = [o.size for o in outs]
        n_out = sum(sizes)
        failures: list[tuple[float, str]] = []
        if fast:
            rng = np.random.default_rng(seed)
            for p in range(n_probes):
                v = rng.standard_normal(n_out)
                us = [rng.standard_normal(t.shape) for t in targets]
                seeds = np.split(v, np.cumsum(sizes)[:-1])
                grads = _analytic_pass(outs, list(seeds), targets, labels)
                analytic = sum(float(np.sum(g * u)) for g, u in zip(grads, us))
                origs = [t.data.copy() for t in targets]
                for t, u in zip(targets, us):
                    t.data = (t.data + eps * u).astype(t.dtype)
                fp = _flat_eval(fn, inputs)
                for t, o, u in zip(targets, origs, us):
                    t.data = (o - eps * u).astype(t.dtype)
                fm = _flat_eval(fn, inputs)
                for t, o in zip(targets, origs):
                    t.data = o
                numeric = float(v @ (fp - fm)) / (2 * eps)
                err = abs(analytic - numeric)
                if err > atol + rtol * abs(numeric):
                    failures.append((err, f"probe {p}: v^T J u analytic {analytic:.6g} "
                                          f"numeric {numeric:.6g} |diff| {err:.3g}"))
        else:
            rows = []
            for j in range(n_out):
                e = np.zeros(n_out)
                e[j] = 1.0
                rows.append(_analytic_pass(outs, list(np.split(e, np.cumsum(sizes)[:-1])), targets, labels))
            for i, t in enumerate(targets):
                flat = t.data.reshape(-1)
                if not flat.flags.writeable or not np.shares_memory(flat, t.data):
                    t.data = t.data.copy()
                    flat = t.data.reshape(-1)
                analytic = np.stack([r[i].ravel() for r in rows]) if rows else np.zeros((0, t.size))
                numeric = np.empty_like(analytic)
                for k in range(t.size):
                    old = flat[k]
                    flat[k] = old + eps
                    fp = _flat_eval(fn, inputs)
                    flat[k] = old - eps
                    fm = _flat_eval(fn, inputs)
                    flat[k] = old
                    numeric[:, k] = (fp - fm) / (2 * eps)
                err = np.abs(analytic - numeric)
                bad = err > atol + rtol * np.abs(numeric)
                for j, k in zip(*np.nonzero(bad)):
                    idx = np.unravel_index(k, t.shape) if t.shape else ()
                    failures.append((float(err[j, k]),
                                     f"{labels[i]} at {tuple(int(x) for x in idx)}, "
                                     f"output {j}: analytic {analytic[j, k]:.6g} numeric "
                                     f"{numeric[j, k]:.6g} |diff| {err[j, k]:.3g}"))
        if failures:
            failures.sort(key=lambda f: -f[0])
            lines = "\n  ".join(m for _, m in failures[:10])
            raise GradcheckError(f"gradcheck: {len(failures)} mismatch(es) (atol={atol}, rtol={rtol}, "
                                 f"eps={eps}); worst first:\n  {lines}")
        return True
    finally:
        for t, g in zip(targets, saved):
            t.grad = g
