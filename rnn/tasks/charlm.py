"""``charlm``: a character-level language model (min-char-rnn / char-rnn style) on a bundled text.

The corpus is ``rnn/data/shakespeare.txt`` (Hamlet and Macbeth, public domain; see
``rnn/data/SOURCE.txt``), split into the first 90 % for training and the last 10 % held out. The model
reads one-hot characters and predicts the next one: ``p(c_{t+1} | c_1..c_t) = softmax(W h_t + b)``.
The loss is the mean negative log-likelihood in nats per character, perplexity = ``exp(loss)``; the
baseline is a unigram model (character frequencies of the training split, add-one smoothed), which knows
no context at all.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

from ..models import NextStepPredictor
from .base import PerStepTask, batch_rng

CORPUS = Path(__file__).resolve().parent.parent / "data" / "shakespeare.txt"
HELD_OUT = 0.1


@lru_cache(maxsize=4)
def load_corpus(path: str | None = None) -> str:
    """The bundled text (or the file at ``path``), read as UTF-8."""
    p = Path(path) if path else CORPUS
    if not p.is_file():
        raise FileNotFoundError(f"charlm: corpus file {p} not found")
    return p.read_text(encoding="utf-8")


class Vocab:
    """Characters <-> integer ids (sorted, so the mapping depends only on the set of characters)."""

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> np.ndarray:
        bad = sorted({c for c in s if c not in self.index})
        if bad:
            raise ValueError(f"charlm: characters {bad!r} are not in the corpus vocabulary")
        return np.array([self.index[c] for c in s], np.int64)

    def decode(self, ids: Any) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def split_corpus(text: str, held_out: float = HELD_OUT) -> tuple[str, str]:
    """(train, held-out): the last ``held_out`` fraction is held out (a contiguous tail, no leakage)."""
    cut = int(len(text) * (1 - held_out))
    return text[:cut], text[cut:]


def unigram_nats(train_ids: np.ndarray, test_ids: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy (nats/char) of ``test_ids`` under the add-one-smoothed unigram of ``train_ids``."""
    counts = np.bincount(train_ids, minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[test_ids].mean())


def sample_windows(ids: np.ndarray, n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` windows of ``length`` consecutive ids starting at uniform random offsets, (n, length)."""
    if length > len(ids):
        raise ValueError(f"charlm: window length {length} exceeds the text length {len(ids)}")
    starts = rng.integers(0, len(ids) - length + 1, n)
    return ids[starts[:, None] + np.arange(length)]


class CharLMTask(PerStepTask):
    name = "charlm"
    summary = "character-level language model on bundled Shakespeare (nats/char vs unigram)"
    metric = "held-out nats/char"
    higher_is_better = False
    min_seq_len = 2
    defaults: ClassVar[dict[str, Any]] = dict(hidden=128, layers=1, lr=5e-3, steps=1200, batch=32, seq_len=64,
                                              clip=1.0, bptt=0, schedule="cosine", eval_chars=20000)

    def __init__(self, seq_len: int | None = None, seed: int = 0, dtype: Any = "float32",
                 corpus: str | None = None) -> None:
        super().__init__(seq_len, seed, dtype)
        text = load_corpus(corpus)
        self.vocab = Vocab(text)
        train, test = split_corpus(text)
        self.train_ids, self.test_ids = self.vocab.encode(train), self.vocab.encode(test)

    def batch(self, step: int, size: int, split: str = "train") -> dict[str, np.ndarray]:
        ids = self.train_ids if split == "train" else self.test_ids
        w = sample_windows(ids, size, self.seq_len + 1, batch_rng(self.seed, step, split))
        return {"x": self.one_hot(w[:, :-1]), "targets": w[:, 1:]}

    def one_hot(self, ids: np.ndarray) -> np.ndarray:
        return F.one_hot(ids, len(self.vocab), self.dtype).data

    def build_model(self, cell: Any, hidden: int, layers: int = 1) -> nn.Module:
        """``rnn.NextStepPredictor`` over one-hot characters: next-character logits at every step."""
        V = len(self.vocab)
        return NextStepPredictor(V, hidden, V, **self.model_kw(cell, layers))

    def held_out_nats(self, model: nn.Module, n_chars: int | None = None, streams: int = 50,
                      window: int = 100) -> float:
        """Mean NLL (nats/char) on the first ``n_chars`` held-out characters, read as ``streams`` parallel
        contiguous streams whose state is carried from window to window (so context is not reset)."""
        n_chars = min(n_chars or self.defaults["eval_chars"], len(self.test_ids) - 1)
        per = n_chars // streams
        if per < 1:
            raise ValueError(f"charlm: n_chars={n_chars} too small for {streams} streams")
        ids = self.test_ids[: streams * per + 1]
        inp = ids[:-1].reshape(streams, per)
        tgt = ids[1:].reshape(streams, per)
        total, state = 0.0, None
        with mg.no_grad():
            for s in range(0, per, window):
                y, state = model(self.one_hot(inp[:, s:s + window]), state)
                total += self.step_loss(y, tgt[:, s:s + window]).item() * y.shape[0] * y.shape[1]
        return float(total / (streams * per))

    def evaluate(self, model: nn.Module, n_chars: int | None = None) -> dict[str, float]:
        """Held-out nats/char and perplexity, against the unigram baseline."""
        nats = self.held_out_nats(model, n_chars)
        base = unigram_nats(self.train_ids, self.test_ids, len(self.vocab))
        return {"metric": nats, "baseline": base, "perplexity": float(np.exp(nats)),
                "baseline_perplexity": float(np.exp(base))}

    def sample(self, model: nn.Module, length: int = 200, prime: str = "\n", temperature: float = 0.8,
               rng: np.random.Generator | None = None) -> str:
        """``prime`` followed by ``length`` characters drawn from ``softmax(logits / temperature)``.

        Temperature < 1 sharpens the distribution (safer, more repetitive), > 1 flattens it.
        """
        if temperature <= 0:
            raise ValueError(f"charlm.sample: temperature must be > 0, got {temperature}")
        if length < 0:
            raise ValueError(f"charlm.sample: length must be >= 0, got {length}")
        if not prime:
            raise ValueError("charlm.sample: the priming string must not be empty")
        rng = rng or np.random.default_rng()
        V = len(self.vocab)
        ids = list(self.vocab.encode(prime))
        out: list[int] = []
        with mg.no_grad():
            y, state = model(self.one_hot(np.array([ids])))
            for _ in range(length):
                z = y.data[0, -1].astype(np.float64) / temperature
                p = np.exp(z - z.max())
                nxt = int(rng.choice(V, p=p / p.sum()))
                out.append(nxt)
                y, state = model(self.one_hot(np.array([[nxt]])), state)
        return prime + self.vocab.decode(out)

    def showcase(self, model: nn.Module, rng: np.random.Generator) -> str:
        text = self.sample(model, 300, prime="Ham.\n", temperature=0.7, rng=rng)
        return "sample (temperature 0.7, primed with 'Ham.\\n'):\n" + text
