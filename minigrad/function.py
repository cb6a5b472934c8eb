"""``Function``: the base class of every op, and ``Node``: one recorded application of an op.

An op is a small class with two static methods on plain NumPy arrays::

    class Mul(Function):
        '''z = x * y;  dz/dx = y,  dz/dy = x'''

        @staticmethod
        def forward(ctx, x, y):
            ctx.x, ctx.y = x, y            # save what backward needs as attributes of ctx
            return x * y

        @staticmethod
        def backward(ctx, g):              # g = dL/dz, same shape as z
            return g * ctx.y, g * ctx.x    # dL/dx, dL/dy (None for "no gradient")

    z = Mul.apply(a, b)                    # a, b Tensors -> Tensor recorded in the graph

``forward`` may return a tuple of arrays (a multi-output op such as ``split``; even a 1-tuple);
``backward`` then receives a list with one gradient per output (``None`` for outputs that got none).
``backward`` returns one gradient per Tensor input (a bare array when there is one input).
Gradients of broadcasting inputs are reduced with ``minigrad.ops.broadcast.unbroadcast`` by the op
itself. Keyword arguments of ``apply`` are passed to ``forward`` unchanged (axes, shapes, ...) and
are never differentiated.

``ctx.needs_input_grad`` tells, per input, whether its gradient is wanted, so an op can skip work.
Arrays an op stores on ``ctx`` are dropped after backward unless ``retain_graph=True``; a second
backward through a node whose arrays were dropped is a clear error (as in PyTorch).
"""

from __future__ import annotations

import os
import traceback
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from . import _state

if TYPE_CHECKING:
    from .tensor import Tensor


class Node:
    """One application of an op in the graph: the op, its input Tensors, the scope it was created in,
    and whatever the op saved for backward (as extra attributes, freed after use)."""

    __slots__ = ("__dict__", "__weakref__", "epoch", "fn", "inputs", "n_out", "needs_input_grad", "scope")

    # Rarely set; class-level defaults keep node creation cheap (an instance value shadows them).
    hooks: dict[int, list] | None = None
    released: bool = False
    stack: list[str] | None = None
    multi: bool = False  # forward returned a tuple: backward gets a list of gradients
    corrupted: str | None = None  # an array this op saved was updated in place (minigrad.inplace)

    def __init__(self, fn: type[Function]) -> None:
        self.fn = fn
        self.inputs: tuple[Tensor, ...] = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self.scope = _state.scope
        self.n_out = 1
        self.epoch = _state.version

    @property
    def name(self) -> str:
        return self.fn.name or self.fn.__name__

    def release(self) -> None:
        """Free the arrays the op saved on ``ctx`` (bare or in a tuple/list); other attributes stay.

        As in PyTorch, only a node that actually freed arrays refuses a second backward: an op that
        saved nothing but shapes or axes can be differentiated again without ``retain_graph``.
        """
        d = self.__dict__
        if not d:
            return
        nd = np.ndarray
        dead = []
        for k, v in d.items():
            t = type(v)
            if t is nd:
                dead.append(k)
            elif t is tuple or t is list:
                for e in v:
                    if type(e) is nd:
                        dead.append(k)
                        break
        if dead:
            for k in dead:
                del d[k]
            self.released = True

    def saves(self, arr: np.ndarray) -> bool:
        """Whether an array saved for backward may share memory with ``arr``."""
        for v in self.__dict__.values():
            for e in (v if type(v) in (tuple, list) else (v,)):
                if type(e) is np.ndarray and np.may_share_memory(e, arr):
                    return True
        return False

    def where(self) -> str:
        """Where this node was created: scope and, in anomaly mode, the user's line of code."""
        parts = [f"op '{self.name}'"]
        if self.scope:
            parts.append(f"in scope '{'/'.join(self.scope)}'")
        if self.stack:
            parts.append("created at:\n" + "".join(self.stack))
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"<Node {self.name} scope={'/'.join(self.scope) or '-'} inputs={len(self.inputs)}>"


_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep  # not "/minigrad/": user code may live
# in a directory of that name (tests/minigrad/...)


