"""Sequence architectures built from the recurrent layers, ``minigrad.nn.Linear`` and ``Embedding``.
All take batch-first inputs (B, T, ...), like most user data; BPTT is ``loss.backward()``.

============================  =======================  ==========================================
architecture                  class                    forward
============================  =======================  ==========================================
many-to-one (classify)        ``SequenceClassifier``   x (B, T, I) [+ lengths] -> logits (B, C)
many-to-one (regress)         ``SequenceRegressor``    x (B, T, I) [+ lengths] -> y (B, O)
many-to-many, aligned         ``SequenceTagger``       x (B, T, I) [+ lengths] -> logits (B, T, C)
many-to-many, bidirectional   ``BiTagger``             the same, reading both directions
next-step prediction          ``NextStepPredictor``    x (B, T, I), state -> (y (B, T, O), state)
one-to-many (generation)      ``Generator``            tokens (B, T), state -> (logits, state);
                                                       ``generate(steps, ...)`` feeds samples back
encoder-decoder               ``Seq2Seq``              src (B, S), tgt (B, T') -> logits (B, T', V);
                                                       ``greedy_decode(src, max_len)``
============================  =======================  ==========================================

``cell`` is a registered cell name ("rnn", "gru", "lstm", or one added by ``rnn.register_cell``) or a
cell factory ``(input_size, hidden_size, *, rng, dtype) -> rnn.Cell`` (a ``Cell`` subclass with that
constructor is one); ``make_rnn`` turns it into a layer. With ``vocab_size`` the inputs of the
classifier/tagger are token ids (B, T) looked up in an ``Embedding(vocab_size, input_size)``. Models
that return a state take it back (``forward(x, state)``), so they plug into ``rnn.tbptt`` and
step-by-step generation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import minigrad as mg
from minigrad import Tensor
from minigrad.nn import Embedding, Linear, Module

from .cells import CellFactory, cell_factory
from .layers import GRU, LSTM, RNN
from .recurrent import Recurrent

__all__ = [
    "BiTagger", "Generator", "NextStepPredictor", "Seq2Seq", "SequenceClassifier", "SequenceRegressor",
    "SequenceTagger", "make_rnn",
]

#: the built-in cell names and their PyTorch layers
TORCH_LAYERS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}

CellSpec = str | CellFactory


def make_rnn(cell: CellSpec, input_size: int, hidden_size: int, num_layers: int = 1,
             bidirectional: bool = False, dropout: float = 0.0, compile: bool | None = None,
             rng: np.random.Generator | None = None, dtype: Any = np.float32, batch_first: bool = True,
             forget_bias: float | None = None, **cell_kw: Any) -> Recurrent:
    """The one model factory of recurrent layers (batch-first by default).

    ``cell`` "rnn" / "gru" / "lstm" gives PyTorch's ``RNN`` / ``GRU`` / ``LSTM`` layer (``cell_kw``:
    e.g. ``nonlinearity="relu"``); any other registered name or a cell factory runs under
    ``Recurrent``, each cell built as ``factory(n_in, hidden_size, rng=rng, dtype=dtype, **cell_kw)``.
    ``forget_bias``: start every cell's forget-gate bias at this value (cells with a
    ``set_forget_bias`` method, e.g. the LSTM: Jozefowicz et al. 2015 recommend 1).
    """
    if isinstance(cell, str) and cell in TORCH_LAYERS:
        layer: Recurrent = TORCH_LAYERS[cell](
            input_size, hidden_size, num_layers=num_layers, batch_first=batch_first, dropout=dropout,
            bidirectional=bidirectional, rng=rng, dtype=dtype, compile=compile, **cell_kw)
    else:
        factory = cell_factory(cell)
        layer = Recurrent(lambda n_in: factory(n_in, hidden_size, rng=rng, dtype=dtype, **cell_kw),
                          input_size, num_layers, bidirectional, batch_first, dropout, rng=rng,
                          compile=compile)
    if forget_bias is not None:
        for c in layer.cells():
            if not hasattr(c, "set_forget_bias"):
                raise ValueError(f"make_rnn: forget_bias needs a cell with a forget gate "
                                 f"(a set_forget_bias method); {type(c).__name__} has none")
            c.set_forget_bias(forget_bias)
    return layer


def _linear_seq(head: Linear, h: Tensor) -> Tensor:
    """Apply a Linear to every step of (B, T, H) as one 2-D product."""
    b, t, f = h.shape
    return head(h.reshape(b * t, f)).reshape(b, t, head.out_features)


def _final_features(h_n: Any, rnn: Recurrent) -> Tensor:
    """The top layer's final hidden state, directions concatenated: (B, D*H). With ``lengths`` this is
    the state after each sequence's own last step (forward) / after its first step (reverse)."""
    h = h_n[0] if isinstance(h_n, tuple) else h_n
    d = rnn.num_directions
    top = h.unbind(0)[-d:]
    return top[0] if d == 1 else mg.concatenate(list(top), axis=-1)


