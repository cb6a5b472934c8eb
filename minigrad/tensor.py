"""``Tensor``: an ndarray plus what reverse-mode autodiff needs (grad, requires_grad, the op that made it).

Methods and operators mirror NumPy/PyTorch names and broadcasting; the ops themselves live in
``minigrad/ops`` (one small class each) and the backward pass in ``minigrad/autograd.py``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _state, dtypes

if TYPE_CHECKING:
    from .function import Node

Axis = int | tuple[int, ...] | None


class Tensor:
    """A node value in the graph.

    ``data``: the ndarray; ``grad``: a Tensor or None (filled by ``backward`` for leaves that require grad
    and for tensors that called ``retain_grad``); ``requires_grad``; ``node``: the op application that
    produced it (None for leaves); ``scope``: the ``mg.scope`` names active when it was made.
    """

    __slots__ = (
        "__weakref__",
        "_consumed",
        "_grad",
        "_hooks",
        "_idx",
        "_node",
        "_scope",
        "_vbox",
        "data",
        "name",
        "requires_grad",
    )
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected operator

    def __init__(self, data: Any, requires_grad: bool = False, dtype: dtypes.DTypeLike = None,
                 name: str | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        arr = dtypes.as_array(data, dtype)
        self.data = arr
        self._grad: Tensor | None = None
        self.requires_grad = False
        self._node: Node | None = None
        self._idx = 0
        self._hooks: list | None = None
        self._vbox: list | None = None
        self._consumed = False
        self.name = name
        self._scope = _state.scope
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: np.ndarray, node: Node | None, idx: int) -> Tensor:
        """Fast constructor used by ops (no conversion, no checks)."""
        t = object.__new__(cls)
        t.data = data
        t._grad = None
        t.requires_grad = node is not None
        t._node = node
        t._idx = idx
        t._hooks = None
        t._vbox = None
        t._consumed = False
        t.name = None
        t._scope = _state.scope
        return t

    # ----------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> Numel:
        """The number of elements (NumPy's ``size``), callable as PyTorch's method: ``t.size()`` is
        the shape and ``t.size(d)`` its d-th entry."""
        return Numel(self.data.size, self.data.shape)

    @property
    def T(self) -> Tensor:
        return self.transpose()

    @property
    def node(self) -> Node | None:
        """The op application that produced this tensor (None for a leaf)."""
        return self._node

    @property
    def output_index(self) -> int:
        """Which output of its node this tensor is (0 but for multi-output ops such as ``split``)."""
        return self._idx

    @property
    def consumed(self) -> bool:
        """Whether a recorded op has taken this tensor as an input (``minigrad.inplace`` needs it)."""
        return self._consumed

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def scope(self) -> tuple[str, ...]:
        return self._node.scope if self._node is not None else self._scope

    def __len__(self) -> int:
        if not self.data.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        """Iterate along axis 0 with ONE multi-output op (``unbind``), not one ``getitem`` per row."""
        if not self.data.ndim:
            raise TypeError("iteration over a 0-d tensor")
        return iter(ops.unbind(self, 0))

    def item(self) -> Any:
        if _state.tracer is not None:
            _state.tracer.concrete(self, "item()")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def tolist(self) -> Any:
        return self.data.tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", threshold=20, prefix="tensor(")
        extra = [f"dtype={self.dtype}"]
        if self._node is not None:
            extra.append(f"op={self._node.name}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        if self.name:
            extra.append(f"name={self.name!r}")
        return f"tensor({body}, {', '.join(extra)})"

    def __bool__(self) -> bool:
        if _state.tracer is not None:
            _state.tracer.concrete(self, "bool()")
        return bool(self.data)

    def __float__(self) -> float:
        if _state.tracer is not None:
            _state.tracer.concrete(self, "float()")
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __hash__(self) -> int:
        return id(self)

    def __format__(self, spec: str) -> str:
        """A 0-d tensor formats as its number (``f"{loss:.3f}"``), as in PyTorch."""
        return format(self.data.item(), spec) if self.data.ndim == 0 else format(str(self), spec)

    def __round__(self, ndigits: int | None = None) -> Any:
        if self.data.ndim:
            raise TypeError(f"round() of a tensor of shape {self.shape}; use mg.round or .data.round()")
        return round(self.data.item(), ndigits)

    # ----------------------------------------------------------------- autograd
    @property
    def grad(self) -> Tensor | None:
        """dL/d(self) accumulated by ``backward``: a Tensor without a graph (as in PyTorch), or None."""
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                value = Tensor(np.asarray(value))
            if value.shape != self.data.shape or value.dtype != self.data.dtype:
                raise TypeError(f"grad: assigned a gradient of shape {value.shape} [{value.dtype}] to a "
                                f"tensor of shape {self.shape} [{self.dtype}]")
        self._grad = value

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and not dtypes.is_float(self.data.dtype):
            raise TypeError(f"requires_grad: only float32/float64 tensors can require grad, "
                            f"got dtype {self.data.dtype}")
        if not flag and self._node is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use .detach()")
        self.requires_grad = flag
        return self

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) * grad into every leaf's ``.grad`` (reverse mode)."""
        _autograd.backward(self, grad, retain_graph)

    def detach(self) -> Tensor:
        """Same data, cut from the graph (shares memory and in-place version, as in PyTorch)."""
        t = Tensor._make(self.data, None, 0)
        self.share_version((t,))
        return t

    # ----------------------------------------------------------------- in-place versions
    def version_box(self) -> list:
        """``[version, weakrefs of the nodes that made tensors sharing this memory]``, shared with
        views; ``minigrad.inplace`` bumps the version and checks those nodes' saved arrays."""
        box = self._vbox
        if box is None:
            box = self._vbox = [0]
            if self._node is not None:
                box.append(weakref.ref(self._node))
        return box

    def share_version(self, views: Sequence[Tensor]) -> None:
        """Make ``views`` (outputs of a view op, or a detached copy) share this tensor's version box.
        Their own nodes are not owners: view ops save no arrays."""
        box = self.version_box()
        for v in views:
            v._vbox = box

    def rebind(self, other: Tensor) -> None:
        """Become ``other``'s position in the graph (after an in-place update recorded out of place;
        only for a tensor no recorded op has consumed, so no node routes a gradient through it)."""
        self._node, self._idx = other._node, other._idx
        self.requires_grad = other.requires_grad
        if other._node is not None:
            self.version_box().append(weakref.ref(other._node))

    def zero_grad(self) -> None:
        self.grad = None

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        if self._node is None:
            return
        ref = weakref.ref(self)

        def _retain(g: np.ndarray) -> None:
            t = ref()
            if t is not None:
                t.grad = g.copy() if t._grad is None else t._grad.data + g

        _retain.__minigrad_retain__ = True  # type: ignore[attr-defined]
        if not any(getattr(h, "__minigrad_retain__", False) for h in self._hook_list()):
            self._hook_list().append(_retain)

    def _hook_list(self) -> list:
        if self._node is None:
            if self._hooks is None:
                self._hooks = []
            return self._hooks
        node = self._node
        if node.hooks is None:
            node.hooks = {}
        return node.hooks.setdefault(self._idx, [])

    def register_hook(self, fn: Callable[[Tensor], Any]) -> RemovableHandle:
        """Call ``fn(grad)`` (a read-only Tensor) when this tensor's gradient is computed; a non-None
        return (a Tensor or array) replaces it.

        Returns a handle whose ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook: tensor does not require grad")
        hooks = self._hook_list()
        hooks.append(fn)
        return RemovableHandle(hooks, fn)

    # ----------------------------------------------------------------- operators
    def __add__(self, o: Any) -> Tensor: return ops.add(self, o)
    def __radd__(self, o: Any) -> Tensor: return ops.add(o, self)
    def __sub__(self, o: Any) -> Tensor: return ops.sub(self, o)
    def __rsub__(self, o: Any) -> Tensor: return ops.sub(o, self)
    def __mul__(self, o: Any) -> Tensor: return ops.mul(self, o)
    def __rmul__(self, o: Any) -> Tensor: return ops.mul(o, self)
    def __truediv__(self, o: Any) -> Tensor: return ops.div(self, o)
    def __rtruediv__(self, o: Any) -> Tensor: return ops.div(o, self)
    def __pow__(self, o: Any) -> Tensor: return ops.power(self, o)
    def __rpow__(self, o: Any) -> Tensor: return ops.power(o, self)
    def __matmul__(self, o: Any) -> Tensor: return ops.matmul(self, o)
    def __rmatmul__(self, o: Any) -> Tensor: return ops.matmul(o, self)
    def __neg__(self) -> Tensor: return ops.neg(self)
    def __pos__(self) -> Tensor: return self
    def __abs__(self) -> Tensor: return ops.abs(self)
    def __getitem__(self, idx: Any) -> Tensor: return ops.getitem(self, idx)
    def __lt__(self, o: Any) -> Tensor: return ops.less(self, o)
    def __le__(self, o: Any) -> Tensor: return ops.less_equal(self, o)
    def __gt__(self, o: Any) -> Tensor: return ops.greater(self, o)
    def __ge__(self, o: Any) -> Tensor: return ops.greater_equal(self, o)
    def __eq__(self, o: Any) -> Any:  # type: ignore[override]
        return ops.equal(self, o) if _comparable(o) else NotImplemented
    def __ne__(self, o: Any) -> Any:  # type: ignore[override]
        return ops.not_equal(self, o) if _comparable(o) else NotImplemented

    # ----------------------------------------------------------------- in-place (minigrad.inplace)
    def __iadd__(self, o: Any) -> Tensor: return _inplace.update(self, "+=", np.add, o, ops.add)
    def __isub__(self, o: Any) -> Tensor: return _inplace.update(self, "-=", np.subtract, o, ops.sub)
    def __imul__(self, o: Any) -> Tensor: return _inplace.update(self, "*=", np.multiply, o, ops.mul)
    def __itruediv__(self, o: Any) -> Tensor: return _inplace.update(self, "/=", np.divide, o, ops.div)

    def add_(self, o: Any, alpha: float = 1) -> Tensor:
        return _inplace.update(self, "add_", np.add, o if alpha == 1 else o * alpha, ops.add)

    def sub_(self, o: Any, alpha: float = 1) -> Tensor:
        return _inplace.update(self, "sub_", np.subtract, o if alpha == 1 else o * alpha, ops.sub)

    def mul_(self, o: Any) -> Tensor: return _inplace.update(self, "mul_", np.multiply, o, ops.mul)
    def div_(self, o: Any) -> Tensor: return _inplace.update(self, "div_", np.divide, o, ops.div)
    def fill_(self, v: Any) -> Tensor:
        return _inplace.update(self, "fill_", None, v, lambda old, new: new + old * 0)
    def zero_(self) -> Tensor: return self.fill_(0)
    def copy_(self, src: Any) -> Tensor:
        return _inplace.update(self, "copy_", None, src, lambda old, new: new + old * 0)

    def clamp_(self, min: float | None = None, max: float | None = None) -> Tensor:
        return _inplace.update(self, "clamp_", lambda a, _, **kw: np.clip(a, min, max, out=kw["out"]),
                               None, lambda old, _: ops.clip(old, min, max))

    def __setitem__(self, idx: Any, value: Any) -> None:
        """``x[idx] = value`` in place (under the rules of ``minigrad.inplace``); the assignment is not
        recorded, so in grad mode it is an error when the tensor or the value requires grad."""
        _inplace.check_writable(self, "setitem")
        graph_value = isinstance(value, Tensor) and value.requires_grad
        if _state.grad_enabled and (self.requires_grad or graph_value):
            raise RuntimeError("setitem: item assignment is not recorded in the graph, and the tensor or "
                               "the value requires grad; build the tensor with mg.where / masked_fill / "
                               "mg.cat, or assign under no_grad")
        v = value.data if isinstance(value, Tensor) else value
        try:
            self.data[ops.shape.index_tuple(idx)] = v
        except (TypeError, ValueError, IndexError) as exc:
            raise type(exc)(f"setitem: cannot assign a value of shape {np.shape(v)} to {idx!r} of a "
                            f"tensor of shape {self.shape} [{self.dtype}]: {exc}") from None
        _inplace.record_update(self, "setitem")

    # ----------------------------------------------------------------- maths
    def exp(self) -> Tensor: return ops.exp(self)
    def log(self) -> Tensor: return ops.log(self)
    def sqrt(self) -> Tensor: return ops.sqrt(self)
    def abs(self) -> Tensor: return ops.abs(self)
    def tanh(self) -> Tensor: return ops.tanh(self)
    def sigmoid(self) -> Tensor: return ops.sigmoid(self)
    def relu(self) -> Tensor: return ops.relu(self)
    def softplus(self) -> Tensor: return ops.softplus(self)
    def pow(self, e: Any) -> Tensor: return ops.power(self, e)
    def maximum(self, o: Any) -> Tensor: return ops.maximum(self, o)
    def minimum(self, o: Any) -> Tensor: return ops.minimum(self, o)
    def clip(self, lo: float | None = None, hi: float | None = None) -> Tensor:
        return ops.clip(self, lo, hi)
    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:
        return ops.clip(self, min, max)
    def matmul(self, o: Any) -> Tensor: return ops.matmul(self, o)
    def masked_fill(self, mask: Any, value: float) -> Tensor: return ops.masked_fill(self, mask, value)
    def masked_fill_(self, mask: Any, value: float) -> Tensor:
        m = mask_array(mask)
        return _inplace.update(self, "masked_fill_", lambda a, _, **kw: np.copyto(a, value, where=m),
                               None, lambda old, _: ops.masked_fill(old, m, value))
    def add(self, o: Any, alpha: float = 1) -> Tensor: return ops.add(self, o if alpha == 1 else o * alpha)
    def sub(self, o: Any, alpha: float = 1) -> Tensor: return ops.sub(self, o if alpha == 1 else o * alpha)
    def mul(self, o: Any) -> Tensor: return ops.mul(self, o)
    def div(self, o: Any) -> Tensor: return ops.div(self, o)
    def sin(self) -> Tensor: return ops.sin(self)
    def cos(self) -> Tensor: return ops.cos(self)
    def mm(self, o: Tensor) -> Tensor: return ops.mm(self, o)
    def bmm(self, o: Tensor) -> Tensor: return ops.bmm(self, o)
    def cumsum(self, dim: int, **kw: Any) -> Tensor: return ops.cumsum(self, dim, **kw)
    def sort(self, dim: int = -1, descending: bool = False) -> Any: return ops.sort(self, dim, descending)
    def index_select(self, dim: int, index: Any) -> Tensor: return ops.index_select(self, dim, index)
    def narrow(self, dim: int, start: int, length: int) -> Tensor: return ops.narrow(self, dim, start, length)
    def repeat(self, *sizes: int) -> Tensor: return ops.repeat(self, *sizes)
    def clone(self) -> Tensor: return ops.clone(self)
    def copy(self) -> Tensor:
        """NumPy's name for ``clone``: a copy in its own memory that the gradient flows through."""
        return ops.clone(self)
    def all(self, dim: Axis = None, keepdim: bool = False, *, axis: Axis = None,
            keepdims: bool | None = None, out: None = None) -> Tensor:
        """Whether every entry (along ``dim``) is nonzero: a bool tensor, no gradient."""
        return _truth(np.all, "all", self, dim, keepdim, axis, keepdims, out)
    def any(self, dim: Axis = None, keepdim: bool = False, *, axis: Axis = None,
            keepdims: bool | None = None, out: None = None) -> Tensor:
        """Whether some entry (along ``dim``) is nonzero: a bool tensor, no gradient."""
        return _truth(np.any, "any", self, dim, keepdim, axis, keepdims, out)

    # ----------------------------------------------------------------- reductions (dim= or axis=)
    def sum(self, dim: Axis = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return ops.sum(self, dim, keepdim, **kw)
    def mean(self, dim: Axis = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return ops.mean(self, dim, keepdim, **kw)
    def max(self, dim: int | None = None, keepdim: bool = False, **kw: Any) -> Any:
        """The largest entry; with ``dim``, the named tuple (values, indices) (PyTorch)."""
        return ops.max(self, dim, keepdim, **kw)
    def min(self, dim: int | None = None, keepdim: bool = False, **kw: Any) -> Any:
        """The smallest entry; with ``dim``, the named tuple (values, indices) (PyTorch)."""
        return ops.min(self, dim, keepdim, **kw)
    def amax(self, dim: Axis = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return ops.amax(self, dim, keepdim, **kw)
    def amin(self, dim: Axis = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return ops.amin(self, dim, keepdim, **kw)
    def logsumexp(self, dim: Axis = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return ops.logsumexp(self, dim, keepdim, **kw)
    def norm(self, p: Any = "fro", dim: Axis = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return ops.norm(self, p, dim, keepdim, **kw)
    def var(self, dim: Axis = None, unbiased: bool | None = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return ops.var(self, dim, unbiased, keepdim, **kw)
    def std(self, dim: Axis = None, unbiased: bool | None = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return ops.std(self, dim, unbiased, keepdim, **kw)
    def softmax(self, dim: int = -1, **kw: Any) -> Tensor: return ops.softmax(self, dim, **kw)
    def log_softmax(self, dim: int = -1, **kw: Any) -> Tensor: return ops.log_softmax(self, dim, **kw)
    def argmax(self, dim: int | None = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return ops.argmax(self, dim, keepdim, **kw)
    def argmin(self, dim: int | None = None, keepdim: bool = False, **kw: Any) -> Tensor:
        return ops.argmin(self, dim, keepdim, **kw)
    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
        return ops.topk(self, k, dim, largest, sorted)
    def gather(self, dim: int, index: Any) -> Tensor: return ops.gather(self, dim, index)

    # ----------------------------------------------------------------- shapes
    def numel(self) -> int: return int(self.data.size)
    def dim(self) -> int: return self.data.ndim
    def reshape(self, *shape: Any) -> Tensor:
        return ops.reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int)
                           else shape)
    def view(self, *shape: Any) -> Tensor: return self.reshape(*shape)
    def view_as(self, other: Tensor) -> Tensor: return ops.reshape(self, other.shape)
    def reshape_as(self, other: Tensor) -> Tensor: return ops.reshape(self, other.shape)
    def expand_as(self, other: Tensor) -> Tensor: return ops.broadcast_to(self, other.shape)
    def contiguous(self) -> Tensor:
        return self if self.data.flags.c_contiguous else ops.clone(self)
    def flatten(self) -> Tensor: return ops.reshape(self, (-1,))
    def t(self) -> Tensor:
        """The transpose of a matrix (a vector or scalar as it is), as ``torch.Tensor.t``."""
        if self.ndim > 2:
            raise ops.ShapeError(f"t: expects a tensor with <= 2 dimensions, got {self.shape}; use "
                                 "transpose(dim0, dim1) or permute")
        return self.transpose() if self.ndim == 2 else self
    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and not isinstance(axes[0], int):
            axes = tuple(axes[0])  # one sequence: a permutation (NumPy)
        elif len(axes) == 2 and self.ndim >= 2:  # two ints: swap them (PyTorch; x.transpose(0, 1) on 2-D too)
            perm = list(range(self.ndim))
            perm[axes[0]], perm[axes[1]] = perm[axes[1]], perm[axes[0]]
            axes = tuple(perm)
        return ops.transpose(self, axes or None)
    def permute(self, *axes: Any) -> Tensor:
        return ops.transpose(self, tuple(axes[0]) if len(axes) == 1 and not isinstance(axes[0], int)
                             else axes)
    def expand(self, *shape: Any) -> Tensor:
        return ops.broadcast_to(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int)
                                else shape)
    def broadcast_to(self, shape: Sequence[int]) -> Tensor: return ops.broadcast_to(self, shape)
    def squeeze(self, dim: Axis = None, **kw: Any) -> Tensor: return ops.squeeze(self, dim, **kw)
    def unsqueeze(self, dim: int) -> Tensor: return ops.expand_dims(self, dim)
    def split(self, split_size_or_sections: Any, dim: int = 0, **kw: Any) -> tuple[Tensor, ...]:
        """PyTorch's split: pieces of size ``split_size`` (or of the listed sizes) along ``dim``."""
        return ops.split(self, split_size_or_sections, dim, **kw)
    def chunk(self, chunks: int, dim: int = 0, **kw: Any) -> tuple[Tensor, ...]:
        return ops.chunk(self, chunks, dim, **kw)
    def unbind(self, dim: int = 0, **kw: Any) -> tuple[Tensor, ...]: return ops.unbind(self, dim, **kw)

    # ----------------------------------------------------------------- dtypes and devices
    def astype(self, dtype: dtypes.DTypeLike) -> Tensor: return ops.astype(self, dtype)
    def float(self) -> Tensor: return ops.astype(self, dtypes.float32)
    def double(self) -> Tensor: return ops.astype(self, dtypes.float64)
    def long(self) -> Tensor: return ops.astype(self, np.int64)
    def int(self) -> Tensor: return ops.astype(self, np.int32)
    def bool(self) -> Tensor: return ops.astype(self, np.bool_)
    def type_as(self, other: Tensor) -> Tensor: return ops.astype(self, other.dtype)

    def to(self, *args: Any, dtype: dtypes.DTypeLike = None, **kw: Any) -> Tensor:
        """``to(dtype)``, ``to("cpu")``, ``to("cpu", dtype)``, ``to(other_tensor)``: minigrad runs on
        the CPU only, so a device is checked and otherwise ignored."""
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif dtypes.is_device(a):
                dtypes.check_device(a, "Tensor.to")
            else:
                dtype = a
        dtypes.check_device(kw.pop("device", "cpu"), "Tensor.to")
        kw.pop("non_blocking", None)
        kw.pop("copy", None)
        if kw:
            raise TypeError(f"Tensor.to: unexpected arguments {sorted(kw)}")
        return self if dtype is None else ops.astype(self, dtype)
    def cpu(self) -> Tensor: return self

    def new_zeros(self, *size: Any, dtype: dtypes.DTypeLike = None) -> Tensor:
        return Tensor(np.zeros(_shape_arg(size), self.dtype if dtype is None else dtype))
    def new_ones(self, *size: Any, dtype: dtypes.DTypeLike = None) -> Tensor:
        return Tensor(np.ones(_shape_arg(size), self.dtype if dtype is None else dtype))
    def new_full(self, size: Sequence[int], fill_value: Any, dtype: dtypes.DTypeLike = None) -> Tensor:
        return Tensor(np.full(tuple(size), fill_value, self.dtype if dtype is None else dtype))
    def new_tensor(self, data: Any, dtype: dtypes.DTypeLike = None) -> Tensor:
        return Tensor(np.array(data, self.dtype if dtype is None else dtype))


def _truth(fn: Any, op: str, t: Tensor, dim: Axis, keepdim: bool, axis: Axis, keepdims: bool | None,
           out: None) -> Tensor:
    """``all``/``any`` (``np.all(t)`` calls the method with ``out=None``)."""
    if out is not None:
        raise TypeError(f"Tensor.{op}: out= is not supported")
    return Tensor(fn(t.data, axis=ops.args.dim_arg(op, dim, axis),
                     keepdims=ops.args.keepdim_arg(op, keepdim, keepdims)))


def mask_array(mask: Any) -> np.ndarray:
    """A mask (Tensor or array-like) as a bool ndarray."""
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be bool, got {m.shape} [{m.dtype}]")
    return m


def _comparable(o: Any) -> bool:
    """Operands ``==`` compares elementwise; anything else (``pytest.approx``, None, a string) gets
    ``NotImplemented``, so Python asks the other side."""
    return isinstance(o, (Tensor, np.ndarray, np.generic, int, float, list, tuple))


def _shape_arg(size: tuple) -> tuple[int, ...]:
    """``f(2, 3)`` or ``f((2, 3))`` -> (2, 3)."""
    return tuple(size[0]) if len(size) == 1 and not isinstance(size[0], (int, np.integer)) else size


class Numel(int):
    """``Tensor.size``: the number of elements (an int, as NumPy's ``size``) that, called, is PyTorch's
    ``size()`` (the shape) or ``size(d)`` (one dimension)."""

    def __new__(cls, n: int, shape: tuple[int, ...]) -> Numel:
        obj = super().__new__(cls, n)
        obj.shape = shape
        return obj

    def __call__(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    __slots__ = ("_fn", "_hooks")

    def __init__(self, hooks: list, fn: Callable) -> None:
        self._hooks = hooks
        self._fn = fn

    def remove(self) -> None:
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


from . import autograd as _autograd  # noqa: E402
from . import inplace as _inplace  # noqa: E402
from . import ops  # noqa: E402  (ops import Tensor from this module)
