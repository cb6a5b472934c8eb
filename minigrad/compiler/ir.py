"""The compiler's intermediate representation: the recorded graph of one call, as values and ops.

A ``Value`` is an array of static shape and dtype: an argument of the compiled function, a tensor it
captured (a parameter read through ``self``, re-read at every call), a constant made during the trace,
or the output of an ``Op``. An ``Op`` is one primitive: a pointwise op (``kind == "pw"``: its class
holds the scalar formulas) or one of the array ops the code generator knows (``matmul``,
``transpose``, ``reshape``, ``slice``, ``concat``, ``stack``, ``sum``, ``mean``, ``broadcast``,
``astype``, ``copy``). ``Graph`` lists them in the order they ran, which is a topological order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class CompileError(TypeError):
    """``fn`` cannot be compiled (an op the compiler lacks, a value read in Python, ...); the message
    names the op and the user's line. Run it uncompiled (``compile=False``) instead."""


@dataclass(eq=False)
class Value:
    """One array of the graph (see the module docstring)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    kind: str  # "arg", "capture", "const" or "op"
    name: str  # its variable in the generated code
    requires_grad: bool = False  # some gradient flows back through it
    op: Op | None = None
    const: Any = None  # the constant's array (kind "const")

    @property
    def is_scalar_const(self) -> bool:
        return self.kind == "const" and self.const.ndim == 0


@dataclass(eq=False)
class Op:
    """One primitive applied to values: ``kind``, static ``attrs`` (axes, shapes, the pointwise class
    and its params), where it was written (``scope``, the user's ``line``)."""

    kind: str
    ins: list[Value]
    out: Value
    attrs: dict[str, Any] = field(default_factory=dict)
    scope: tuple[str, ...] = ()
    line: str = ""

    @property
    def label(self) -> str:
        """The op's name as the user wrote it (``sigmoid``, ``matmul``, ...)."""
        cls = self.attrs.get("cls")
        return (cls.name or cls.__name__).lower() if cls is not None else self.kind


@dataclass
class Graph:
    args: list[Value]
    captures: list[Value]
    consts: list[Value]
    ops: list[Op]
    outputs: list[Value]

    def consumers(self) -> dict[int, list[Op]]:
        """id(value) -> the ops that read it."""
        users: dict[int, list[Op]] = {}
        for op in self.ops:
            for v in op.ins:
                users.setdefault(id(v), []).append(op)
        return users


def identifier(text: str, taken: set[str]) -> str:
    """``text`` as a fresh Python identifier (``weight_hh_l0``, ``sigmoid_3``), unique among ``taken``."""
    base = re.sub(r"\W+", "_", text).strip("_").lower() or "v"
    if base[0].isdigit():
        base = "v" + base
    name, k = base, 1
    while name in taken or name in _RESERVED:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


_RESERVED = {"np", "fm", "dot", "f32", "f64", "dims", "F", "math", "jit", "range", "float", "int", "abs",
             "min", "max", "sum", "len", "where", "maximum", "minimum", "sign", "g", "out", "forward",
             "backward", "i0", "i1", "i2", "i3", "i4", "i5", "lambda", "def", "return", "for", "in", "if",
             "else", "and", "or", "not"}
