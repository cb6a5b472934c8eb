"""minigrad: a small reverse-mode autograd engine over NumPy arrays, with Numba kernels.

    import minigrad as mg
    x = mg.tensor(np.random.randn(3, 4), requires_grad=True)
    y = (x @ w).tanh().sum()
    y.backward()          # x.grad, w.grad
"""

from . import dtypes
from ._state import detect_anomaly, enable_grad, is_grad_enabled, no_grad, pause_gc
from .autograd import backward
from .creation import (
    arange,
    default_rng,
    eye,
    from_numpy,
    full,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .function import Function, Node
from .gradcheck import GradcheckError, gradcheck
from .ops import *  # noqa: F403
from .ops import ShapeError
from .ops import __all__ as _ops_all
from .scopes import StepScopes, current_scope, find_step, parse_step, scope, step_name, step_scopes
from .serialization import load, save
from .tensor import RemovableHandle, Tensor

# dtype names as in PyTorch (NumPy dtypes: ``x.dtype == mg.float32``); the ones that shadow builtins
# (float, bool) are attributes only, not in __all__
float32 = float = dtypes.float32  # noqa: A001
float64 = double = dtypes.float64
int64 = long = dtypes.int64
int32 = dtypes.int32
bool = dtypes.bool_  # noqa: A001
__version__ = "0.1.0"

__all__ = [
    "Function", "GradcheckError", "Node", "RemovableHandle", "ShapeError", "Tensor", "arange", "backward",
    "default_rng", "detect_anomaly", "dtypes", "enable_grad", "eye", "float32", "float64", "from_numpy",
    "full", "int32", "int64", "linspace",
    "gradcheck", "is_grad_enabled", "manual_seed", "no_grad", "ones", "ones_like", "pause_gc",
    "rand", "randint", "randn", "randperm",
    "load", "save",
    "scope", "StepScopes", "current_scope", "find_step", "parse_step", "step_name", "step_scopes",
    "nn", "optim", "tensor", "zeros", "zeros_like", *_ops_all,
]

from . import nn, optim  # noqa: E402  (``import minigrad`` gives ``minigrad.nn`` and ``minigrad.optim``)
from .compiler import CompileError, compile, compile_scan, compiles_by_default, is_tracing, unroll  # noqa: E402

__all__ += ["CompileError", "compile", "compile_scan", "compiles_by_default", "is_tracing", "unroll"]
