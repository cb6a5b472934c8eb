"""``Module``: the base class of layers and models (parameters registered by attribute assignment)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..tensor import Tensor
from .parameter import Parameter


class Module:
    """Assign ``Parameter``s, ``Module``s or lists of modules as attributes; they are found by
    ``parameters()``/``named_parameters()`` (dotted names), saved by ``state_dict()`` and named."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, key: str, value: Any) -> None:
        if "_params" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        self._params.pop(key, None)
        self._modules.pop(key, None)
        if isinstance(value, Parameter):
            self._params[key] = value
            if value.name is None:
                value.name = key
        elif isinstance(value, Module):
            self._modules[key] = value
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Module) for v in value):
            value = ModuleList(value)
            self._modules[key] = value
        object.__setattr__(self, key, value)

    def __delattr__(self, key: str) -> None:
        self._params.pop(key, None)
        self._modules.pop(key, None)
        object.__delattr__(self, key)

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            yield name, mod
            for k, m in reversed(list(mod._modules.items())):
                stack.append((f"{name}.{k}" if name else k, m))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for mname, mod in self.named_modules(prefix):
            for k, p in mod._params.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mname}.{k}" if mname else k), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def name_parameters(self, prefix: str = "") -> Module:
        """Give every parameter its dotted path as ``name`` (drawings and errors show it)."""
        for n, p in self.named_parameters(prefix):
            p.name = n
        return self

    # ------------------------------------------------------------------ modes and grads
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter arrays by dotted name (copies)."""
        return {n: p.data.copy() for n, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays into parameters of the same name and shape (cast to the parameter's dtype)."""
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict({type(self).__name__}): missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        for k, p in params.items():
            if k not in state:
                continue
            arr = np.asarray(state[k].data if isinstance(state[k], Tensor) else state[k])
            if arr.shape != p.shape:
                raise ValueError(f"load_state_dict({type(self).__name__}): '{k}' has shape {arr.shape} "
                                 f"in the state dict but {p.shape} in the model")
            p.data = arr.astype(p.dtype, copy=True)

    # ------------------------------------------------------------------ calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for k, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({k}): {sub}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules, registered as ``0``, ``1``, ..."""

    def __init__(self, modules: Any = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, m: Module) -> ModuleList:
        setattr(self, str(len(self._modules)), m)
        return self

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())
