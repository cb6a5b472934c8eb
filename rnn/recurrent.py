"""``Recurrent``: one recurrent layer for ANY cell, with PyTorch's layer interface.

``Recurrent(cell_fn, input_size, num_layers, bidirectional, batch_first, dropout)`` builds one cell per
layer and direction with ``cell_fn(n_in)`` and runs them over a sequence; backpropagation through time
is ``loss.backward()`` on the unrolled graph (the engine sums the contributions of the weights that
every step shares: dL/dW = sum_t dL/dh_t dh_t/dW|local).

Shapes (T steps, B batch, I input, D = 2 if bidirectional else 1, L = num_layers, H_k the size of
state k, O the cell's output size):

    input  (T, B, I)  or (B, T, I) with batch_first=True, or unbatched (T, I)
    hx     a tuple of (D*L, B, H_k), one per state tensor (unbatched (D*L, H_k)); zeros when omitted
    output (T, B, D*O) = the last layer's outputs, directions concatenated (batch-first likewise)
    state  a tuple of (D*L, B, H_k): the final state of every layer and direction

Per layer and direction: a cell that hoists its input projection (``Cell.project``, as the built-ins
do) gets all T*B rows in ONE matrix product. Compiled (the default), the layer is ONE node: the
projection is the prologue of one ``minigrad.compile_scan`` over the steps. Eager (``compile=False``),
the projection is cut into steps by ONE multi-output ``split`` (other cells get the input of each step
from ONE ``unbind``) and the outputs are joined by ONE ``stack``, so the graph grows by the cell's ops
per step and backward is linear in T.

Parameters are named ``<cell parameter>_l<layer>`` and ``..._l<layer>_reverse`` (the built-ins:
PyTorch's ``weight_ih_l0``, ``weight_hh_l0_reverse``, ...). Scopes (drawings rely on them):
``<name>`` > ``layer0`` / ``layer0_reverse`` > ``t=3`` (``mg.step_name``), where ``name`` is the
layer class (``LSTM``) or, for ``Recurrent`` itself, the cell class (``MGU``).

Variable-length batches: ``lengths`` (one int per batch element). Step t of sequence b is real when
t < lengths[b]; at padded steps the state is held (``s_t = where(mask, s_new, s_{t-1})``) and the output
is 0, so padding changes neither the final state nor any gradient, and the reverse direction of
sequence b starts at its own last step (as with PyTorch's packed sequences).
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import minigrad as mg
from minigrad import RemovableHandle, Tensor
from minigrad.nn import Module

from .cell import Cell, as_tensor_of, check_size

__all__ = ["Recurrent", "StepHook"]

#: ``hook(layer_module, layer, direction, t, state)``, called after every time step (state after masking)
StepHook = Callable[["Recurrent", int, int, int, tuple[Tensor, ...]], None]


class Recurrent(Module):
    """Any cell over a sequence: stacked, bidirectional, dropout between layers, initial state,
    ``lengths``, ``t0`` (see the module docstring).

    ``layer(x, hx=None, lengths=None, *, t0=0) -> (output, state)``.
    """

    #: RNN and GRU: hx and the returned state are one tensor (PyTorch's interface), not a 1-tuple
    state_is_tensor: bool = False
    #: names of the state tensors in messages (LSTM: h0, c0)
    state_names: tuple[str, ...] | None = None
    #: compiled layers: True keeps only the state of every step for the backward, which runs each
    #: step's forward again (``minigrad.compile_scan(..., recompute=True)``): an LSTM saves 2 arrays of
    #: (B, H) per step instead of 7, for about one more forward pass of time
    recompute: bool = False

    def __init__(self, cell_fn: Callable[[int], Cell], input_size: int, num_layers: int = 1,
                 bidirectional: bool = False, batch_first: bool = False, dropout: float = 0.0, *,
                 rng: np.random.Generator | None = None, name: str | None = None,
                 compile: bool | None = None) -> None:
        super().__init__()
        owner = name or type(self).__name__
        self.input_size = check_size(owner, "input_size", input_size)
        self.num_layers = check_size(owner, "num_layers", num_layers)
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(f"{owner}: dropout must be a number in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{owner}: dropout={dropout} acts between layers, so it has no effect with "
                          "num_layers=1", UserWarning, stacklevel=_caller_level())
        self.bidirectional = bool(bidirectional)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        #: generator for dropout masks (None: minigrad's global one, reseeded by ``mg.manual_seed``)
        self.rng = rng
        self._step_hooks: list[StepHook] = []
        #: True: every layer and direction is ONE compiled recurrence (``minigrad.compile_scan``; with
        #: step hooks one compiled node per step); False: the eager graph of every step; None (the
        #: default): ``minigrad.compiles_by_default()``, asked at every call
        if compile is not None and not isinstance(compile, bool):
            raise TypeError(f"{owner}: compile must be True, False or None, got {compile!r}")
        self.compile = compile
        self._compiled: dict[tuple[int, str], Any] = {}  # (id(cell), "scan[+recompute]" | "step") -> it
        self._build_cells(cell_fn, owner)
        self.scope_name = name or (type(self).__name__ if type(self) is not Recurrent
                                   else type(self.cell(0)).__name__)
        self.name_parameters()

    def _build_cells(self, cell_fn: Callable[[int], Cell], owner: str) -> None:
        n_in = self.input_size
        for layer in range(self.num_layers):
            for d in range(self.num_directions):
                cell = cell_fn(n_in)
                if not isinstance(cell, Cell):
                    raise TypeError(f"{owner}: cell_fn must return an rnn.Cell, got {type(cell).__name__}")
                if cell.input_size != n_in:
                    raise ValueError(f"{owner}: cell_fn({n_in}) built a cell with input_size "
                                     f"{cell.input_size}")
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                self.register_module(f"cell{sfx}", cell, suffix=sfx)
            n_in = self.num_directions * cell.output_size
        shapes = {tuple(s.shape[1:] for s in c.init_state(1, c.dtype)) for c in self.cells()}
        if len(shapes) != 1:
            raise ValueError(f"{owner}: every layer's cell must have the same state shapes (they are "
                             f"stacked into (num_layers*num_directions, B, ...)), got {sorted(shapes)}")

    def __getstate__(self) -> dict[str, Any]:
        """Pickled and deep-copied without its compiled programs (keyed by the cells' ids, and not
        picklable): the copy traces its own on first use."""
        return {**self.__dict__, "_compiled": {}}

    # ------------------------------------------------------------------ structure
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def cell(self, layer: int, direction: int = 0) -> Cell:
        """The cell of one layer and direction (0 forward, 1 reverse)."""
        return getattr(self, f"cell_l{layer}" + ("_reverse" if direction else ""))

    def cells(self) -> list[Cell]:
        """Every cell, layer by layer, forward before reverse."""
        return [self.cell(k // self.num_directions, k % self.num_directions)
                for k in range(self.num_layers * self.num_directions)]

    @property
    def hidden_size(self) -> int:
        return self.cell(0).hidden_size

    @property
    def dtype(self) -> np.dtype:
        """The parameters' dtype (follows ``.to()`` / ``.double()``)."""
        return self.cell(0).dtype

    def reset_parameters(self, rng: np.random.Generator | None = None, dtype: Any = None) -> None:
        """Re-draw every cell's parameters in order (the built-ins: PyTorch's order and init)."""
        for c in self.cells():
            c.reset_parameters(rng, dtype)

    def register_step_hook(self, hook: StepHook) -> RemovableHandle:
        """Call ``hook(self, layer, direction, t, state)`` after every time step of every forward
        (``t`` counts from ``t0``; ``state`` is the tuple carried to the next step). Returns a handle
        whose ``remove()`` unregisters it. ``rnn.record_hiddens`` is built on this."""
        if not callable(hook):
            raise TypeError(f"register_step_hook: expected a callable, got {type(hook).__name__}")
        self._step_hooks.append(hook)
        return RemovableHandle(self._step_hooks, hook)

    #: settings ``repr`` shows when they differ from their default
    repr_options: tuple[tuple[str, Any], ...] = (("num_layers", 1), ("batch_first", False), ("dropout", 0.0),
                                                 ("bidirectional", False), ("compile", None),
                                                 ("recompute", False))

    def extra_repr(self) -> str:
        return f"{self.input_size}" + self._options_repr()

    def _options_repr(self) -> str:
        return "".join(f", {k}={getattr(self, k)}" for k, default in self.repr_options
                       if getattr(self, k) != default)

    # ------------------------------------------------------------------ input checks
    def _fail(self, msg: str) -> mg.ShapeError:
        return mg.ShapeError(f"{self.scope_name}: {msg}")

    def _tensor(self, v: Any, what: str) -> Tensor:
        return as_tensor_of(self.scope_name, v, self.dtype, what)

    def _state_labels(self, n: int) -> tuple[str, ...]:
        if self.state_names is not None:
            return self.state_names
        return ("hx",) if n == 1 else tuple(f"hx[{k}]" for k in range(n))

    def _initial(self, hx: Any, batch: int, unbatched: bool) -> list[Tensor] | None:
        """hx checked and as a list of (D*L, B, H_k) tensors, or None for the zero state."""
        if hx is None:
            return None
        zeros = self.cell(0).init_state(batch, self.dtype)
        names = self._state_labels(len(zeros))
        if self.state_is_tensor:
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"{self.scope_name}: hx must be one tensor h0 of shape (num_layers*"
                                f"num_directions, batch, hidden_size), got a {type(hx).__name__} (an "
                                "LSTM's (h0, c0) state?)")
            hx = (hx,)
        elif len(zeros) == 1 and not isinstance(hx, (tuple, list)):
            hx = (hx,)
        if not isinstance(hx, (tuple, list)) or len(hx) != len(zeros):
            raise TypeError(f"{self.scope_name}: hx must be a tuple ({', '.join(names)}), got "
                            f"{type(hx).__name__}" + (f" of length {len(hx)}" if isinstance(hx, (tuple, list))
                                                      else ""))
        return [self._check_state(s, z.shape[1:], unbatched, what, batch)
                for s, z, what in zip(hx, zeros, names)]

    def _check_state(self, s: Any, size: tuple[int, ...], unbatched: bool, what: str, batch: int) -> Tensor:
        s = self._tensor(s, what)
        n = self.num_layers * self.num_directions
        want = (n, *size) if unbatched else (n, batch, *size)
        if s.shape != want:
            raise self._fail(f"{what} must have shape {want} (num_layers*num_directions, "
                             f"{'' if unbatched else 'batch, '}hidden_size), got {s.shape} [{s.dtype}]")
        return s.unsqueeze(1) if unbatched else s

    def _lengths(self, lengths: Any, seq_len: int, batch: int, unbatched: bool) -> np.ndarray | None:
        """lengths as an int array (B,), or None when no step is padded."""
        if lengths is None:
            return None
        arr = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
        if unbatched and arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1 or arr.shape[0] != batch or arr.dtype.kind not in "iu":
            raise ValueError(f"{self.scope_name}: lengths must be {batch} integers (one per batch "
                             f"element), got {arr.shape} [{arr.dtype}]")
        if arr.min() < 0 or arr.max() > seq_len:
            raise ValueError(f"{self.scope_name}: lengths must lie in [0, {seq_len}] (the padded "
                             f"sequence length), got min {arr.min()} max {arr.max()}")
        return None if (arr == seq_len).all() else arr.astype(np.int64)

    def _input(self, x: Any) -> tuple[Tensor, int, int, bool]:
        """(x, seq_len, batch, unbatched) after checking x."""
        x = self._tensor(x, "input")
        if x.ndim not in (2, 3):
            raise self._fail(f"input must be 3-D (seq, batch, feature) / (batch, seq, feature) or 2-D "
                             f"unbatched (seq, feature), got {x.shape} [{x.dtype}]")
        if x.shape[-1] != self.input_size:
            raise self._fail(f"input has {x.shape[-1]} features (shape {x.shape}) but input_size is "
                             f"{self.input_size}")
        unbatched = x.ndim == 2
        if unbatched:
            seq_len, batch = x.shape[0], 1
        elif self.batch_first:
            batch, seq_len = x.shape[:2]
        else:
            seq_len, batch = x.shape[:2]
        if seq_len == 0:
            raise self._fail(f"input has no time steps (shape {x.shape})")
        return x, seq_len, batch, unbatched

    # ------------------------------------------------------------------ forward
    def forward(self, x: Any, hx: Any = None, lengths: Any = None, *, t0: int = 0) -> tuple[Tensor, Any]:
        """Run the layer over a sequence; returns ``(output, state)``.

        ``lengths``: true length of each batch element (padded steps hold the state, output 0).
        ``t0``: time index of the first step in the ``t=...`` scopes (to number the steps of a long
        sequence fed in pieces, e.g. by truncated BPTT or step-by-step generation).
        """
        x, seq_len, batch, unbatched = self._input(x)
        mask = self._lengths(lengths, seq_len, batch, unbatched)
        init = self._initial(hx, batch, unbatched)
        with mg.scope(self.scope_name):
            if unbatched:
                x = x.unsqueeze(1)
            elif self.batch_first:
                x = x.transpose(0, 1)
            out, finals = self._layers(x, init, mask, t0)
            state = [mg.stack([f[i] for f in finals], axis=0) if len(finals) > 1
                     else finals[0][i].unsqueeze(0) for i in range(len(finals[0]))]
            if unbatched:
                out = out.squeeze(1)
                state = [s.squeeze(1) for s in state]
            elif self.batch_first:
                out = out.transpose(0, 1)
        return out, (state[0] if self.state_is_tensor else tuple(state))

    def _layers(self, x: Tensor, init: list[Tensor] | None, mask: np.ndarray | None,
                t0: int) -> tuple[Tensor, list[tuple[Tensor, ...]]]:
        """Every layer and direction over x (T, B, F): (top outputs (T, B, D*O), final states)."""
        h0s = None if init is None else [s.unbind(0) for s in init]
        finals: list[tuple[Tensor, ...]] = []
        out = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                start = None if h0s is None else tuple(s[k] for s in h0s)
                with mg.scope(f"layer{layer}" + ("_reverse" if d else "")):
                    o, fin = self._direction(out, layer, d, start, mask, t0)
                outs.append(o)
                finals.append(fin)
            out = outs[0] if len(outs) == 1 else mg.concatenate(outs, axis=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                out = self._dropout(out)
        return out, finals

    def _dropout(self, out: Tensor) -> Tensor:
        """Inverted dropout between layers: zero with probability p, scale the rest by 1/(1-p)."""
        rng = mg.default_rng() if self.rng is None else self.rng
        p = self.dropout
        keep = rng.random(out.shape) >= p
        scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
        return out * Tensor((keep * scale).astype(self.dtype))

    def _direction(self, x: Tensor, layer: int, direction: int, init: tuple[Tensor, ...] | None,
                   mask: np.ndarray | None, t0: int) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One layer and direction over x (T, B, F): (outputs (T, B, O), final state)."""
        cell = self.cell(layer, direction)
        seq_len, batch, feat = x.shape
        state = cell.init_state(batch, self.dtype) if init is None else init
        hoists = cell.hoists_input()
        step = cell.step if hoists else cell.forward
        compiled = (mg.compiles_by_default() if self.compile is None else self.compile) \
            and not self._cannot_compile(cell)
        if compiled and not self._step_hooks:  # the whole sequence: one compiled recurrence
            got = self._scan(cell, step, x, state, mask, direction, t0)
            if got is not None:
                return got
            compiled = False
        if compiled:  # hooks see every step's state: one compiled node per step
            step = self._compiled_step(cell, step)
        if hoists:
            p = cell.project(x.reshape(seq_len * batch, feat))  # all steps: one product
            inputs = p.split(batch) if seq_len > 1 else (p,)
        else:
            inputs = x.unbind(0) if seq_len > 1 else (x.squeeze(0),)
        if not inputs[0].requires_grad:  # drawings label leaves by name (x_t and h_0 may look alike)
            _name_leaves(inputs, "input")
        _name_leaves(state, "initial state")
        hooks = self._step_hooks
        outs: list[Tensor | None] = [None] * seq_len
        # The loop records O(T) graph objects and no reference cycles, so the cyclic GC is paused
        # meanwhile: its full passes over the growing graph would cost more than the recording itself.
        with mg.pause_gc(), mg.step_scopes() as enter:
            for t in (range(seq_len - 1, -1, -1) if direction else range(seq_len)):
                enter(t + t0)
                new = step(inputs[t], state)
                if type(new) is not tuple or len(new) != len(state):
                    new = self._as_state(new, cell, len(state), step)
                state, outs[t] = _held(cell, new, state, None if mask is None else (t < mask)[:, None])
                for hook in hooks:
                    hook(self, layer, direction, t + t0, state)
        out = mg.stack(outs, axis=0) if seq_len > 1 else outs[0].unsqueeze(0)
        return out, state

    def _cannot_compile(self, cell: Cell) -> bool:
        """Whether compiling this cell failed already (it then runs eagerly, warned once)."""
        return any(got.failed for (c, _), got in self._compiled.items() if c == id(cell))

    def _guarded(self, cell: Cell, kind: str, make: Callable[[], Any], eager: Callable[..., Any]) -> _Guarded:
        """The cell's compiled ``kind`` ("scan", "scan+recompute" or "step"), made by ``make()`` on first
        use and again when a parameter or buffer of the cell was replaced (a new trace)."""
        version = mg.nn.structure_version()  # unchanged: no module anywhere changed since the last walk
        got = self._compiled.get((id(cell), kind))
        if got is not None and got.version == version:
            return got
        params = [id(q) for q in cell.parameters()] + [id(b) for _, b in cell.named_buffers()]
        if got is None or got.params != params:
            got = self._compiled[id(cell), kind] = _Guarded(make(), eager, f"{self.scope_name}: "
                                                            f"{type(cell).__name__}.{eager.__name__}")
            got.params = params
        got.version = version
        return got

    def _compiled_step(self, cell: Cell, step: Callable[..., Any]) -> Callable[..., Any]:
        """``step`` compiled (``minigrad.compile``); the eager step, after ONE warning naming why, when
        the cell cannot be compiled."""
        return self._guarded(cell, "step", lambda: mg.compile(step), step)

    def _scan(self, cell: Cell, step: Callable[..., Any], xs: Tensor, state: tuple[Tensor, ...],
              mask: np.ndarray | None, direction: int, t0: int) -> tuple[Tensor, tuple[Tensor, ...]] | None:
        """The whole sequence as ONE compiled recurrence (``minigrad.compile_scan``) of ``step`` over
        ``xs`` (T, B, F), after the cell's input projection (its prologue) when it hoists one; None
        (after one warning) when the cell cannot be compiled. Drawings unroll it into the steps
        ``t0 ...`` (``mg.unroll``)."""
        pre = _Projection(cell) if cell.hoists_input() else None
        rc = bool(self.recompute)
        got = self._guarded(cell, "scan+recompute" if rc else "scan",
                            lambda: mg.compile_scan(_ScanBody(self, cell, step), pre, recompute=rc), step)
        seq = (xs,) if mask is None else (xs, Tensor((np.arange(xs.shape[0])[:, None] < mask)[:, :, None]))
        _name_leaves(state, "initial state")
        try:
            state, out = got.compiled(tuple(state), seq, reverse=bool(direction), t0=t0)
        except mg.CompileError as exc:
            got.fail(exc)
            return None
        return out, state

    def _as_state(self, new: Any, cell: Cell, n: int, step: Callable[..., Any]) -> tuple[Tensor, ...]:
        """A step's result as a state tuple, or a clear error naming the method that returned it."""
        if isinstance(new, (tuple, list)) and len(new) == n and all(isinstance(s, Tensor) for s in new):
            return tuple(new)
        what = "step(p, state)" if step.__name__ == "step" else "forward(x, state)"
        raise TypeError(f"{self.scope_name}: {type(cell).__name__}.{what} must return the new "
                        f"state as a tuple of {n} tensor(s) (like init_state), got {type(new).__name__}"
                        + (f" of length {len(new)}" if isinstance(new, (tuple, list)) else "")
                        + (" (wrap it: return (h,))" if isinstance(new, Tensor) else ""))


class _Guarded:
    """A compiled step that falls back to the eager one (warning once) when compiling fails."""

    def __init__(self, compiled: Any, eager: Callable[..., Any], what: str) -> None:
        self.compiled, self.eager, self.what = compiled, eager, what
        self.__name__ = eager.__name__
        self.failed = False
        self.params: list[int] = []
        self.version = -1  # mg.nn.structure_version() when the cell's entries were last walked

    def __call__(self, *args: Any) -> Any:
        if not self.failed:
            try:
                return self.compiled(*args)
            except mg.CompileError as exc:
                self.fail(exc)
        return self.eager(*args)

    def fail(self, exc: Exception) -> None:
        self.failed = True
        warnings.warn(f"{self.what} cannot be compiled, running it uncompiled: {exc}", UserWarning,
                      stacklevel=_caller_level())


class _ScanBody:
    """One step of a layer as the body of ``compile_scan``: ``(state, (x_t[, keep_t])) -> (state, y_t)``,
    checked and masked exactly as the eager loop."""

    def __init__(self, layer: Recurrent, cell: Cell, step: Callable[..., Any]) -> None:
        self.layer, self.cell, self.step = layer, cell, step
        self.__name__ = step.__name__
        self.__qualname__ = getattr(step, "__qualname__", step.__name__)
        self.__wrapped__ = step  # the generated module names step as its source
        try:  # the generated code's variables: step(gx, state) -> carry ``state_k``, xs ``gx_k``
            x, c = list(inspect.signature(step).parameters)[:2]
        except (TypeError, ValueError):
            x, c = "x", "state"
        P = inspect.Parameter
        self.__signature__ = inspect.Signature([P(c, P.POSITIONAL_ONLY), P(x, P.POSITIONAL_ONLY)])

    def __call__(self, state: tuple[Tensor, ...], xs: tuple[Tensor, ...]) -> tuple[Any, Tensor]:
        new = self.step(xs[0], state)
        if type(new) is not tuple or len(new) != len(state):
            new = self.layer._as_state(new, self.cell, len(state), self.step)
        return _held(self.cell, new, state, xs[1] if len(xs) > 1 else None)


class _Projection:
    """A cell's input projection as the prologue of its compiled recurrence: ``(x, ...)`` (T, B, F) ->
    ``(project(x) as (T, B, P), ...)``, one product over all T*B rows; a mask passes unchanged."""

    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        self.__wrapped__ = cell.project  # the generated code names the cell's parameters as it does

    def __call__(self, xs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        T, B, F = xs[0].shape
        p = self.cell.project(xs[0].reshape(T * B, F))
        return (p.reshape(T, B, p.shape[-1]), *xs[1:])


def _held(cell: Cell, new: tuple[Tensor, ...], state: tuple[Tensor, ...], keep: Any
          ) -> tuple[tuple[Tensor, ...], Tensor]:
    """(state, output) after a step: where ``keep`` (B, 1) is False (a padded step) the state is held
    and the output is 0; ``keep`` None: every step is real."""
    if keep is None:
        return new, cell.output(new)
    return tuple(mg.where(keep, n, s) for n, s in zip(new, state)), mg.where(keep, cell.output(new), 0.0)


def _caller_level() -> int:
    """``stacklevel`` of the first frame outside the rnn package (layers subclass Recurrent)."""
    pkg = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(pkg):
        frame, level = frame.f_back, level + 1
    return level


def _name_leaves(ts: Any, name: str) -> None:
    """Name the unnamed leaves among ``ts`` (the pieces are this layer's own tensors)."""
    for t in ts:
        if t.node is None and t.name is None:
            t.name = name
