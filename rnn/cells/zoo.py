"""A zoo of recurrent cells written from primitive minigrad ops, each a few lines that read like its
equations (``W x`` means ``x @ W.T``; σ the logistic sigmoid, ⊙ the elementwise product):

==================  ==================================================  ========  ===============
cell (registry)     equations                                           state     input hoisted
==================  ==================================================  ========  ===============
``MGU`` (mgu)       f = σ(W_f x + U_f h + b_f)                          (h,)      no (``forward``)
                    n = tanh(W_n x + U_n (f ⊙ h) + b_n)
                    h' = (1 − f) ⊙ h + f ⊙ n
``IndRNN``          h' = relu(W x + b + u ⊙ h), u a vector (or tanh)    (h,)      yes
(indrnn)
``PeepholeLSTM``    i = σ(W_i x + U_i h + p_i ⊙ c + b_i)                (h, c)    yes
(peephole_lstm)     f = σ(W_f x + U_f h + p_f ⊙ c + b_f)
                    c' = f ⊙ c + i ⊙ tanh(W_g x + U_g h + b_g)
                    o = σ(W_o x + U_o h + p_o ⊙ c' + b_o),  h' = o ⊙ tanh(c')
``LayerNormRNN``    h' = tanh(LN(W x + U h))                            (h,)      no (``forward``)
(ln_rnn)            LN(a) = γ ⊙ (a − mean(a)) / sqrt(var(a) + ε) + β
==================  ==================================================  ========  ===============

Every cell takes ``(input_size, hidden_size, *, rng=None, dtype="float32")`` (a registry factory),
draws its weights from PyTorch's recurrent default U(−1/√H, 1/√H) (``rnn.uniform_init``) and is
registered by name in ``rnn.CELLS``, so ``rnn.Recurrent``, every model in ``rnn.models``
(``cell="mgu"``), truncated BPTT, the diagnostics and the drawings run it. Cells that split their step
into ``project`` (the input part of all steps in one matrix product) and ``step`` also keep
``forward = step ∘ project`` for a single step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import minigrad as mg
from minigrad import Tensor
from minigrad.nn import Parameter

from ..cell import Cell, uniform_init
from . import register_cell
from .base import float_dtype

__all__ = ["MGU", "IndRNN", "LayerNormRNN", "PeepholeLSTM", "ZooCell"]

State = tuple[Tensor, ...]


class ZooCell(Cell):
    """What the zoo's cells share: drawing their parameters."""

    def uniform(self, rng: np.random.Generator | None, dtype: Any) -> Callable[..., Parameter]:
        """``draw(*shape)``: a new Parameter from U(−1/√H, 1/√H) in ``dtype`` (float32/float64)."""
        dt = float_dtype(type(self).__name__, dtype)
        rng = mg.default_rng() if rng is None else rng
        return lambda *shape: uniform_init(shape, self.hidden_size, rng, dt)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class MGU(ZooCell):
    """Minimal gated unit (Zhou, Wu, Zhang & Zhou 2016, "Minimal gated unit for recurrent neural
    networks"): one forget gate f does the GRU's reset and update jobs.

        f  = σ(W_f x + U_f h + b_f)
        n  = tanh(W_n x + U_n (f ⊙ h) + b_n)
        h' = (1 − f) ⊙ h + f ⊙ n

    State (h,). Parameters w_f, w_n (H, I), u_f, u_n (H, H), b_f, b_n (H,). Not hoisted: ``forward``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, rng: np.random.Generator | None = None,
                 dtype: Any = "float32") -> None:
        super().__init__(input_size, hidden_size)
        draw, n_in, H = self.uniform(rng, dtype), input_size, hidden_size
        self.w_f, self.u_f, self.b_f = draw(H, n_in), draw(H, H), draw(H)
        self.w_n, self.u_n, self.b_n = draw(H, n_in), draw(H, H), draw(H)

    def forward(self, x: Tensor, state: State) -> State:
        (h,) = state
        f = (x @ self.w_f.T + h @ self.u_f.T + self.b_f).sigmoid()
        n = (x @ self.w_n.T + (f * h) @ self.u_n.T + self.b_n).tanh()
        return ((1 - f) * h + f * n,)


class IndRNN(ZooCell):
    """Independently recurrent neural network (Li, Li, Cook, Zhu & Gao 2018, "Independently recurrent
    neural network (IndRNN): building a longer and deeper RNN"): each unit sees only its own past,
    through a recurrent weight VECTOR u,

        h' = act(W x + b + u ⊙ h)          act = relu (the paper's) or tanh

    so dh'_k/dh_k = act' u_k: |u_k| sets how fast unit k forgets, and gradients neither mix nor
    explode across units. State (h,). Parameters w (H, I), u (H,), b (H,). Hoisted: ``project(xs) =
    xs W^T + b`` for all steps at once, ``step(p, h) = act(p + u ⊙ h)``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, rng: np.random.Generator | None = None,
                 dtype: Any = "float32", nonlinearity: str = "relu") -> None:
        if nonlinearity not in ("relu", "tanh"):
            raise ValueError(f"IndRNN: nonlinearity must be 'relu' or 'tanh', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size)
        self.nonlinearity = nonlinearity
        draw = self.uniform(rng, dtype)
        self.w, self.u, self.b = draw(hidden_size, input_size), draw(hidden_size), draw(hidden_size)

    def project(self, xs: Tensor) -> Tensor:
        return xs @ self.w.T + self.b

    def step(self, p: Tensor, state: State) -> State:
        (h,) = state
        a = p + self.u * h
        return (a.relu() if self.nonlinearity == "relu" else a.tanh(),)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class PeepholeLSTM(ZooCell):
    """LSTM with peephole connections (Gers & Schmidhuber 2000, "Recurrent nets that time and count"):
    the gates look at the cell state through diagonal weights, i and f at c, o at the new c'.

        i  = σ(W_i x + U_i h + p_i ⊙ c + b_i)
        f  = σ(W_f x + U_f h + p_f ⊙ c + b_f)
        c' = f ⊙ c + i ⊙ tanh(W_g x + U_g h + b_g)
        o  = σ(W_o x + U_o h + p_o ⊙ c' + b_o)
        h' = o ⊙ tanh(c')

    State (h, c), output h. Parameters w (4H, I) and u (4H, H) stacking the gates i, f, g, o (PyTorch's
    LSTM order), b (4H,), peepholes p_i, p_f, p_o (H,). Hoisted: ``project(xs) = xs W^T + b``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, rng: np.random.Generator | None = None,
                 dtype: Any = "float32") -> None:
        super().__init__(input_size, hidden_size)
        draw, n_in, H = self.uniform(rng, dtype), input_size, hidden_size
        self.w, self.u, self.b = draw(4 * H, n_in), draw(4 * H, H), draw(4 * H)
        self.p_i, self.p_f, self.p_o = draw(H), draw(H), draw(H)

    def init_state(self, batch: int, dtype: Any) -> State:
        return (mg.zeros((batch, self.hidden_size), dtype=dtype),
                mg.zeros((batch, self.hidden_size), dtype=dtype))

    def set_forget_bias(self, value: float) -> None:
        """Start the forget gate open: its bias b_f (rows H:2H of b) set to ``value``."""
        h = self.hidden_size
        self.b.data[h:2 * h] = value

    def project(self, xs: Tensor) -> Tensor:
        return xs @ self.w.T + self.b

    def step(self, p: Tensor, state: State) -> State:
        h, c = state
        a_i, a_f, a_g, a_o = (p + h @ self.u.T).chunk(4, axis=-1)
        i = (a_i + self.p_i * c).sigmoid()
        f = (a_f + self.p_f * c).sigmoid()
        c = f * c + i * a_g.tanh()
        o = (a_o + self.p_o * c).sigmoid()
        return o * c.tanh(), c


class LayerNormRNN(ZooCell):
    """Layer-normalised Elman RNN (Ba, Kiros & Hinton 2016, "Layer normalization", section 3.1): the
    summed inputs are normalised over the H units of the layer at every step, which keeps their scale
    fixed however long the unroll,

        a  = W x + U h
        h' = tanh(γ ⊙ (a − μ) / sqrt(σ² + ε) + β),    μ, σ² = mean, variance of a over its H features

    State (h,). Parameters w (H, I), u (H, H), gain γ (H,) = 1 and bias β (H,) = 0 at init (PyTorch's
    LayerNorm), ``eps`` ε = 1e-5. Not hoisted: ``forward``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, rng: np.random.Generator | None = None,
                 dtype: Any = "float32", eps: float = 1e-5) -> None:
        super().__init__(input_size, hidden_size)
        draw, dt, H = self.uniform(rng, dtype), float_dtype("LayerNormRNN", dtype), hidden_size
        self.w, self.u = draw(H, input_size), draw(H, H)
        self.gain, self.bias = Parameter(np.ones(H, dt)), Parameter(np.zeros(H, dt))
        self.eps = float(eps)

    def forward(self, x: Tensor, state: State) -> State:
        (h,) = state
        a = x @ self.w.T + h @ self.u.T
        d = a - a.mean(axis=-1, keepdims=True)
        var = (d * d).mean(axis=-1, keepdims=True)
        return ((self.gain * d / (var + self.eps).sqrt() + self.bias).tanh(),)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", eps={self.eps}"


for _name, _cell in (("mgu", MGU), ("indrnn", IndRNN), ("peephole_lstm", PeepholeLSTM),
                     ("ln_rnn", LayerNormRNN)):
    register_cell(_name, _cell)
