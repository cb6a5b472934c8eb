"""``copy``: reproduce a short string of symbols after a delay of T blanks (a memory task).

Input (length ``S + T + S``): ``S`` random symbols from an alphabet of ``A``, then ``T - 1`` blanks, a
delimiter ("go"), and ``S`` more blanks. Target: blank everywhere except the last ``S`` positions, which
must repeat the ``S`` symbols. Symbols are classes ``1..A``, blank is ``0``, the delimiter ``A + 1``.
A memoryless model can at best guess the recalled symbols: accuracy ``1/A`` on them, the baseline.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

from ..models import NextStepPredictor
from .base import PerStepTask, batch_rng

BLANK = 0


def generate(n: int, T: int, rng: np.random.Generator, n_symbols: int = 8,
             length: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Integer inputs and targets, both (n, length + T + length).

    ``inputs[:, :length]`` are symbols in ``1..n_symbols``, ``inputs[:, length + T - 1]`` is the delimiter
    ``n_symbols + 1``, everything else blank (0); ``targets[:, -length:]`` repeat the symbols, the rest
    blank.
    """
    if n < 1 or T < 1 or n_symbols < 2 or length < 1:
        raise ValueError(f"copy.generate: need n >= 1, T >= 1, n_symbols >= 2, length >= 1; got n={n}, "
                         f"T={T}, n_symbols={n_symbols}, length={length}")
    L = length + T + length
    symbols = rng.integers(1, n_symbols + 1, (n, length))
    inputs = np.zeros((n, L), np.int64)
    targets = np.zeros((n, L), np.int64)
    inputs[:, :length] = symbols
    inputs[:, length + T - 1] = n_symbols + 1
    targets[:, -length:] = symbols
    return inputs, targets


class CopyTask(PerStepTask):
    name = "copy"
    summary = "repeat S symbols after a delay of T blanks (memory)"
    metric = "recall accuracy"
    higher_is_better = True
    defaults: ClassVar[dict[str, Any]] = dict(cell="gru", hidden=64, layers=1, lr=1e-2, steps=2500, batch=32,
                                              seq_len=20, clip=1.0, bptt=0, eval_size=500)
    n_symbols = 8
    length = 5

    @property
    def vocab(self) -> int:
        return self.n_symbols + 2

    def batch(self, step: int, size: int, split: str = "train") -> dict[str, np.ndarray]:
        rng = batch_rng(self.seed, step, split)
        inp, tgt = generate(size, self.seq_len, rng, self.n_symbols, self.length)
        return {"x": self.one_hot(inp), "inputs": inp, "targets": tgt}

    def one_hot(self, inp: np.ndarray) -> np.ndarray:
        return F.one_hot(inp, self.vocab, self.dtype).data

    def build_model(self, cell: Any, hidden: int, layers: int = 1) -> nn.Module:
        """``rnn.NextStepPredictor`` over one-hot symbols: logits of the blank and the symbols at every
        step (an aligned tagger that carries its state, so ``--bptt`` works)."""
        return NextStepPredictor(self.vocab, hidden, self.n_symbols + 1, **self.model_kw(cell, layers))

    def predict(self, model: nn.Module, x: np.ndarray) -> np.ndarray:
        with mg.no_grad():
            return model(x)[0].data.argmax(-1)

    def evaluate(self, model: nn.Module, n: int | None = None) -> dict[str, float]:
        """Accuracy on the recalled symbols of ``n`` held-out sequences, against chance ``1/A``."""
        b = self.batch(0, n or self.defaults["eval_size"], "test")
        pred = self.predict(model, b["x"])[:, -self.length:]
        tgt = b["targets"][:, -self.length:]
        return {"metric": float(np.mean(pred == tgt)), "baseline": 1.0 / self.n_symbols,
                "exact_match": float(np.mean(np.all(pred == tgt, axis=1)))}

    def showcase(self, model: nn.Module, rng: np.random.Generator) -> str:
        inp, tgt = generate(4, self.seq_len, rng, self.n_symbols, self.length)
        pred = self.predict(model, self.one_hot(inp))[:, -self.length:]
        alpha = "_" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: self.n_symbols]
        lines = [f"copy after T={self.seq_len} blanks: string -> recalled"]
        for i in range(len(inp)):
            s = "".join(alpha[k] for k in inp[i, : self.length])
            p = "".join(alpha[k] for k in pred[i])
            lines.append(f"  {s} -> {p}  {'ok' if np.all(pred[i] == tgt[i, -self.length:]) else 'wrong'}")
        return "\n".join(lines)
