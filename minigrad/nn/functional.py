"""The functional namespace (``from minigrad.nn import functional as F``), PyTorch's names:

- layers: ``linear``, ``embedding``, ``dropout``, ``layer_norm``, ``one_hot``;
- activations: ``relu``, ``tanh``, ``sigmoid``, ``leaky_relu``, ``elu``, ``silu``, ``gelu``,
  ``softplus``, ``hardtanh``, ``relu6``, ``softmax``, ``log_softmax`` (``dim=`` or ``axis=``);
- losses: ``cross_entropy``, ``nll_loss`` (class_losses.py), ``mse_loss``, ``l1_loss``,
  ``binary_cross_entropy``, ``binary_cross_entropy_with_logits`` (pointwise_losses.py).

Activations are written from the engine's ops, so their gradients come from the graph; where PyTorch
picks a one-sided derivative at a kink (leaky_relu, elu at 0; hardtanh at its ends) the same one is
picked here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import dtypes, ops
from ..creation import default_rng
from ..function import Function
from ..ops.broadcast import ShapeError, describe
from ..tensor import Tensor
from . import _args as A
from .class_losses import cross_entropy, nll_loss
from .normalization import layer_norm
from .pointwise_losses import binary_cross_entropy, binary_cross_entropy_with_logits, l1_loss, mse_loss

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "dropout", "elu",
    "embedding", "gelu", "hardtanh", "l1_loss", "layer_norm", "leaky_relu", "linear", "log_softmax",
    "mse_loss", "nll_loss", "one_hot", "relu", "relu6", "sigmoid", "silu", "softmax", "softplus", "tanh",
]


# ---------------------------------------------------------------------------- layers
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b, with W of shape (out_features, in_features) and b of shape (out_features,)."""
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out_features, in_features), got {weight.shape}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input {describe(x)} does not end in in_features={weight.shape[1]} "
                         f"(weight {describe(weight)})")
    y = ops.matmul(x, weight.T)
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise ShapeError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
        y = y + bias
    return y


class EmbeddingFn(Function):
    """y[..., :] = W[idx[...], :];  dL/dW[k] = sum over positions with idx == k of g (scatter-add),
    except row ``padding_idx`` which gets no gradient."""

    name = "embedding"

    @staticmethod
    def forward(ctx, w, *, idx, padding_idx):
        ctx.idx, ctx.shape, ctx.padding_idx = idx, w.shape, padding_idx
        return w[idx]

    @staticmethod
    def backward(ctx, g):
        gw = np.zeros(ctx.shape, g.dtype)
        np.add.at(gw, ctx.idx.reshape(-1), g.reshape(-1, ctx.shape[1]))
        if ctx.padding_idx is not None:
            gw[ctx.padding_idx] = 0
        return gw