class _Encoder(Module):
    """Optional embedding + recurrent layer; shared by the classifier, regressor and taggers."""

    def __init__(self, input_size: int, hidden_size: int, cell: CellSpec, num_layers: int,
                 bidirectional: bool, dropout: float, vocab_size: int | None, compile: bool | None,
                 rng: np.random.Generator | None, dtype: Any, forget_bias: float | None = None) -> None:
        super().__init__()
        self.embedding = (Embedding(vocab_size, input_size, dtype=dtype, rng=rng)
                          if vocab_size is not None else None)
        self.rnn = make_rnn(cell, input_size, hidden_size, num_layers, bidirectional, dropout, compile, rng,
                            dtype, forget_bias=forget_bias)

    def forward(self, x: Any, lengths: Any = None, state: Any = None, t0: int = 0) -> tuple[Tensor, Any]:
        if self.embedding is not None:
            x = self.embedding(x)
        return self.rnn(x, state, lengths=lengths, t0=t0)


class _EncoderHead(Module):
    """A recurrent encoder (optionally over embedded tokens) and a Linear head on its features."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, cell: CellSpec = "lstm",
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 vocab_size: int | None = None, compile: bool | None = None,
                 rng: np.random.Generator | None = None,
                 dtype: Any = np.float32, forget_bias: float | None = None) -> None:
        super().__init__()
        self.encoder = _Encoder(input_size, hidden_size, cell, num_layers, bidirectional, dropout,
                                vocab_size, compile, rng, dtype, forget_bias)
        d = 2 if bidirectional else 1
        self.head = Linear(d * hidden_size, output_size, dtype=dtype, rng=rng)


class _ManyToOne(_EncoderHead):
    def forward(self, x: Any, lengths: Any = None) -> Tensor:
        _, h_n = self.encoder(x, lengths)
        return self.head(_final_features(h_n, self.encoder.rnn))


class SequenceClassifier(_ManyToOne):
    """Many-to-one classification: ``logits = W [h_T (; h_1 reverse)] + b`` from the last layer's final
    state. ``forward(x, lengths=None) -> logits (B, num_classes)``; with ``lengths`` the state is taken
    at each sequence's own last step, so padding does not matter. Train with ``F.cross_entropy``."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, **kw: Any) -> None:
        super().__init__(input_size, hidden_size, num_classes, **kw)

    def predict(self, x: Any, lengths: Any = None) -> np.ndarray:
        """The most likely class of every sequence (B,)."""
        with mg.no_grad():
            return self.forward(x, lengths).data.argmax(axis=-1)


