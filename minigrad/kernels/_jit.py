"""Lazy ``@njit(cache=True)`` with a fallback when no cache directory is writable."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any


def jit(py: Callable, **options: Any) -> Callable:
    """``numba.njit(cache=True, **options)(py)``; without caching if Numba finds no writable cache dir.

    Numba looks for a cache directory (``__pycache__`` beside the source, then ``NUMBA_CACHE_DIR``, then
    a per-user directory) when the decorator runs and raises ``RuntimeError`` if none is writable: a
    read-only install then compiles in memory on every process start instead of failing.
    """
    import numba

    return _cached(lambda cache: numba.njit(cache=cache, **options)(py))


def cfunc(signature: Any, py: Callable, **options: Any) -> Any:
    """``numba.cfunc(signature, cache=True, **options)(py)`` (a C callable: ``.address``), with
    ``jit``'s fallback when no cache directory is writable."""
    import numba

    return _cached(lambda cache: numba.cfunc(signature, cache=cache, **options)(py))


def _cached(make: Callable[[bool], Any]) -> Any:
    try:
        return make(True)
    except RuntimeError as exc:  # "cannot cache function ...: no locator available"
        warnings.warn(f"minigrad: Numba cache unavailable ({exc}); compiling without cache",
                      RuntimeWarning, stacklevel=4)
        return make(False)


def lazy_kernels(namespace: dict[str, Any], **options: Any) -> Callable[[str], Callable]:
    """A module ``__getattr__`` that jits ``_name`` into ``name`` on first access and caches it."""

    def __getattr__(name: str) -> Callable:  # noqa: N807
        py = namespace.get("_" + name)
        if name.startswith("_") or not callable(py):
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        fn = jit(py, **options)
        namespace[name] = fn
        return fn

    return __getattr__
