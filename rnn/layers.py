"""The built-in layers ``RNN``, ``GRU`` and ``LSTM``: the built-in cells under ``rnn.Recurrent``, with
PyTorch's constructor, parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), shapes, init,
state_dict keys and interface:

    rnn(x, h0=None, lengths=None) -> (output, h_n)            RNN, GRU (h0, h_n: tensors)
    lstm(x, (h0, c0)=None, lengths=None) -> (output, (h_n, c_n))

Each layer and direction runs as ONE compiled recurrence (code generated from the cell's ops by
``minigrad.compile_scan``) unless ``compile=False``, which records the literal graph of every step (every
gate an op node, for teaching); values and gradients agree to rounding (``rnn.Recurrent``'s ``compile``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .cell import check_size
from .cells import GRUCell, LSTMCell, RNNCell, float_dtype
from .cells.elman import NONLINEARITIES
from .recurrent import Recurrent

__all__ = ["GRU", "LSTM", "RNN"]


class _TorchLayer(Recurrent):
    """The layer settings PyTorch's ``nn.RNN/GRU/LSTM`` take, shared by the three."""

    state_is_tensor = True

    def __init__(self, cell_cls: type, input_size: int, hidden_size: int, num_layers: int, bias: bool,
                 batch_first: bool, dropout: float, bidirectional: bool, compile: bool | None,
                 rng: np.random.Generator | None, dtype: Any, **cell_kw: Any) -> None:
        name = type(self).__name__
        hidden_size = check_size(name, "hidden_size", hidden_size)
        dt = float_dtype(name, dtype)
        super().__init__(lambda n_in: cell_cls(n_in, hidden_size, bias, rng=rng, dtype=dt, **cell_kw),
                         input_size, num_layers, bidirectional, batch_first, dropout, rng=rng,
                         compile=compile)
        self.bias = bool(bias)

    repr_options = (("num_layers", 1), ("bias", True), *Recurrent.repr_options[1:])

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + self._options_repr()


class RNN(_TorchLayer):
    """Elman RNN ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or relu), stacked and
    optionally bidirectional: ``rnn(x, h0=None, lengths=None) -> (output, h_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, rng: np.random.Generator | None = None,
                 dtype: Any = np.float32, compile: bool | None = None) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(RNNCell, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, compile, rng, dtype, nonlinearity=nonlinearity)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.nonlinearity == "tanh" else ", nonlinearity='relu'")


class GRU(_TorchLayer):
    """Gated recurrent unit layer (PyTorch's equations and gate order r, z, n; see ``rnn.GRUCell``):
    ``gru(x, h0=None, lengths=None) -> (output, h_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 *, rng: np.random.Generator | None = None, dtype: Any = np.float32,
                 compile: bool | None = None) -> None:
        super().__init__(GRUCell, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, compile, rng, dtype)


class LSTM(_TorchLayer):
    """Long short-term memory layer (PyTorch's equations and gate order i, f, g, o; see
    ``rnn.LSTMCell``): ``lstm(x, (h0, c0)=None, lengths=None) -> (output, (h_n, c_n))``."""

    state_is_tensor = False
    state_names = ("h0", "c0")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 *, rng: np.random.Generator | None = None, dtype: Any = np.float32,
                 compile: bool | None = None) -> None:
        super().__init__(LSTMCell, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, compile, rng, dtype)
