"""rnn: recurrent networks built only from minigrad ops -- backpropagation through time is
``loss.backward()`` on the unrolled graph (there is no hand-written backward pass in this package).

- cells: ``RNNCell``, ``GRUCell``, ``LSTMCell`` (PyTorch equations, gate order, names, shapes, init)
- layers: ``RNN``, ``GRU``, ``LSTM`` (stacked, bidirectional, batch_first, dropout, ``lengths``)
- truncated BPTT: ``tbptt`` (k1/k2) and the lower-level ``tbptt_windows``
- architectures: ``SequenceClassifier``, ``SequenceRegressor``, ``SequenceTagger``, ``BiTagger``,
  ``NextStepPredictor``, ``Generator``, ``Seq2Seq``
- diagnostics: ``hidden_grad_norms`` / ``record_hiddens`` (||dL/dh_t|| for every step)
- ``clip_grad_norm_`` / ``clip_grad_value_`` re-exported from ``minigrad.nn.utils``
"""

from minigrad.nn.utils import clip_grad_norm_, clip_grad_value_

from .cells import HAS_FUSED, GRUCell, LSTMCell, RNNCell, gru_step, lstm_step, rnn_step
from .diagnostics import HiddenRecorder, hidden_grad_norms, record_hiddens
from .layers import GRU, LSTM, RNN, RNNBase
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
from .tbptt import TBPTTResult, Window, detach_state, tbptt, tbptt_windows, window_bounds

__all__ = [
    "GRU", "HAS_FUSED", "LSTM", "RNN", "BiTagger", "GRUCell", "Generator", "HiddenRecorder", "LSTMCell",
    "NextStepPredictor", "RNNBase", "RNNCell", "Seq2Seq", "SequenceClassifier", "SequenceRegressor",
    "SequenceTagger", "TBPTTResult", "Window", "clip_grad_norm_", "clip_grad_value_", "detach_state",
    "gru_step", "hidden_grad_norms", "lstm_step", "make_rnn", "record_hiddens", "rnn_step", "tbptt",
    "tbptt_windows", "window_bounds",
]
