"""``gradcheck``: compare backward's gradients with central finite differences.

For f: inputs -> outputs, the numerical Jacobian column for input entry x_k is

    dJ[:, k] ~= (f(x + eps e_k) - f(x - eps e_k)) / (2 eps)          (error O(eps^2))

and the analytical row for output entry y_j is what ``backward`` gives with the seed e_j. ``fast=True``
compares random projections v^T J u instead of every entry (one backward, two evaluations per probe).

Besides the numbers, while it runs every op's ``backward`` in the graph is watched: the gradients it
receives are read-only (an op that writes into one would corrupt every other op the engine handed the
same array to), and each gradient it returns must have its input's dtype (the engine would cast it
silently, hiding the lost precision). A non-leaf input is an independent variable, as in
``torch.autograd.gradcheck``: ``fn`` gets a leaf copy of it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ._state import no_grad
from .function import Function, Node
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` with a report of the worst mismatches (or of a broken backward)."""


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


def _flat(outs: list[Tensor]) -> np.ndarray:
    return np.concatenate([o.data.astype(np.float64).ravel() for o in outs])


def _flat_eval(fn: Callable[..., Any], inputs: Sequence[Tensor]) -> np.ndarray:
    with no_grad():
        return _flat(_outputs(fn, inputs))


def _label(i: int, t: Tensor) -> str:
    return f"input {i}" + (f" ({t.name})" if t.name else "") + f" {t.shape}"


def _grad_array(g: Any) -> Any:
    """A ``.grad`` as an ndarray, whether the engine stores an ndarray or a Tensor."""
    return g.data if isinstance(g, Tensor) else g


# ---------------------------------------------------------------------------- watching backward
_WATCHED: dict[type, type] = {}


def _check_returned(ctx: Node, res: Any) -> None:
    grads = res if isinstance(res, (tuple, list)) else (res,)
    for k, (t, g) in enumerate(zip(ctx.inputs, grads)):
        dt = getattr(g, "dtype", None)
        if dt is not None and ctx.needs_input_grad[k] and dt != t.dtype:
            raise GradcheckError(
                f"gradcheck: backward of op '{ctx.name}' returned a {dt} gradient for its input {k} "
                f"{t.shape} [{t.dtype}]; a gradient must have its input's dtype (the engine would cast "
                "it silently, hiding the lost precision)")