class SequenceRegressor(_ManyToOne):
    """Many-to-one regression: ``y = W h_T + b`` (B, output_size). Train with ``F.mse_loss``."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int = 1, **kw: Any) -> None:
        super().__init__(input_size, hidden_size, output_size, **kw)


class SequenceTagger(_EncoderHead):
    """Many-to-many, aligned: one label per step, ``logits_t = W h_t + b`` (B, T, num_tags).
    ``forward(x, lengths=None)``; logits at padded steps come from zero outputs (mask them in the loss,
    e.g. targets = ignore_index there). For ``F.cross_entropy`` reshape to (B*T, num_tags)."""

    def __init__(self, input_size: int, hidden_size: int, num_tags: int, **kw: Any) -> None:
        super().__init__(input_size, hidden_size, num_tags, **kw)

    def forward(self, x: Any, lengths: Any = None) -> Tensor:
        out, _ = self.encoder(x, lengths)
        return _linear_seq(self.head, out)

    def predict(self, x: Any, lengths: Any = None) -> np.ndarray:
        """The most likely tag at every step (B, T)."""
        with mg.no_grad():
            return self.forward(x, lengths).data.argmax(axis=-1)


class BiTagger(SequenceTagger):
    """Bidirectional many-to-many tagger: the label of step t sees the whole sequence,
    ``logits_t = W [h_t^forward ; h_t^backward] + b``."""

    def __init__(self, input_size: int, hidden_size: int, num_tags: int, **kw: Any) -> None:
        kw.setdefault("bidirectional", True)
        super().__init__(input_size, hidden_size, num_tags, **kw)


class NextStepPredictor(Module):
    """Many-to-many next-step prediction: ``y_t = W h_t + b`` estimates x_{t+1} (or any aligned target).
    ``forward(x, state=None, t0=0) -> (y (B, T, O), state)`` so it plugs into ``rnn.tbptt``;
    ``rollout(x, steps)`` warms up on x then feeds its own predictions back (``O == I``)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int | None = None,
                 cell: CellSpec = "lstm",
                 num_layers: int = 1, dropout: float = 0.0, compile: bool | None = None,
                 rng: np.random.Generator | None = None, dtype: Any = np.float32,
                 forget_bias: float | None = None) -> None:
        super().__init__()
        self.rnn = make_rnn(cell, input_size, hidden_size, num_layers, False, dropout, compile, rng, dtype,
                            forget_bias=forget_bias)
        self.head = Linear(hidden_size, input_size if output_size is None else output_size, dtype=dtype,
                           rng=rng)

    def forward(self, x: Any, state: Any = None, t0: int = 0) -> tuple[Tensor, Any]:
        out, state = self.rnn(x, state, t0=t0)
        return _linear_seq(self.head, out), state

    def rollout(self, x: Any, steps: int) -> np.ndarray:
        """Predictions for the ``steps`` steps after x (B, T, I): (B, steps, I), free-running."""
        steps = _count("NextStepPredictor.rollout", "steps", steps)
        if self.head.out_features != self.rnn.input_size:
            raise ValueError("NextStepPredictor.rollout: needs output_size == input_size")
        with mg.no_grad():
            y, state = self.forward(x)
            t = y.shape[1]
            nxt = y.data[:, -1:]
            preds = []
            for k in range(steps):
                preds.append(nxt)
                y, state = self.forward(nxt, state, t0=t + k)
                nxt = y.data
        return np.concatenate(preds, axis=1)


