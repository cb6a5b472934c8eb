"""``Pointwise``: an op defined by scalar formulas, its forward and one derivative per argument.

HIPS autograd keeps each derivative as one line of data beside its op; minitorch maps scalar
operators over tensors. A pointwise op here is the same idea::

    class Tanh(Pointwise):
        '''y = tanh x;  dL/dx = g * (1 - y^2).'''
        out = "tanh(x)"
        grads = ("g * (1 - out * out)",)

The formulas are the op's ONLY definition. Eager mode evaluates them on NumPy arrays (``forward`` and
``backward`` are generated from them when the class is made: ``g`` is the incoming gradient, ``out``
the op's output, the arguments by their names in ``args``, constants by their names in ``params``;
gradients of broadcast arguments are reduced by ``unbroadcast``). The compiler
(``minigrad.compile``) substitutes the same formulas, element by element, into the generated Numba
loops; the backward it derives uses ``grads``, so no derivative is written twice.

A formula may call the functions in ``ARRAY_FUNCTIONS`` (the compiler maps each name to Numba scalar
code) and use arithmetic, comparisons, ``&``/``|`` on comparisons and literals. Comparisons are never
used as numbers (write ``where(x > 0, g, 0)``, not ``g * (x > 0)``), so a float32 loop stays float32.
"""

from __future__ import annotations

import ast
from typing import Any, ClassVar

import numpy as np

from ..function import Function
from ..kernels import elementwise as K
from .broadcast import unbroadcast


def _stable(kernel_name: str) -> Any:
    def fn(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind != "f":  # integer/bool input: computed in float64, as NumPy's ufuncs do
            x = x.astype(np.float64)
        out = np.empty(x.shape, x.dtype)
        getattr(K, kernel_name)(x.ravel(), out.reshape(-1))
        return out

    fn.__name__ = kernel_name.split("_")[0]
    return fn


def _sign(x: np.ndarray) -> np.ndarray:
    return np.sign(x)


#: the functions a formula may call, as NumPy array functions (eager mode); NaN propagates as in NumPy
ARRAY_FUNCTIONS: dict[str, Any] = {
    "exp": np.exp, "log": np.log, "log1p": np.log1p, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos,
    "tanh": np.tanh, "abs": np.abs, "sign": _sign, "where": np.where, "maximum": np.maximum,
    "minimum": np.minimum, "sigmoid": _stable("sigmoid_forward"), "softplus": _stable("softplus_forward"),
}


def formula_names(src: str) -> set[str]:
    """The variable names a formula reads (function names excluded)."""
    tree = ast.parse(src, mode="eval")
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - called


class Pointwise(Function):
    """Base of ops given by scalar formulas (see the module docstring)."""

    #: argument names, in ``apply`` order
    args: ClassVar[tuple[str, ...]] = ("x",)
    #: constant keyword parameters of ``apply`` (e.g. ``lo``, ``hi`` of clip)
    params: ClassVar[tuple[str, ...]] = ()
    #: the forward formula
    out: ClassVar[str]
    #: dL/d(argument) per argument (None: no gradient, e.g. a condition)
    grads: ClassVar[tuple[str | None, ...]] = ()
    #: evaluate the backward formulas with NumPy's warnings off (branches that ``where`` discards)
    quiet: ClassVar[bool] = False

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "out" in cls.__dict__:
            cls.forward, cls.backward = _eager(cls)

    @classmethod
    def saved(cls) -> list[str]:
        """What the backward formulas read besides ``g`` (arguments, ``out``), in a fixed order."""
        used = set().union(*(formula_names(f) for f in cls.grads if f is not None)) if cls.grads else set()
        return [n for n in (*cls.args, "out") if n in used]


def _eager(cls: type[Pointwise]) -> tuple[Any, Any]:
    """NumPy ``forward`` and ``backward`` generated from the class's formulas."""
    args, params = cls.args, cls.params
    saved = cls.saved()
    sig = ", ".join(args) + (", *, " + ", ".join(params) if params else "")
    fwd = [f"def forward(ctx, {sig}):", f"    out = {cls.out}"]
    fwd += [f"    ctx.{n} = {n}" for n in (*saved, *params)]
    shape = {a: f"{a}.shape" if a in saved else f"ctx.shape_{a}" for a in args}
    if len(args) > 1:  # unbroadcast needs each argument's shape
        fwd += [f"    ctx.shape_{a} = {a}.shape" for a in args if a not in saved]
    fwd.append("    return out")
    bwd = ["def backward(ctx, g):"]
    bwd += [f"    {n} = ctx.{n}" for n in (*saved, *params)]
    if len(args) == 1:
        body = cls.grads[0] if cls.grads and cls.grads[0] else "None"
        bwd.append(f"    return {body}")
    else:
        bwd.append("    needs = ctx.needs_input_grad")
        terms = [f"(unbroadcast({f}, {shape[a]}) if needs[{i}] else None)" if f else "None"
                 for i, (a, f) in enumerate(zip(args, cls.grads or (None,) * len(args)))]
        bwd.append(f"    return {', '.join(terms)}")
    if cls.quiet:
        bwd = [bwd[0], "    with np.errstate(all='ignore'):"] + ["    " + line for line in bwd[1:]]
    ns: dict[str, Any] = {**ARRAY_FUNCTIONS, "unbroadcast": unbroadcast, "np": np}
    exec(compile("\n".join([*fwd, "", *bwd]), f"<pointwise {cls.__name__}>", "exec"), ns)
    return staticmethod(ns["forward"]), staticmethod(ns["backward"])
