"""minigrad train steps: the bench's own minimal layer loop, and ``rnn``'s layers (``rnn.make_rnn``).

The loop is what an RNN layer should do in minigrad: hoist the input projection of all T steps into
one matmul (biases folded in), split the sequence with ONE ``unbind`` (one multi-output node), and per
time step ONE node: the fused cell op with the recurrent product folded in (``h_prev=``,
``w_hh=``); outputs are stacked once. The loss is
``mean((h_1..T - y)^2)`` and ``backward()`` does BPTT through the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import minigrad as mg

Params = dict[str, np.ndarray]


def make_params(params: Params) -> dict[str, mg.Tensor]:
    return {k: mg.tensor(v, requires_grad=True) for k, v in params.items()}


def forward_loop(kind: str, x: mg.Tensor, P: dict[str, mg.Tensor], mode: str = "fold") -> mg.Tensor:
    """Outputs h_1..T (T, B, H) of a one-layer RNN/GRU/LSTM (RNN: tanh) with h0 = c0 = 0.

    ``mode``: "fold" = one node per step (the fused op with the recurrent product folded in);
    "fused" = per step matmul + add + fused cell op; "unfused" = the cell from primitive ops.
    """
    T, B, In = x.shape
    w_ih, w_hh, b_ih, b_hh = P["w_ih"], P["w_hh"], P["b_ih"], P["b_hh"]
    H = w_hh.shape[1]
    x2 = x.reshape(T * B, In)
    whhT = w_hh.T
    h = mg.tensor(np.zeros((B, H), x.dtype))
    outs = []
    fold, fused = mode == "fold", mode != "unfused"
    if kind == "gru":
        steps = (x2 @ w_ih.T + b_ih).reshape(T, B, 3 * H).unbind(0)
        for t, gi in enumerate(steps):
            with mg.scope(f"t={t}"):
                if fold:
                    h = mg.gru_cell(gi, None, h, w_hh=w_hh, b_hh=b_hh)
                else:
                    gh = h @ whhT + b_hh
                    h = mg.gru_cell(gi, gh, h) if fused else _gru_prim(gi, gh, h)
            outs.append(h)
    elif kind == "lstm":
        c = mg.tensor(np.zeros((B, H), x.dtype))
        steps = (x2 @ w_ih.T + (b_ih + b_hh)).reshape(T, B, 4 * H).unbind(0)
        for t, gx in enumerate(steps):
            with mg.scope(f"t={t}"):
                if fold:
                    h, c = mg.lstm_cell(gx, c, h_prev=h, w_hh=w_hh)
                else:
                    gates = gx + h @ whhT
                    h, c = mg.lstm_cell(gates, c) if fused else _lstm_prim(gates, c)
            outs.append(h)
    else:
        steps = (x2 @ w_ih.T + (b_ih + b_hh)).reshape(T, B, H).unbind(0)
        for t, px in enumerate(steps):
            with mg.scope(f"t={t}"):
                if fold:
                    h = mg.rnn_cell(px, h_prev=h, w_hh=w_hh)
                else:
                    pre = px + h @ whhT
                    h = mg.rnn_cell(pre) if fused else pre.tanh()
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


def loop_step(kind: str, x: np.ndarray, y: np.ndarray, P: dict[str, mg.Tensor],
              mode: str = "fold") -> tuple[float, dict[str, np.ndarray]]:
    """One train step (forward over T, MSE, full BPTT) through the bench's layer loop."""
    for p in P.values():
        p.grad = None
    out = forward_loop(kind, mg.tensor(x), P, mode)
    diff = out - mg.tensor(y)
    loss = (diff * diff).mean()
    loss.backward()
    return float(loss.data), {k: p.grad for k, p in P.items()}


# ------------------------------------------------------------------ rnn's layers
_NAMES = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}


def make_rnn_layer(kind: str, params: Params, fused: bool = True) -> Any:
    """``rnn.make_rnn(kind, ...)`` (PyTorch's RNN/GRU/LSTM, time-major) holding a copy of ``params``."""
    from rnn import make_rnn

    H = params["w_hh"].shape[1]
    In = params["w_ih"].shape[1]
    layer = make_rnn(kind, In, H, fused=fused, dtype=params["w_hh"].dtype, batch_first=False)
    named = dict(layer.named_parameters())
    for k, name in _NAMES.items():
        assert named[name].shape == params[k].shape, (name, named[name].shape, params[k].shape)
        named[name].data = params[k].copy()
    return layer


def layer_step(layer: Any, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """One train step through an ``rnn`` layer of PyTorch's cells (the gradients of its four weights)."""
    named = dict(layer.named_parameters())
    for p in named.values():
        p.grad = None
    out, _ = layer(mg.tensor(x))
    diff = out - mg.tensor(y)
    loss = (diff * diff).mean()
    loss.backward()
    return float(loss.data), {k: named[n].grad for k, n in _NAMES.items()}


def step_fn(kind: str, x: np.ndarray, y: np.ndarray, params: Params, impl: str = "loop"
            ) -> Callable[[], tuple[float, dict[str, np.ndarray]]]:
    """A zero-argument train step for ``impl``: "loop" (one node per step), "loop-3node" (matmul, add,
    fused cell per step), "loop-unfused" (primitive cells), "rnn" / "rnn-unfused" / "rnn-compiled"
    (``rnn.make_rnn``: fused kernels, primitive cells, ``compile=True``: one compiled recurrence)."""
    if impl.startswith("rnn"):
        layer = make_rnn_layer(kind, params, fused=impl == "rnn")
        layer.compile = impl == "rnn-compiled"
        return lambda: layer_step(layer, x, y)
    P = make_params(params)
    mode = {"loop": "fold", "loop-3node": "fused", "loop-unfused": "unfused"}[impl]
    return lambda: loop_step(kind, x, y, P, mode)


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
        diff = out - y
        loss = (diff * diff).mean()
        loss.backward()
        return float(loss.data)

    return step