def _user_stack() -> list[str]:
    """The creation stack without minigrad's own frames (recorded in anomaly mode only)."""
    frames = [f for f in traceback.extract_stack()[:-3] if not f.filename.startswith(_PKG_DIR)]
    return traceback.format_list(frames[-4:])


def user_line() -> str:
    """``file:line: code`` of the innermost frame outside minigrad (for messages naming the user's line)."""
    for f in reversed(traceback.extract_stack()[:-1]):
        if not f.filename.startswith(_PKG_DIR):
            rel = os.path.relpath(f.filename) if not f.filename.startswith("<") else f.filename
            return f"{f.filename if rel.startswith('..') else rel}:{f.lineno}: {(f.line or '').strip()}"
    return ""


class Function:
    """Base class of ops. Subclass it, write ``forward`` and ``backward``, call ``apply``."""

    #: Display name (drawings, errors); defaults to the class name.
    name: ClassVar[str | None] = None
    #: False for ops whose output carries no gradient (comparisons, argmax, ...).
    differentiable: ClassVar[bool] = True
    #: True for ops whose outputs may be views of their first input (reshape, transpose, ...): an
    #: in-place update of one is an update of the other (they share a version box).
    view: ClassVar[bool] = False
    #: set per class: minigrad's own ops (tested never to write into an incoming gradient) get the
    #: engine's arrays; a user's op gets read-only views, so an in-place ``g *= 2`` in its backward is
    #: a loud error rather than a corrupted gradient of a sibling branch that shares the array
    builtin: ClassVar[bool] = True

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.builtin = cls.__module__.startswith("minigrad.")

    @staticmethod
    def forward(ctx: Node, *arrays: np.ndarray, **params: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Node, grad: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Any:
        """Run ``forward`` on the inputs' arrays and, when any input requires grad (and grad mode is
        on), record a Node so that ``backward`` can be called later."""
        ctx = Node(cls)
        n = len(inputs)
        if n == 1:
            x = inputs[0]
            record = x.requires_grad and _state.grad_enabled and cls.differentiable
            if record:
                ctx.needs_input_grad = (True,)
            out = cls.forward(ctx, x.data, **params)
        else:
            record = False
            if _state.grad_enabled and cls.differentiable:
                needs = tuple([t.requires_grad for t in inputs])
                if True in needs:
                    record = True
                    ctx.needs_input_grad = needs
            if n == 2:
                out = cls.forward(ctx, inputs[0].data, inputs[1].data, **params)
            else:
                out = cls.forward(ctx, *[t.data for t in inputs], **params)
        if record:
            ctx.inputs = inputs
            for t in inputs:
                t._consumed = True
            if _state.anomaly:
                ctx.stack = _user_stack()
        if type(out) is tuple:
            ctx.n_out = len(out)
            ctx.multi = True
            if _state.anomaly:
                for o in out:
                    _check_finite(o, ctx, "forward")
            make = Tensor._make
            node = ctx if record else None
            outs = tuple([make(o if type(o) is np.ndarray else np.asarray(o), node, i)
                          for i, o in enumerate(out)])
            if cls.view:
                inputs[0].share_version(outs)
            if _state.tracer is not None:
                _state.tracer.record(cls, inputs, params, outs)
            return outs
        if type(out) is not np.ndarray:  # ufuncs on 0-d arrays give NumPy scalars; user ops may give lists
            out = np.asarray(out)
        if _state.anomaly:
            _check_finite(out, ctx, "forward")
        t = Tensor._make(out, ctx if record else None, 0)
        if cls.view:
            inputs[0].share_version((t,))
        if _state.tracer is not None:
            _state.tracer.record(cls, inputs, params, (t,))
        return t


def _check_finite(arr: np.ndarray, node: Node, phase: str) -> None:
    if arr is not None and arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "inf"
        stack = node.stack or _user_stack()
        where = f"op '{node.name}'" + (f" in scope '{'/'.join(node.scope)}'" if node.scope else "")
        raise FloatingPointError(
            f"detect_anomaly: {phase} of {where} produced {bad} (shape {arr.shape}, "
            f"dtype {arr.dtype}); op created at:\n" + "".join(stack)
        )


from .tensor import Tensor  # noqa: E402  (Tensor imports Function lazily; see tensor.py)
