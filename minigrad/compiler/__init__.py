"""The compiler (``minigrad.compile``): trace a function into an IR, derive its backward by the
engine's rules, fuse pointwise regions, generate readable Numba source for both directions.

Modules: ``trace`` (recording -> ``ir.Graph``), ``fuse`` (loops and array statements), ``scalar``
(a formula as Numba scalar code), ``codegen`` (the forward), ``derive`` (the backward), ``cache``
(modules on disk), ``api`` (``compile``, ``Compiled``, the graph node), ``recurrence``
(``compile_scan``), ``workspace`` (its reusable buffers), ``unroll`` (a scan node as its eager graph,
for drawings). They are imported on first use, so ``import minigrad`` stays quick.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .. import _state
from .ir import CompileError


def compile(fn: Callable[..., Any]) -> Any:  # noqa: A001
    """Compile ``fn`` (Tensors in, Tensors out, minigrad ops inside) into generated Numba code; returns
    a ``Compiled`` callable (see ``minigrad.compiler.api``)."""
    from .api import Compiled

    return Compiled(fn)


def compile_scan(fn: Callable[..., Any], prologue: Callable[..., Any] | None = None, *,
                 recompute: bool = False) -> Any:
    """``fn(carry, x) -> (carry, y)`` compiled as a whole recurrence, called as
    ``compile_scan(fn)(init, xs, reverse=False) -> (carry_T, ys)`` (see ``minigrad.compiler.recurrence``).
    ``prologue(xs) -> xs'``: the input-only part, run once on the whole sequence before the loop (an
    input projection: one product over all T*B rows) and compiled into the same node.
    ``recompute=True`` keeps only the carry of every step for the backward (and the left operand of a
    recurrent product made inside the step, ``(r * h) @ W^T``), which runs each step's forward again
    (JAX's ``jax.checkpoint`` on the body): less memory, about one more forward of time."""
    from .recurrence import Scan

    return Scan(fn, prologue=prologue, recompute=recompute)


def unroll(node: Any, seeds: Any = None) -> Any:
    """The eager graph behind a ``compile_scan`` node (an ``Unrolled``: outputs and the inputs' stand-ins),
    None for any other node; see ``minigrad.compiler.unroll``. Drawings use it to show every step."""
    from .unroll import unroll as _unroll

    return _unroll(node, seeds)


def compiles_by_default() -> bool:
    """What ``compile=None`` (the default of ``rnn`` layers) means now: ``$MINIGRAD_COMPILE`` when set
    (``0`` or ``1``); else True unless Numba's JIT is off (``NUMBA_DISABLE_JIT=1``), where generated code
    would run as plain Python loops, slower than the eager graph's NumPy calls."""
    env = os.environ.get("MINIGRAD_COMPILE", "").strip()
    if env in ("0", "1"):
        return env == "1"
    if env:
        raise ValueError(f"MINIGRAD_COMPILE must be 0 or 1, got {env!r}")
    import numba

    return not numba.config.DISABLE_JIT


def is_tracing() -> bool:
    """Whether a function is being traced by ``compile`` now (code with a shortcut that reads tensor
    values, such as skipping a product with a zero state, must not take it while tracing)."""
    return _state.tracer is not None


def __getattr__(name: str) -> Any:
    if name == "Compiled":
        from .api import Compiled

        return Compiled
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CompileError", "Compiled", "compile", "compile_scan", "compiles_by_default", "is_tracing",
           "unroll"]
