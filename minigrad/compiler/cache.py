"""Generated modules on disk: ``<cache dir>/mg_<hash>.py``, jitted with Numba's ``cache=True``.

The file name is a hash of the source (which spells out the whole graph: shapes, dtypes, ops), of
``minigrad/kernels/fastmath.py`` and ``linalg.py`` (compiled into the loops; Numba's own cache would
not notice a change there) and of the Numba version, so a file is never
rewritten and a new process finds both the module and Numba's compiled code beside it. The directory
is ``$MINIGRAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/minigrad`` (``~/.cache/minigrad``), else the
system's temporary directory; when none is writable the module is compiled in memory (correct, only
slower to start).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path

from ..kernels._jit import jit
from ..kernels.fastmath import vectorising
from ..serialization import atomic_write

#: LLVM's loop-vectoriser limits on runtime alias checks (defaults 8 and 128). Numba's arrays carry no
#: ``noalias``, so a fused loop that reads and writes many arrays (a peephole LSTM's forward: 6 read, 7
#: written) needs more pointer checks than the default allows and stays scalar ("loop not vectorized:
#: too many memory checks needed"): measured 3x slower than the LSTM's vectorised loop. The checks
#: only choose between the SIMD and the scalar loop at run time, so results do not change.
VECTORIZER = ("-runtime-memory-check-threshold=64", "-vectorize-memory-check-threshold=512")


@functools.cache
def _salt() -> str:
    import numba

    kernels = Path(__file__).resolve().parents[1] / "kernels"
    code = b"".join((kernels / name).read_bytes() for name in ("fastmath.py", "linalg.py"))
    # not linalg.BLAS: the compiled code calls the gemm by symbol name, whichever library it is; the
    # jit options (fastmath.vectorising) are in fastmath.py's bytes
    return hashlib.sha256(code + numba.__version__.encode() + repr(VECTORIZER).encode()).hexdigest()


@functools.cache
def _allow_alias_checks() -> None:
    """Raise the limits in ``VECTORIZER`` (LLVM options, process-wide, for code compiled afterwards)."""
    import llvmlite.binding as llb

    for option in VECTORIZER:
        llb.set_option("minigrad", option)


def cache_dir() -> Path | None:
    """The first writable directory of the list in the module docstring, or None."""
    env = os.environ.get("MINIGRAD_CACHE_DIR")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for d in ([env] if env else []) + [os.path.join(xdg, "minigrad"), os.path.join(tempfile.gettempdir(),
                                                                                   f"minigrad-{_uid()}")]:
        p = Path(d) / "compiled"
        try:
            p.mkdir(parents=True, exist_ok=True)
            if os.access(p, os.W_OK):
                return p
        except OSError:
            continue
    return None


def _uid() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else "user"


def load(source: str, jit_all: bool = False) -> types.ModuleType:
    """The module ``source`` with its ``loop_*`` functions jitted (cached on disk when possible), or
    every function with ``jit_all``: a compiled recurrence calls the step's drivers from Numba, and they
    and their loops are inlined into its ``scan_*`` functions (Numba IR inlining; compiled as separate
    functions, LLVM would optimise each callee again in every caller it is linked into: ~25% slower
    to compile)."""
    key = hashlib.sha256(source.encode() + _salt().encode() + bytes([jit_all])).hexdigest()[:24]
    modname = f"minigrad_compiled_{key}"
    mod = sys.modules.get(modname)
    if mod is None:
        _allow_alias_checks()
        mod = _import(source, modname)
        for name, fn in list(vars(mod).items()):
            if (jit_all or name.startswith("loop_")) and isinstance(fn, types.FunctionType):
                inline = jit_all and not name.startswith("scan_")
                setattr(mod, name, _jit(fn, mod.__file__ is not None, inline))
    return mod


def _import(source: str, modname: str) -> types.ModuleType:
    d = cache_dir()
    if d is not None:
        path = d / f"{modname}.py"
        try:
            if not path.exists() or path.read_text() != source:
                atomic_write(path, lambda f: f.write(source.encode()))
            spec = importlib.util.spec_from_file_location(modname, path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            sys.modules[modname] = mod
            return mod
        except OSError:
            pass
    mod = types.ModuleType(modname)
    mod.__file__ = None
    exec(compile(source, f"<{modname}>", "exec"), mod.__dict__)
    sys.modules[modname] = mod
    return mod


def _jit(fn: Callable, on_disk: bool, inline: bool) -> Callable:
    import numba

    options = vectorising(**({"inline": "always"} if inline else {}))
    if not on_disk:
        return numba.njit(cache=False, **options)(fn)
    return jit(fn, **options)
