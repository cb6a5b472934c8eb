"""minigrad train steps: the bench's own minimal layer loop, and ``rnn``'s layers (``rnn.make_rnn``).

The loop is the eager graph an RNN layer records, written directly: hoist the input projection of all
T steps into one matmul (biases folded in), split the sequence with ONE ``unbind`` (one multi-output
node), per time step the recurrent product and the cell from primitive ops (``tanh``, ``sigmoid``,
``chunk``, ``*``, ``+``: several nodes a step), and stack the outputs once. The loss is ``F.mse_loss``
(mean((h_1..T - y)^2), one node, as PyTorch's) and ``backward()`` does BPTT through the graph.

``rnn``'s layers run either way: by default (``compile=None``) each layer and direction is ONE
generated recurrence (``minigrad.compile_scan``) when Numba's JIT is on (``mg.compiles_by_default()``),
with ``compile=False`` the eager graph of every step (like the loop here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import minigrad as mg
from minigrad.nn import functional as F

Params = dict[str, np.ndarray]
Data = np.ndarray | mg.Tensor  # a step's input or target: wrapped once by ``step_fn``, as the peers do


def _tensor(v: Data) -> mg.Tensor:
    return v if isinstance(v, mg.Tensor) else mg.tensor(v)


def make_params(params: Params) -> dict[str, mg.Tensor]:
    return {k: mg.tensor(v, requires_grad=True) for k, v in params.items()}


def forward_loop(kind: str, x: mg.Tensor, P: dict[str, mg.Tensor]) -> mg.Tensor:
    """Outputs h_1..T (T, B, H) of a one-layer RNN/GRU/LSTM (RNN: tanh) with h0 = c0 = 0: the hoisted
    projection, one unbind, the primitive cell per step, one stack."""
    T, B, In = x.shape
    w_ih, w_hh, b_ih, b_hh = P["w_ih"], P["w_hh"], P["b_ih"], P["b_hh"]
    H = w_hh.shape[1]
    x2 = x.reshape(T * B, In)
    whhT = w_hh.T
    h = mg.tensor(np.zeros((B, H), x.dtype))
    outs = []
    if kind == "gru":
        steps = (x2 @ w_ih.T + b_ih).reshape(T, B, 3 * H).unbind(0)
        for t, gi in enumerate(steps):
            with mg.scope(f"t={t}"):
                h = _gru_prim(gi, h @ whhT + b_hh, h)
            outs.append(h)
    elif kind == "lstm":
        c = mg.tensor(np.zeros((B, H), x.dtype))
        steps = (x2 @ w_ih.T + (b_ih + b_hh)).reshape(T, B, 4 * H).unbind(0)
        for t, gx in enumerate(steps):
            with mg.scope(f"t={t}"):
                h, c = _lstm_prim(gx + h @ whhT, c)
            outs.append(h)
    else:
        steps = (x2 @ w_ih.T + (b_ih + b_hh)).reshape(T, B, H).unbind(0)
        for t, px in enumerate(steps):
            with mg.scope(f"t={t}"):
                h = (px + h @ whhT).tanh()
            outs.append(h)
    return mg.stack(outs)


def _lstm_prim(gates: mg.Tensor, c: mg.Tensor) -> tuple[mg.Tensor, mg.Tensor]:
    i, f, g, o = gates.chunk(4, axis=-1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def _gru_prim(gi: mg.Tensor, gh: mg.Tensor, h: mg.Tensor) -> mg.Tensor:
    ir, iz, inn = gi.chunk(3, axis=-1)
    hr, hz, hn = gh.chunk(3, axis=-1)
    r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
    n = (inn + r * hn).tanh()
    return (1 - z) * n + z * h


def loop_step(kind: str, x: Data, y: Data, P: dict[str, mg.Tensor]
              ) -> tuple[float, dict[str, np.ndarray]]:
    """One train step (forward over T, MSE, full BPTT) through the bench's layer loop."""
    for p in P.values():
        p.grad = None
    out = forward_loop(kind, _tensor(x), P)
    loss = F.mse_loss(out, _tensor(y))
    loss.backward()
    return float(loss.data), {k: p.grad for k, p in P.items()}


# ------------------------------------------------------------------ rnn's layers
_NAMES = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}


def make_rnn_layer(kind: str, params: Params, compile: bool | None = None) -> Any:
    """``rnn.make_rnn(kind, ..., compile=compile)`` (PyTorch's RNN/GRU/LSTM, time-major) holding a copy
    of ``params``; ``compile``: None (the layers' default), True (one compiled recurrence) or False (the
    eager graph)."""
    from rnn import make_rnn

    H = params["w_hh"].shape[1]
    In = params["w_ih"].shape[1]
    layer = make_rnn(kind, In, H, compile=compile, dtype=params["w_hh"].dtype, batch_first=False)
    named = dict(layer.named_parameters())
    for k, name in _NAMES.items():
        assert named[name].shape == params[k].shape, (name, named[name].shape, params[k].shape)
        named[name].data = params[k].copy()
    return layer


def layer_step(layer: Any, x: Data, y: Data) -> tuple[float, dict[str, np.ndarray]]:
    """One train step through an ``rnn`` layer of PyTorch's cells (the gradients of its four weights)."""
    named = dict(layer.named_parameters())
    for p in named.values():
        p.grad = None
    out, _ = layer(_tensor(x))
    loss = F.mse_loss(out, _tensor(y))
    loss.backward()
    return float(loss.data), {k: named[n].grad for k, n in _NAMES.items() if n in named}  # zoo cells: fewer


IMPLS = ("rnn", "rnn-eager", "loop")


def step_fn(kind: str, x: np.ndarray, y: np.ndarray, params: Params, impl: str = "loop"
            ) -> Callable[[], tuple[float, dict[str, np.ndarray]]]:
    """A zero-argument train step for ``impl``: "rnn" (``rnn.make_rnn``'s layer with its default
    ``compile=None``: one compiled recurrence when Numba's JIT is on), "rnn-eager" (the same layer with
    ``compile=False``: the eager graph of every step) or "loop" (the bench's own eager loop)."""
    xt, yt = mg.tensor(x), mg.tensor(y)  # once, as PyTorch's ``from_numpy`` and JAX's device arrays
    if impl == "rnn" or impl == "rnn-eager":
        layer = make_rnn_layer(kind, params, compile=None if impl == "rnn" else False)
        return lambda: layer_step(layer, xt, yt)
    if impl != "loop":
        raise ValueError(f"step_fn: impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    P = make_params(params)
    return lambda: loop_step(kind, xt, yt, P)


def cell_step_fn(cell: str, In: int, H: int, B: int, T: int, dtype: Any = np.float32, seed: int = 0
                 ) -> Callable[[], float]:
    """A zero-argument train step (forward over T, MSE on all outputs, full BPTT) of a fresh one-layer
    ``rnn.make_rnn(cell, ...)``, for any registered cell (``rnn.CELLS``); returns the loss."""
    from rnn import make_rnn

    rng = np.random.default_rng(seed)
    layer = make_rnn(cell, In, H, rng=rng, dtype=dtype, batch_first=False)
    params = list(layer.parameters())
    x = mg.tensor(rng.standard_normal((T, B, In)).astype(dtype))
    y = mg.tensor((0.5 * rng.standard_normal((T, B, layer.cell(0).output_size))).astype(dtype))

    def step() -> float:
        for p in params:
            p.grad = None
        out, _ = layer(x)
        loss = F.mse_loss(out, y)
        loss.backward()
        return float(loss.data)

    return step