def _watched(cls: type[Function]) -> type[Function]:
    """A subclass of op ``cls`` whose backward gets read-only gradients and has its results' dtypes
    checked (one per op class, cached)."""
    sub = _WATCHED.get(cls)
    if sub is not None:
        return sub
    original = cls.backward

    def backward(ctx: Node, g: Any) -> Any:
        for a in g if isinstance(g, list) else (g,):
            if isinstance(a, np.ndarray):
                a.flags.writeable = False
        try:
            res = original(ctx, g)
        except ValueError as exc:
            if "read-only" not in str(exc):
                raise
            raise GradcheckError(
                f"gradcheck: backward of op '{ctx.name}' writes into its incoming gradient in place "
                f"({exc}). The engine may hand the same array to several ops (add passes its gradient "
                "to both inputs), so this corrupts the gradient of a sibling branch: compute a new "
                "array instead (g = g * 2, not g *= 2)") from exc
        _check_returned(ctx, res)
        return res

    sub = type(cls.__name__, (cls,), {"backward": staticmethod(backward), "name": cls.name or cls.__name__,
                                      "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                      "__doc__": cls.__doc__})
    _WATCHED[cls] = sub
    return sub


def _graph(outs: list[Tensor]) -> tuple[list[Node], list[Tensor]]:
    """Every node the outputs depend on, and every leaf that requires grad among their inputs."""
    seen: dict[int, Node] = {}
    leaves = {id(o): o for o in outs if o._node is None and o.requires_grad}
    stack = [o._node for o in outs if o._node is not None]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen[id(n)] = n
        for t in n.inputs:
            if t._node is not None:
                stack.append(t._node)
            elif t.requires_grad:
                leaves[id(t)] = t
    return list(seen.values()), list(leaves.values())


@contextmanager
def _watch(outs: list[Tensor]) -> Iterator[None]:
    """Watch every op's backward in the graph of ``outs``; afterwards the ops are restored and so are
    the ``.grad`` of leaves fn reached by itself (closures), which backward accumulated into."""
    nodes, leaves = _graph(outs)
    originals = [n.fn for n in nodes]
    grads = [t.grad for t in leaves]
    for t in leaves:  # backward accumulates into .grad in place: keep the caller's out of reach
        t.grad = None
    try:
        for n in nodes:
            n.fn = _watched(n.fn)
        yield
    finally:
        for n, f in zip(nodes, originals):
            n.fn = f
        for t, g in zip(leaves, grads):
            t.grad = g


# ---------------------------------------------------------------------------- checks
def _leaf_inputs(inputs: list[Any]) -> list[Any]:
    """The inputs ``fn`` is called with: a non-leaf tensor that requires grad becomes a leaf copy
    (it is an independent variable, and perturbing it must not touch the caller's graph)."""
    out = []
    for t in inputs:
        if isinstance(t, Tensor) and t.requires_grad and t._node is not None:
            t = Tensor(t.data.copy(), requires_grad=True, name=t.name)
        out.append(t)
    return out


def _check_deterministic(fn: Callable[..., Any], inputs: list[Any], f0: np.ndarray, eps: float,
                         atol: float, rtol: float) -> None:
    """Two evaluations at the same point must agree to well below what the differences can see."""
    f1 = _flat_eval(fn, inputs)
    if f1.shape != f0.shape:
        raise GradcheckError(f"gradcheck: fn is not deterministic: two evaluations at the same inputs "
                             f"returned {f0.size} and {f1.size} numbers")
    with np.errstate(invalid="ignore"):
        diff = np.where(np.isnan(f0) & np.isnan(f1), 0.0, np.abs(f0 - f1))
    tol = eps * (atol + rtol * np.abs(np.nan_to_num(f0)))
    bad = ~(diff <= tol)
    if bad.any():
        j = int(np.argmax(np.where(bad, np.nan_to_num(diff, nan=np.inf), -1)))
        raise GradcheckError(
            f"gradcheck: fn is not deterministic: two evaluations at the same inputs differ (output {j}: "
            f"{f0[j]:.6g} then {f1[j]:.6g}), so finite differences mean nothing. Randomness inside fn "
            "(dropout, sampling) must be fixed to check gradients: a seeded rng, a fixed mask, or eval mode")


def _analytic_pass(outs: list[Tensor], seeds: list[np.ndarray], targets: list[Tensor],
                   labels: list[str]) -> list[np.ndarray]:
    """Gradients of sum_o <seed_o, out_o> w.r.t. every target (zeros where none flows)."""
    for t in targets:
        t.grad = None
    with _watch(outs):
        for o, s in zip(outs, seeds):
            if o.requires_grad and np.any(s):
                o.backward(s.reshape(o.shape).astype(o.dtype), retain_graph=True)
        grads = [_grad_array(t.grad) for t in targets]
    res = []
    for i, (t, g) in enumerate(zip(targets, grads)):
        if g is None:
            res.append(np.zeros(t.shape))
            continue
        if g.shape != t.shape or g.dtype != t.dtype:
            raise GradcheckError(f"gradcheck: gradient of {labels[i]} [{t.dtype}] has shape "
                                 f"{g.shape} and dtype {g.dtype}")
        res.append(g.astype(np.float64))
    return res


def _mismatch(analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """|analytic - numeric| > atol + rtol |numeric|, where NaN on one side only is a mismatch too."""
    with np.errstate(invalid="ignore"):
        ok = np.abs(analytic - numeric) <= atol + rtol * np.abs(numeric)
    return ~(ok | (np.isnan(analytic) & np.isnan(numeric)))


def _fast_failures(fn: Callable[..., Any], inputs: list[Any], outs: list[Tensor], targets: list[Tensor],
                   labels: list[str], eps: float, atol: float, rtol: float, n_probes: int,
                   seed: int) -> list[tuple[float, str]]:
    """``n_probes`` random projections v^T J u: one backward and two evaluations each."""
    sizes = [o.size for o in outs]
    rng = np.random.default_rng(seed)
    failures = []
    for p in range(n_probes):
        v = rng.standard_normal(sum(sizes))
        us = [rng.standard_normal(t.shape) for t in targets]
        grads = _analytic_pass(outs, list(np.split(v, np.cumsum(sizes)[:-1])), targets, labels)
        analytic = sum(float(np.sum(g * u)) for g, u in zip(grads, us))
        origs = [t.data for t in targets]
        try:
            for t, o, u in zip(targets, origs, us):
                t.data = (o + eps * u).astype(t.dtype)
            fp = _flat_eval(fn, inputs)
            for t, o, u in zip(targets, origs, us):
                t.data = (o - eps * u).astype(t.dtype)
            fm = _flat_eval(fn, inputs)
        finally:
            for t, o in zip(targets, origs):
                t.data = o
        numeric = float(v @ (fp - fm)) / (2 * eps)
        err = abs(analytic - numeric)
        if _mismatch(np.asarray(analytic), np.asarray(numeric), atol, rtol):
            failures.append((err, f"probe {p}: v^T J u analytic {analytic:.6g} "
                                  f"numeric {numeric:.6g} |diff| {err:.3g}"))
    return failures


def _numeric_columns(fn: Callable[..., Any], inputs: list[Any], t: Tensor, n_out: int,
                     eps: float) -> np.ndarray:
    """The (n_out, t.size) block of the Jacobian for input ``t`` by central differences."""
    flat = t.data.reshape(-1)
    if not flat.flags.writeable or not np.shares_memory(flat, t.data):
        t.data = t.data.copy()
        flat = t.data.reshape(-1)
    numeric = np.empty((n_out, t.size))
    for k in range(t.size):
        old = flat[k]
        try:
            flat[k] = old + eps
            fp = _flat_eval(fn, inputs)
            flat[k] = old - eps
            fm = _flat_eval(fn, inputs)
        finally:
            flat[k] = old
        numeric[:, k] = (fp - fm) / (2 * eps)
    return numeric


def _full_failures(fn: Callable[..., Any], inputs: list[Any], outs: list[Tensor], targets: list[Tensor],
                   labels: list[str], eps: float, atol: float, rtol: float) -> list[tuple[float, str]]:
    """Every entry of the Jacobian: one backward per output entry, two evaluations per input entry."""
    sizes = [o.size for o in outs]
    n_out = sum(sizes)
    rows = []
    for j in range(n_out):
        e = np.zeros(n_out)
        e[j] = 1.0
        rows.append(_analytic_pass(outs, list(np.split(e, np.cumsum(sizes)[:-1])), targets, labels))
    failures = []
    for i, t in enumerate(targets):
        analytic = np.stack([r[i].ravel() for r in rows]) if rows else np.zeros((0, t.size))
        numeric = _numeric_columns(fn, inputs, t, n_out, eps)
        err = np.abs(analytic - numeric)
        bad = _mismatch(analytic, numeric, atol, rtol)
        for j, k in zip(*np.nonzero(bad)):
            idx = np.unravel_index(k, t.shape) if t.shape else ()
            failures.append((float(err[j, k]),
                             f"{labels[i]} at {tuple(int(x) for x in idx)}, output {j}: analytic "
                             f"{analytic[j, k]:.6g} numeric {numeric[j, k]:.6g} |diff| {err[j, k]:.3g}"))
    return failures


def gradcheck(fn: Callable[..., Any], inputs: Sequence[Any], eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, fast: bool = False, n_probes: int = 3, seed: int = 0) -> bool:
    """Check ``fn(*inputs)``'s backward against float64 central differences.

    Every input with ``requires_grad`` is checked (a non-leaf one as an independent variable, like a
    leaf). Full Jacobians by default; ``fast=True`` checks ``n_probes`` random projections v^T J u.
    Entries pass when |analytic - numeric| <= atol + rtol |numeric|. Returns True or raises
    ``GradcheckError`` listing the worst entries, or saying that ``fn`` is not deterministic, that an
    op's backward returned a gradient of the wrong dtype or shape, or wrote into its incoming gradient.
    The inputs' ``.data`` and ``.grad`` are restored afterwards.
    """
    given = list(inputs)
    inputs = _leaf_inputs(given)
    chosen = [(k, t) for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not chosen:
        raise ValueError("gradcheck: no input requires grad")
    targets = [t for _, t in chosen]
    labels = [_label(k, t) for k, t in chosen]
    for t in targets:
        if t.dtype != np.float64:
            warnings.warn(f"gradcheck: {t.shape} input is {t.dtype}; finite differences need float64 "
                          "to be accurate", RuntimeWarning, stacklevel=2)
    saved = [t.grad for t in targets]
    for t in targets:
        t.grad = None
    try:
        outs = _outputs(fn, inputs)
        _check_deterministic(fn, inputs, _flat(outs), eps, atol, rtol)
        if fast:
            failures = _fast_failures(fn, inputs, outs, targets, labels, eps, atol, rtol, n_probes, seed)
        else:
            failures = _full_failures(fn, inputs, outs, targets, labels, eps, atol, rtol)
        if failures:
            failures.sort(key=lambda f: -np.nan_to_num(f[0], nan=np.inf))  # NaN first
            lines = "\n  ".join(m for _, m in failures[:10])
            raise GradcheckError(f"gradcheck: {len(failures)} mismatch(es) (atol={atol}, rtol={rtol}, "
                                 f"eps={eps}); worst first:\n  {lines}")
        return True
    finally:
        for t, g in zip(targets, saved):
            t.grad = g
