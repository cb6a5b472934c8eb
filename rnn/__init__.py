"""rnn: recurrent networks built only from minigrad ops -- backpropagation through time is
``loss.backward()`` on the unrolled graph (there is no hand-written backward pass in this package).

- the cell protocol ``Cell`` and ``Recurrent``: one layer for ANY cell (stacked, bidirectional,
  batch_first, dropout, initial state, ``lengths``, ``t0``, step hooks)
- the built-in cells ``RNNCell``, ``GRUCell``, ``LSTMCell`` and their layers ``RNN``, ``GRU``, ``LSTM``
  (PyTorch's equations, gate order, names, shapes, init); one registry of cells by name: ``CELLS``,
  ``register_cell``; one layer factory ``make_rnn``
- truncated BPTT: ``tbptt`` (k1/k2) and the lower-level ``tbptt_windows``
- architectures: ``SequenceClassifier``, ``SequenceRegressor``, ``SequenceTagger``, ``BiTagger``,
  ``NextStepPredictor``, ``Generator``, ``Seq2Seq``
- diagnostics: ``hidden_grad_norms`` / ``record_hiddens`` (||dL/dh_t|| for every step)
- ``clip_grad_norm_`` / ``clip_grad_value_`` re-exported from ``minigrad.nn.utils``
"""

from minigrad.nn.utils import clip_grad_norm_, clip_grad_value_

from .cell import Cell, uniform_init
from .cells import (
    CELLS,
    GRUCell,
    LSTMCell,
    RNNCell,
    cell_factory,
    gru_step,
    lstm_step,
    register_cell,
    rnn_step,
)
from .diagnostics import HiddenRecorder, hidden_grad_norms, record_hiddens
from .layers import GRU, LSTM, RNN
from .models import (
    BiTagger,
    Generator,
    NextStepPredictor,
    Seq2Seq,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
    make_rnn,
)
from .recurrent import Recurrent, StepHook
from .tbptt import TBPTTResult, Window, detach_state, tbptt, tbptt_windows, window_bounds

__all__ = [
    "CELLS", "GRU", "LSTM", "RNN", "BiTagger", "Cell", "GRUCell", "Generator", "HiddenRecorder", "LSTMCell",
    "NextStepPredictor", "RNNCell", "Recurrent", "Seq2Seq", "SequenceClassifier", "SequenceRegressor",
    "SequenceTagger", "StepHook", "TBPTTResult", "Window", "cell_factory", "clip_grad_norm_",
    "clip_grad_value_", "detach_state", "gru_step", "hidden_grad_norms", "lstm_step", "make_rnn",
    "record_hiddens", "register_cell", "rnn_step", "tbptt", "tbptt_windows", "uniform_init", "window_bounds",
]
