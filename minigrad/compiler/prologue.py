"""A scan's prologue: ``xs' = pre(xs)`` over the whole sequence before the loop (``compile_scan(fn,
prologue=pre)``), compiled as a ``Program`` of its own whose backward runs after the backward loop,
inside the scan's node. The rnn layers pass their cell's input projection: one product over all T*B
rows, and ``dW_ih = X^T dP`` one product after BPTT.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .api import Program, arg_names
from .fuse import Region
from .ir import CompileError, Graph, Op, Value, identifier
from .workspace import Workspace


def plain(a: np.ndarray) -> np.ndarray:
    """``a`` as a writeable C-contiguous array: the one array type the jitted loops are compiled for
    (a read-only or strided argument would make Numba compile them again)."""
    return a if a.flags.c_contiguous and a.flags.writeable else np.array(a, order="C")


class PrologueFn:
    """``pre(xs) -> xs'`` as a flat function of the raw xs returning only the xs' it computes; ``passed``
    says, per x', which raw x it is when ``pre`` returned one unchanged (else None)."""

    def __init__(self, fn: Callable[..., Any], n_xs: int, x_tensor: bool) -> None:
        self.fn, self.n_xs, self.x_tensor = fn, n_xs, x_tensor
        self.passed: list[int | None] = []
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *xs: Tensor) -> tuple[Tensor, ...]:
        res = self.fn(xs[0] if self.x_tensor else tuple(xs))
        res = (res,) if isinstance(res, Tensor) else res
        if not (isinstance(res, (tuple, list)) and len(res) == self.n_xs
                and all(isinstance(t, Tensor) for t in res)):
            raise CompileError(f"compile_scan: prologue(xs) must return xs' like xs ({self.n_xs} "
                               f"tensor(s)), got {type(res).__name__}")
        self.passed = [next((i for i, x in enumerate(xs) if x is r), None) for r in res]
        made = tuple(r for r, k in zip(res, self.passed) if k is None)
        if not made:
            raise CompileError("compile_scan: the prologue returned its inputs unchanged (nothing to do)")
        return made


#: elements of x @ w from which ``fold_biases`` folds its bias (measured break-even: between 512 and 65536)
FOLD_MIN = 32768


def fold_biases(graph: Graph) -> None:
    """Every ``x @ w + b`` (x (M, K), b (N,) or (1, N), the product read by the sum alone) as ONE product
    of augmented operands, PyTorch's ``addmm`` written in the graph's own ops::

        [x | 1] @ [w ; b]  =  x @ w + 1 b      (concat x with a column of ones, w with the row b)

    The bias rides in the product's K + 1st term, so no pass over the (M, N) result adds it, and the
    backward's ``d[w ; b] = [x | 1]^T dG`` (the concat's backward slices it) gives dw and db in one
    product, with no pass summing dG over its M rows. For an input projection of all T*B rows, M is
    large: a long LSTM's (4000, 128) projection took 0.54 ms with its bias pass, 0.31 ms folded
    (measured; the backward 0.40 -> 0.30 ms). It is done where it pays: the concatenation copies x
    (M, K) and the product gets a K + 1st term, the pass saved is over the (M, N) result. Measured,
    forward and backward together: N = 8K 11-14% faster, 4K 6%, 2K 8-20% SLOWER (a small RNN's
    (1024, 32) @ (32, 64)); and below ``FOLD_MIN`` elements of the result the two concatenations cost
    more than the pass (a tiny RNN's (32, 16): ~10% of its step). So: N >= 4K and M N >= FOLD_MIN."""
    users = graph.consumers()
    outs = {id(v) for v in graph.outputs}
    taken = {v.name for v in (*graph.args, *graph.captures, *graph.consts)}
    taken |= {op.out.name for op in graph.ops}
    for op in list(graph.ops):
        found = _product_and_bias(op, users, outs)
        if found is not None:
            k = graph.ops.index(op)
            graph.ops[k:k + 1] = _augmented(graph, *found, op, taken)
            graph.ops.remove(found[0])


def _product_and_bias(op: Op, users: dict[int, list[Op]], outs: set[int]) -> tuple[Op, Value] | None:
    """(the product x @ w, the bias b) when ``op`` is ``x @ w + b`` as ``fold_biases`` folds it."""
    if op.kind != "pw" or op.label != "add" or len(op.ins) != 2 or op.ins[0] is op.ins[1]:
        return None
    for m, b in (op.ins, op.ins[::-1]):
        mm = m.op
        if (m.kind == "op" and mm is not None and mm.kind == "matmul" and len(m.shape) == 2
                and m.shape == op.out.shape and m.shape[0] * m.shape[1] >= FOLD_MIN
                and m.shape[1] >= 4 * mm.ins[0].shape[1]
                and b.shape in ((m.shape[1],), (1, m.shape[1])) and m.dtype == b.dtype == op.out.dtype
                and id(m) not in outs and len(users[id(m)]) == 1):
            return mm, b
    return None