def _sample(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """One token per row of logits (B, V): argmax when temperature == 0, else a draw from
    softmax(logits / temperature)."""
    if temperature == 0:
        return logits.argmax(axis=-1)
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    u = rng.random((p.shape[0], 1))
    return np.minimum((p.cumsum(axis=-1) < u).sum(axis=-1), p.shape[-1] - 1)


class Generator(Module):
    """One-to-many: a token-level recurrent language model that generates by feeding its samples back.

    ``forward(tokens (B, T), state=None, cond=None, t0=0) -> (logits (B, T, V), state)`` is trained with
    teacher forcing (targets = tokens shifted by one). With ``cond_size`` a conditioning vector
    (B, cond_size) sets the initial state ``h_0 = tanh(W_c cond + b_c)`` of every layer: one input,
    many outputs. ``generate(steps, start, cond, temperature, rng)`` samples token by token from
    softmax(logits / temperature) (temperature 0: greedy), each sample being the next input.
    """

    def __init__(self, vocab_size: int, hidden_size: int, embed_size: int | None = None,
                 cell: CellSpec = "lstm",
                 num_layers: int = 1, cond_size: int | None = None, dropout: float = 0.0,
                 compile: bool | None = None, rng: np.random.Generator | None = None, dtype: Any = np.float32,
                 forget_bias: float | None = None) -> None:
        super().__init__()
        embed_size = hidden_size if embed_size is None else embed_size
        self.vocab_size = int(vocab_size)
        self.embedding = Embedding(vocab_size, embed_size, dtype=dtype, rng=rng)
        self.rnn = make_rnn(cell, embed_size, hidden_size, num_layers, False, dropout, compile, rng, dtype,
                            forget_bias=forget_bias)
        self.head = Linear(hidden_size, vocab_size, dtype=dtype, rng=rng)
        self.cond = Linear(cond_size, hidden_size, dtype=dtype, rng=rng) if cond_size is not None else None

    def initial_state(self, cond: Any) -> Any:
        """h_0 = tanh(W_c cond + b_c) for every layer (the other states, e.g. the LSTM's c_0, zero) from
        cond (B, cond_size)."""
        if self.cond is None:
            raise ValueError("Generator: cond given but the model was built without cond_size")
        cond = cond if isinstance(cond, Tensor) else Tensor(np.asarray(cond, self.rnn.dtype))
        h = self.cond(cond).tanh()
        h0 = mg.stack([h] * self.rnn.num_layers, axis=0)
        if self.rnn.state_is_tensor:
            return h0
        rest = self.rnn.cell(0).init_state(h.shape[0], h.dtype)[1:]
        return (h0, *(mg.zeros((self.rnn.num_layers, *z.shape), dtype=h.dtype) for z in rest))

    def forward(self, tokens: Any, state: Any = None, cond: Any = None, t0: int = 0) -> tuple[Tensor, Any]:
        if state is None and cond is not None:
            state = self.initial_state(cond)
        out, state = self.rnn(self.embedding(tokens), state, t0=t0)
        return _linear_seq(self.head, out), state

    def generate(self, steps: int, start: Any = 0, cond: Any = None, temperature: float = 1.0,
                 rng: np.random.Generator | None = None, state: Any = None) -> np.ndarray:
        """``steps`` tokens (B, steps) sampled one at a time after ``start`` (a token id, or one per
        batch row, or a prompt (B, P) fed first). Seeded by ``rng`` (default: minigrad's global one)."""
        steps = _count("Generator.generate", "steps", steps)
        real = (int, float, np.integer, np.floating)
        if (isinstance(temperature, bool) or not isinstance(temperature, real)
                or not temperature >= 0 or not np.isfinite(temperature)):
            raise ValueError(f"Generator.generate: temperature must be a finite number >= 0, got "
                             f"{temperature!r}")
        rng = mg.default_rng() if rng is None else rng
        prompt = np.asarray(start, dtype=np.int64)
        if prompt.ndim == 0:
            batch = 1 if cond is None else np.shape(cond.data if isinstance(cond, Tensor) else cond)[0]
            prompt = np.full((batch, 1), int(prompt))
        elif prompt.ndim == 1:
            prompt = prompt[:, None]
        out = np.empty((prompt.shape[0], steps), np.int64)
        with mg.no_grad():
            logits, state = self.forward(prompt, state, cond)
            t = prompt.shape[1]
            for k in range(steps):
                tok = _sample(logits.data[:, -1], temperature, rng)
                out[:, k] = tok
                if k + 1 < steps:
                    logits, state = self.forward(tok[:, None], state, t0=t + k)
        return out


class Seq2Seq(Module):
    """Encoder-decoder: the encoder reads the source (B, S) and its final state starts the decoder,
    which emits the target (B, T') one token at a time; S and T' are independent.

    ``forward(src, tgt, src_lengths=None, teacher_forcing=1.0, rng=None) -> logits (B, T', V_tgt)``:
    the decoder's input at step t is ``bos`` at t = 0 and then, with probability ``teacher_forcing``,
    the true previous token tgt[t-1], otherwise the decoder's own greedy prediction (no gradient flows
    through that choice). ``teacher_forcing=1`` runs the decoder over all steps in one layer call;
    anything lower unrolls it step by step. ``greedy_decode(src, max_len)`` is the inference loop.
    Scopes: ``encoder`` / ``decoder`` around the layers' own ``GRU > layer0 > t=...``.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, hidden_size: int, embed_size: int | None = None,
                 cell: CellSpec = "gru", num_layers: int = 1, bos: int = 0, compile: bool | None = None,
                 rng: np.random.Generator | None = None, dtype: Any = np.float32,
                 forget_bias: float | None = None) -> None:
        super().__init__()
        embed_size = hidden_size if embed_size is None else embed_size
        self.bos = int(bos)
        self.src_embedding = Embedding(src_vocab, embed_size, dtype=dtype, rng=rng)
        self.tgt_embedding = Embedding(tgt_vocab, embed_size, dtype=dtype, rng=rng)
        self.encoder = make_rnn(cell, embed_size, hidden_size, num_layers, False, 0.0, compile, rng, dtype,
                                forget_bias=forget_bias)
        self.decoder = make_rnn(cell, embed_size, hidden_size, num_layers, False, 0.0, compile, rng, dtype,
                                forget_bias=forget_bias)
        self.head = Linear(hidden_size, tgt_vocab, dtype=dtype, rng=rng)

    def encode(self, src: Any, src_lengths: Any = None) -> Any:
        """The encoder's final state (each sequence's own last step with ``src_lengths``)."""
        with mg.scope("encoder"):
            _, state = self.encoder(self.src_embedding(src), lengths=src_lengths)
        return state

    def _decode_step(self, tok: np.ndarray, state: Any, t: int) -> tuple[Tensor, Any]:
        with mg.scope("decoder"):
            out, state = self.decoder(self.tgt_embedding(tok[:, None]), state, t0=t)
            return _linear_seq(self.head, out), state

    def forward(self, src: Any, tgt: Any, src_lengths: Any = None, teacher_forcing: float = 1.0,
                rng: np.random.Generator | None = None) -> Tensor:
        tgt = np.asarray(tgt.data if isinstance(tgt, Tensor) else tgt, dtype=np.int64)
        if tgt.ndim != 2:
            raise mg.ShapeError(f"Seq2Seq: tgt must be token ids (B, T'), got shape {tgt.shape}")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"Seq2Seq: teacher_forcing must be in [0, 1], got {teacher_forcing}")
        state = self.encode(src, src_lengths)
        b, steps = tgt.shape
        if teacher_forcing == 1.0:  # all decoder inputs known: one layer call over T' steps
            inp = np.concatenate([np.full((b, 1), self.bos), tgt[:, :-1]], axis=1)
            with mg.scope("decoder"):
                out, _ = self.decoder(self.tgt_embedding(inp), state)
                return _linear_seq(self.head, out)
        rng = mg.default_rng() if rng is None else rng
        tok = np.full(b, self.bos)
        logits = []
        for t in range(steps):
            step, state = self._decode_step(tok, state, t)
            logits.append(step)
            pred = step.data[:, 0].argmax(axis=-1)
            tok = np.where(rng.random(b) < teacher_forcing, tgt[:, t], pred)
        return mg.concatenate(logits, axis=1)

    def greedy_decode(self, src: Any, max_len: int, src_lengths: Any = None,
                      eos: int | None = None) -> np.ndarray:
        """Token ids (B, max_len), each step's argmax fed back; after ``eos`` a row keeps emitting eos."""
        max_len = _count("Seq2Seq.greedy_decode", "max_len", max_len)
        with mg.no_grad():
            state = self.encode(src, src_lengths)
            b = np.shape(src.data if isinstance(src, Tensor) else src)[0]
            tok = np.full(b, self.bos)
            out = np.empty((b, max_len), np.int64)
            done = np.zeros(b, bool)
            for t in range(max_len):
                step, state = self._decode_step(tok, state, t)
                tok = step.data[:, 0].argmax(axis=-1)
                if eos is not None:
                    tok = np.where(done, eos, tok)
                    done |= tok == eos
                out[:, t] = tok
        return out


def _count(owner: str, what: str, v: Any) -> int:
    """``v`` as a number of steps: an integer >= 0 (not a bool), else a ``TypeError``/``ValueError``."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{owner}: {what} must be an integer >= 0, got {type(v).__name__} {v!r}")
    if v < 0:
        raise ValueError(f"{owner}: {what} must be an integer >= 0, got {v}")
    return int(v)