def embedding(idx: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by the integer array ``idx``;
    shape idx.shape + (dim,)."""
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-D (num_embeddings, dim), got {weight.shape}")
    arr = A.indices(idx, "embedding", "indices")
    A.check_indices("embedding", arr, weight.shape[0], "indices")
    if padding_idx is not None:
        padding_idx = int(padding_idx) % weight.shape[0]
    return EmbeddingFn.apply(weight, idx=arr, padding_idx=padding_idx)


class DropoutFn(Function):
    """y = x * m / (1 - p) with a fixed 0/1 mask m;  dL/dx = g * m / (1 - p)."""

    name = "dropout"

    @staticmethod
    def forward(ctx, x, *, mask):
        ctx.mask = mask
        return x * mask

    @staticmethod
    def backward(ctx, g):
        return g * ctx.mask


def dropout(x: Tensor, p: float = 0.5, training: bool = True,
            rng: np.random.Generator | None = None) -> Tensor:
    """Zero each entry with probability ``p`` and scale the rest by 1/(1-p) (identity when not
    ``training`` or p == 0). The mask is drawn from ``rng`` (default: minigrad's global generator)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    x = A.float_input(x, "dropout")
    rng = default_rng() if rng is None else rng
    keep = rng.random(x.shape) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(x.dtype)
    return DropoutFn.apply(x, mask=mask)


# ---------------------------------------------------------------------------- activations
def _soft(fn: str, op: Any, x: Tensor, dim: int | None, axis: int | None, dtype: Any) -> Tensor:
    x = A.float_input(x, fn)
    if dtype is not None:
        x = x.astype(dtypes.resolve(dtype))
    d = A.pick_dim(fn, dim, axis, default=None)
    if d is None:
        if x.ndim > 2:  # PyTorch's deprecated implicit choice would be 0 (3-D) or 1: not guessed here
            raise ValueError(f"{fn}: pass dim= for a {x.ndim}-D input (PyTorch's implicit choice is "
                             "deprecated and is not the last axis)")
        d = -1
    if not -max(x.ndim, 1) <= d < max(x.ndim, 1):
        raise ValueError(f"{fn}: dim {d} is out of range for an input with {x.ndim} dimension(s)")
    return op(x, d)


def softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None, dtype: Any = None) -> Tensor:
    """e^{x_i} / sum_j e^{x_j} along ``dim`` (or ``axis``), shifted by the max: stable for |x| = 1000.
    Without a dim: the last axis of a 0-, 1- or 2-D input (as PyTorch), an error for more axes.
    ``dtype`` casts the input first (PyTorch)."""
    return _soft("softmax", ops.softmax, x, dim, axis, dtype)


def log_softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None,
                dtype: Any = None) -> Tensor:
    """x_i - log sum_j e^{x_j} along ``dim`` (or ``axis``), stable; the default dim as ``softmax``'s."""
    return _soft("log_softmax", ops.log_softmax, x, dim, axis, dtype)


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0), derivative 0 at 0. ``inplace`` is accepted for PyTorch code and ignored: the
    result is a new tensor."""
    return ops.relu(x)


def tanh(x: Tensor) -> Tensor:
    return ops.tanh(x)


def sigmoid(x: Tensor) -> Tensor:
    return ops.sigmoid(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, else a x;  derivative 1 for x > 0, else a (PyTorch's choice at 0)."""
    x = A.float_input(x, "leaky_relu")
    return ops.where(x.data > 0, x, x * float(negative_slope))


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, else alpha (e^x - 1) (exp of min(x, 0), so large x cannot overflow);
    derivative 1 for x > 0, else alpha e^x."""
    x = A.float_input(x, "elu")
    neg = (ops.clip(x, None, 0.0).exp() - 1.0) * float(alpha)
    return ops.where(x.data > 0, x, neg)


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    """x sigmoid(x) (also called swish)."""
    return x * ops.sigmoid(x)


class Erf(Function):
    """y = erf(x) = 2/sqrt(pi) int_0^x e^{-t^2} dt;  dL/dx = g * 2/sqrt(pi) e^{-x^2}."""

    name = "erf"
    _erf = np.frompyfunc(math.erf, 1, 1)

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.asarray(Erf._erf(x), dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        x = ctx.x
        return (g * (2.0 / math.sqrt(math.pi)) * np.exp(-x * x)).astype(x.dtype, copy=False)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) with Phi(x) = (1 + erf(x / sqrt 2)) / 2 (``approximate="none"``), or PyTorch's tanh
    form x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (``approximate="tanh"``)."""
    x = A.float_input(x, "gelu")
    if approximate == "none":
        return x * ((Erf.apply(x * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5)
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * ((ops.tanh(inner) + 1.0) * 0.5)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^{beta x}) / beta, and x itself where beta x > threshold (PyTorch);
    derivative sigmoid(beta x), resp. 1."""
    x = A.float_input(x, "softplus")
    if beta <= 0:
        raise ValueError(f"softplus: beta must be > 0, got {beta}")
    b = float(beta)
    smooth = ops.softplus(x) if b == 1.0 else ops.softplus(x * b) * (1.0 / b)
    return ops.where(x.data * b > threshold, x, smooth)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]; derivative 1 strictly inside, 0 elsewhere (PyTorch's, also at
    the two ends)."""
    x = A.float_input(x, "hardtanh")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} must not exceed max_val {max_val}")
    inside = (x.data > min_val) & (x.data < max_val)
    return ops.where(inside, x, Tensor(np.clip(x.data, min_val, max_val)))


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6) (``hardtanh(x, 0, 6)``)."""
    return hardtanh(x, 0.0, 6.0)


# ---------------------------------------------------------------------------- encodings
def one_hot(idx: Any, num_classes: int = -1, dtype: dtypes.DTypeLike = "float32") -> Tensor:
    """``idx.shape + (num_classes,)`` array with a 1 at each index (no gradient). ``num_classes=-1``
    means ``max(idx) + 1``. Float32 by default (so it mixes with logits); PyTorch's is int64."""
    arr = A.indices(idx, "one_hot", "indices")
    if num_classes == -1:
        num_classes = int(arr.max()) + 1 if arr.size else 0
    if num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be >= 0 or -1, got {num_classes}")
    A.check_indices("one_hot", arr, num_classes, "indices")
    out = np.zeros((*arr.shape, num_classes), dtypes.resolve(dtype))
    np.put_along_axis(out, arr[..., None], 1, axis=-1)
    return Tensor(out)