def _augmented(graph: Graph, mm: Op, b: Value, add: Op, taken: set[str]) -> list[Op]:
    """The ops of ``[x | 1] @ [w ; b]`` computing ``add``'s output (``mm`` = x @ w)."""
    (x, w), out, dt = mm.ins, add.out, add.out.dtype
    (M, K), N = x.shape, w.shape[1]
    where = {"scope": add.scope, "line": add.line}

    def value(shape: tuple[int, ...], name: str, grad: bool) -> Value:
        return Value(shape, dt, "op", identifier(name, taken), requires_grad=grad)

    one = Value((1, 1), dt, "const", identifier("one", taken), const=np.ones((1, 1), dt))
    graph.consts.append(one)
    col, xa = value((M, 1), "ones", False), value((M, K + 1), f"{x.name}_1", x.requires_grad)
    wa = value((K + 1, N), f"{w.name}_{b.name}", w.requires_grad or b.requires_grad)
    ops = [Op("broadcast", [one], col, {}, **where), Op("concat", [x, col], xa, {"axis": 1}, **where)]
    row = b
    if b.shape == (N,):
        row = value((1, N), f"{b.name}_row", b.requires_grad)
        ops.append(Op("reshape", [b], row, {}, **where))
    ops += [Op("concat", [w, row], wa, {"axis": 0}, **where), Op("matmul", [xa, wa], out, {}, **where)]
    for o in ops:
        o.out.op = o
    return ops


class PrologueProgram(Program):
    """A prologue's compiled program: the arrays its products and fused loops write (the projection,
    then plus its bias: a whole sequence each) are given by the caller, from a ``Workspace``: allocated
    fresh, each was megabytes of new pages at every call (measured: 0.6 ms of a long LSTM step's 6,
    in page faults and in returning the memory)."""

    def rewrite(self, graph: Graph) -> None:
        fold_biases(graph)

    def given_outputs(self, units: list, keep: set[int]) -> list[str]:
        #: the values the fused loops store and the products, in the order ``forward`` takes them
        self.written = [op.out for u in units for op in (u.ops if isinstance(u, Region) else [u.op])
                        if (id(op.out) in keep if isinstance(u, Region) else op.kind == "matmul")]
        self.space = Workspace([(v.shape, v.dtype) for v in self.written])
        return [v.name for v in self.written]


class Prologue:
    """The prologue of a scan for one signature of the raw xs: a compiled ``Program`` run on the whole
    sequence before the loop, its backward run after the backward loop (inside the scan's node)."""

    def __init__(self, fn: Callable[..., Any], seq: tuple[Tensor, ...], x_tensor: bool) -> None:
        self.fn = fn
        flat_fn = PrologueFn(fn, len(seq), x_tensor)
        flat = [Tensor(np.ascontiguousarray(x.data)) for x in seq]
        names = arg_names(fn, (flat[0] if x_tensor else tuple(flat),))
        # an x that needs no gradient (the data) gets none: no dX = dP @ W product in the backward
        constant = tuple(not x.requires_grad for x in seq)
        self.program = PrologueProgram(flat_fn, tuple(flat), flat, names, constant)
        self.passed = flat_fn.passed
        made = iter(self.program.graph.outputs)
        #: per x' of the loop: the program's output that makes it, None for an x passed unchanged
        self.made: list[Value | None] = [None if k is not None else next(made) for k in self.passed]
        T = seq[0].shape[0]
        for v in self.made:
            if v is not None and (len(v.shape) < 2 or v.shape[0] != T):
                raise CompileError(f"compile_scan: the prologue must return (T, ...) arrays with T = {T} "
                                   f"and at least one more axis, got {v.name} of shape {v.shape}")
        #: per x' of the loop: (shape, dtype) of the whole sequence
        self.out_specs = [(seq[k].shape, seq[k].dtype) if k is not None else (v.shape, v.dtype)
                          for k, v in zip(self.passed, self.made)]

    def valid(self) -> bool:
        return self.program.valid()

    def forward(self, xs: tuple[np.ndarray, ...], caps: tuple[np.ndarray, ...]
                ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """(xs' for the loop, what the backward reads)."""
        p = self.program
        given = p.space.buffers(None)  # views of a pooled slab
        res = p.forward(p.dims, *xs, *caps, *p.const_arrays, *given)
        n = len(p.graph.outputs)
        made = iter(res[:n])
        return tuple(xs[k] if k is not None else plain(next(made)) for k in self.passed), tuple(res[n:])

    def backward(self, saved: tuple[np.ndarray, ...], d_xs: list[np.ndarray | None]
                 ) -> list[np.ndarray | None]:
        """Gradients of the raw xs then of the prologue's captures, given those of xs'."""
        p = self.program
        out: list[np.ndarray | None] = [None] * (len(p.graph.args) + len(p.graph.captures))
        seeds = []
        for d, k, v in zip(d_xs, self.passed, self.made):
            if k is not None:  # the same x may be passed on twice: its gradients add
                out[k] = d if out[k] is None or d is None else out[k] + d
            else:
                seeds.append(np.zeros(v.shape, v.dtype) if d is None else d)
        if p.backward is not None:
            got = p.backward(p.dims, *saved, *seeds)
            for j, i in enumerate(p.wanted):
                out[i] = got[j] if out[i] is None else out[i] + got[j]
        return out
