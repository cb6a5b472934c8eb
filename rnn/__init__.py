"""rnn: recurrent networks built only from minigrad ops -- backpropagation through time is
``loss.backward()`` on the unrolled graph.

- cells: ``RNNCell``, ``GRUCell``, ``LSTMCell`` (PyTorch equations, names, shapes, init)
- layers: ``RNN``, ``GRU``, ``LSTM`` (stacked, bidirectional, batch_first, dropout, lengths)
"""

from .cells import HAS_FUSED, GRUCell, LSTMCell, RNNCell, gru_step, lstm_step, rnn_step
from .layers import GRU, LSTM, RNN, RNNBase

__all__ = [
    "GRU", "HAS_FUSED", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNBase", "RNNCell", "gru_step", "lstm_step",
    "rnn_step",
]
