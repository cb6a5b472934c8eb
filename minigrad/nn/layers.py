"""Layers: ``Linear``, ``Embedding``, ``Dropout``, ``Sequential``, ``Identity`` (activations are in
``activation.py``, losses in ``loss.py``, ``LayerNorm`` in ``normalization.py``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import dtypes
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, ModuleList
from .parameter import Parameter


class Linear(Module):
    """y = x W^T + b with ``weight`` (out_features, in_features) and ``bias`` (out_features,), both
    drawn from U(-1/sqrt(in_features), 1/sqrt(in_features)) as in PyTorch."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype: dtypes.DTypeLike = "float32", rng: np.random.Generator | None = None,
                 device: Any = None) -> None:
        super().__init__()
        dtypes.check_device(device, "Linear")
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: in_features and out_features must be positive, got "
                             f"{in_features}, {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dt = dtypes.resolve(dtype)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(np.empty((out_features, in_features), dt))
        init.uniform_(self.weight, -bound, bound, rng=rng)
        if bias:
            self.bias = Parameter(np.empty((out_features,), dt))
            init.uniform_(self.bias, -bound, bound, rng=rng)
        else:
            self.bias = None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table: ``forward(idx)`` returns ``weight[idx]`` of shape idx.shape + (embedding_dim,).
    ``weight`` (num_embeddings, embedding_dim) ~ N(0, 1) as in PyTorch; row ``padding_idx`` (if given)
    is zero and gets no gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype: dtypes.DTypeLike = "float32", rng: np.random.Generator | None = None,
                 device: Any = None) -> None:
        super().__init__()
        dtypes.check_device(device, "Embedding")
        if num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError(f"Embedding: sizes must be positive, got {num_embeddings}, {embedding_dim}")
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(f"Embedding: padding_idx {padding_idx} out of range for {num_embeddings} rows")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = None if padding_idx is None else int(padding_idx) % num_embeddings
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtypes.resolve(dtype)))
        init.normal_(self.weight, rng=rng)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, idx: Any) -> Tensor:
        return F.embedding(idx, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


class Dropout(Module):
    """Zeroes entries with probability ``p`` and scales the rest by 1/(1-p) in training mode; the
    identity in eval mode. Masks come from ``rng`` (default: the global generator at call time)."""

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = rng

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Sequential(ModuleList):
    """Modules applied in order: ``Sequential(Linear(2, 8), Tanh(), Linear(8, 1))(x)``, registered as
    ``0``, ``1``, ...; or ``Sequential({"fc": Linear(2, 8), "act": Tanh()})`` to name them."""

    def __init__(self, *modules: Module | dict[str, Module]) -> None:
        if len(modules) == 1 and isinstance(modules[0], dict):
            super().__init__()
            for name, m in modules[0].items():
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: {name!r} is a {type(m).__name__}, not a Module")
                setattr(self, str(name), m)
        else:
            super().__init__(modules)  # type: ignore[arg-type]

    def append(self, m: Module) -> Sequential:
        name = str(len(self._modules))
        if name in self._modules:
            raise ValueError(f"Sequential.append: a module named {name!r} already exists")
        super().append(m)
        return self

    def forward(self, x: Any) -> Any:
        for m in self:
            x = m(x)
        return x

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):  # keeps the names
            return Sequential(dict(list(self._modules.items())[i]))
        return super().__getitem__(i)


class Identity(Module):
    """Returns its input (constructor arguments are accepted and ignored, as in PyTorch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


__all__ = ["Dropout", "Embedding", "Identity", "Linear", "ModuleList", "Sequential"]
