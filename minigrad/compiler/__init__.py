"""The compiler (``minigrad.compile``): trace a function into an IR, derive its backward by the
engine's rules, fuse pointwise regions, generate readable Numba source for both directions.

Modules: ``trace`` (recording -> ``ir.Graph``), ``fuse`` (loops and array statements), ``scalar``
(a formula as Numba scalar code), ``codegen`` (the forward), ``derive`` (the backward), ``cache``
(modules on disk), ``api`` (``compile``, ``Compiled``, the graph node).
"""

from .api import Compiled, compile, is_tracing  # noqa: A004
from .ir import CompileError

__all__ = ["CompileError", "Compiled", "compile", "is_tracing"]
