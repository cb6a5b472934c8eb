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

    try:
        return numba.njit(cache=True, **options)(py)
    except RuntimeError as exc:  # "cannot cache function ...: no locator available"
        warnings.warn(f"minigrad: Numba cache unavailable ({exc}); compiling without cache",
                      RuntimeWarning, stacklevel=3)
        return numba.njit(cache=False, **options)(py)


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
