"""``Module``: the base class of layers and models (parameters registered by attribute assignment).

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(2, 8)          # a sub-module: its parameters are "fc1.weight", ...
            self.heads = [nn.Linear(8, 1)]      # a list of modules becomes a ModuleList ("heads.0.weight")
            self.scale = nn.Parameter(np.ones(1, np.float32))   # a parameter named "scale"

        def forward(self, x):
            return self.heads[0](self.fc1(x).tanh()) * self.scale
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from .. import dtypes
from ..ops.broadcast import ShapeError
from ..tensor import Tensor
from .parameter import Parameter
from .utils import grad_array, set_grad


class StateDictError(KeyError):
    """``load_state_dict(strict=True)`` found missing or unexpected keys (a ``KeyError`` whose message
    lists both)."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns: keys the model wanted but did not get, and extra keys."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _to_args(owner: str, args: tuple, kwargs: dict[str, Any]) -> Any:
    """The dtype in a ``Module.to(...)`` call (None if only a device was given); checks the device."""
    bad = set(kwargs) - {"device", "dtype", "non_blocking", "memory_format"}
    if bad or len(args) > 3:
        raise TypeError(f"{owner}.to: unexpected arguments {sorted(bad) or args}; expected to(dtype), "
                        "to(device), to(device, dtype) or to(tensor)")
    device, dtype = kwargs.get("device"), kwargs.get("dtype")
    for a in args:
        if a is None or isinstance(a, bool):  # to(device, dtype, non_blocking)
            continue
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif dtypes.is_device(a):
            device = a
        else:
            dtype = a
    dtypes.check_device(device, f"{owner}.to")
    return dtype


def _state_array(owner: str, key: str, v: Any, cur: np.ndarray) -> np.ndarray:
    """One state-dict value as a fresh array of ``cur``'s shape and dtype, or a clear error."""
    if isinstance(v, Tensor):
        arr = v.data
    elif isinstance(v, (np.ndarray, np.generic, int, float, list)):
        arr = np.asarray(v)
    elif hasattr(v, "numpy"):  # a PyTorch tensor (or alike): detach it and bring it to the CPU first
        for step in ("detach", "cpu"):
            if callable(getattr(v, step, None)):
                v = getattr(v, step)()
        arr = np.asarray(v.numpy())
    elif hasattr(v, "__array__"):
        arr = np.asarray(v)
    else:
        raise TypeError(f"load_state_dict({owner}): '{key}' is a {type(v).__name__}, expected an array "
                        "(ndarray, Tensor, list, or anything with .numpy() or __array__)")
    if arr.shape != cur.shape:
        raise ShapeError(f"load_state_dict({owner}): '{key}' has shape {arr.shape} in the state "
                         f"dict but {cur.shape} in the model")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"load_state_dict({owner}): '{key}' has unsupported dtype {arr.dtype}")
    return arr.astype(cur.dtype, copy=True)


#: a fresh number from ``_COUNTER`` after every change of an attribute of any Module
_COUNTER = itertools.count(1)
_structure = [0]


def structure_version() -> int:
    """A number that changes whenever an attribute of any ``Module`` is assigned or deleted, hence
    whenever a parameter, buffer or sub-module anywhere is added, replaced or removed (through
    ``__setattr__``/``__delattr__``, or a buffer replaced by ``to`` or ``load_state_dict``). A cache
    keyed on a module's parameters can skip walking them again while it is unchanged (``rnn``'s
    compiled layers check it at every call). Each change draws a new number once it is complete, so
    the value never returns to one a reader saw. (Changing a model in one thread while another runs it
    is a race, as in PyTorch.)"""
    return _structure[0]


class Module:
    """Assign ``Parameter``s, ``Module``s or lists of modules as attributes; they are found by
    ``parameters()``/``named_parameters()`` (dotted names), saved by ``state_dict()`` and named.

    ``register_buffer(name, array)`` adds non-trainable state that ``state_dict()`` also saves.
    ``training`` is True after construction; ``train()``/``eval()`` set it on every sub-module.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_flat", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, key: str, value: Any) -> None:
        if "_params" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        owner = self._flat_owner(key) if self._flat and key not in self.__dict__ else None
        if owner is not None:  # ``layer.weight_hh_l0 = p`` replaces the child's entry, as in PyTorch
            setattr(*owner, value)
            return
        # replacing a registered entry by one of the same kind keeps its place in the order
        if not isinstance(value, Parameter):
            self._params.pop(key, None)
        if not isinstance(value, (Module, list, tuple)):
            self._modules.pop(key, None)
        self._flat.pop(key, None)
        if key in self._buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(f"{type(self).__name__}.{key} is a buffer: assign an ndarray or None, "
                                f"got {type(value).__name__}")
            self._buffers[key] = value
        elif isinstance(value, Parameter):
            self._params[key] = value
            if value.name is None:
                value.name = key
        elif isinstance(value, Module):
            self._modules[key] = value
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Module) for v in value):
            value = ModuleList(value)
            self._modules[key] = value
        else:
            self._modules.pop(key, None)
        object.__setattr__(self, key, value)
        _structure[0] = next(_COUNTER)  # after the change: a reader that saw the new number sees it done

    def _flat_owner(self, key: str) -> tuple[Module, str] | None:
        """(child, name) of the parameter or buffer a child registered with a suffix lists as ``key``
        (``layer.weight_ih_l0`` is ``layer.cell_l0.weight_ih``), or None."""
        for child, suffix in (self.__dict__.get("_flat") or {}).items():
            if key.endswith(suffix) and len(key) > len(suffix):
                mod = self.__dict__[child]
                base = key[:-len(suffix)]
                if base in mod._params or base in mod._buffers:
                    return mod, base
        return None

    def __getattr__(self, key: str) -> Any:
        """Only reached when ordinary lookup fails: a parameter or buffer of a child registered with a
        suffix, by its listed name (``layer.weight_ih_l0`` is ``layer.cell_l0.weight_ih``)."""
        owner = self._flat_owner(key)
        if owner is not None:
            return getattr(*owner)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def __delattr__(self, key: str) -> None:
        self._params.pop(key, None)
        self._modules.pop(key, None)
        self._buffers.pop(key, None)
        self._flat.pop(key, None)
        object.__delattr__(self, key)
        _structure[0] = next(_COUNTER)

    def _replace_buffer(self, key: str, array: np.ndarray) -> None:
        """Replace a registered buffer's array without ``__setattr__``'s checks (``to``, loading)."""
        self._buffers[key] = array
        object.__setattr__(self, key, array)
        _structure[0] = next(_COUNTER)

    def register_buffer(self, name: str, array: np.ndarray | None) -> None:
        """Non-trainable state (running statistics, masks) that ``state_dict()`` saves under ``name``."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"register_buffer: invalid name {name!r} (a non-empty str without '.')")
        if name in self._params or name in self._modules:
            raise ValueError(f"register_buffer: {type(self).__name__} already has a parameter or module "
                             f"named {name!r}")
        self._buffers[name] = None
        setattr(self, name, array)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Same as ``setattr(self, name, param)`` for a ``Parameter`` (or None to hold a place)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, "
                            f"got {type(param).__name__}")
        setattr(self, name, param)

    def register_module(self, name: str, module: Module, *, suffix: str | None = None) -> None:
        """Same as ``setattr(self, name, module)``; with ``suffix``, the child's parameters and buffers
        are named as this module's own with the suffix appended: a cell registered as
        ``register_module("cell_l0", cell, suffix="_l0")`` lists its ``weight_ih`` as ``weight_ih_l0``
        (how ``rnn.Recurrent`` gives every cell PyTorch's layer names). A clash of names is an error."""
        if not isinstance(module, Module):
            raise TypeError(f"register_module: {name!r} must be a Module, got {type(module).__name__}")
        setattr(self, name, module)
        if suffix is None:
            return
        before = [k for k, *_ in self._entries("_params")] + [k for k, *_ in self._entries("_buffers")]
        self._flat[name] = str(suffix)
        mine = {f"{k}{suffix}" for k, *_ in module._entries("_params")}
        mine |= {f"{k}{suffix}" for k, *_ in module._entries("_buffers")}
        clash = sorted(mine.intersection(before))
        if clash:
            del self._flat[name]
            raise ValueError(f"register_module: {type(self).__name__} already has entries named {clash}")

    def add_module(self, name: str, module: Module) -> None:
        """PyTorch's other name for ``register_module(name, module)``."""
        self.register_module(name, module)

    def _entries(self, kind: str, prefix: str = "") -> Iterator[tuple[str, Module, str, Any]]:
        """``(key, owner module, attribute name, value)`` for every parameter (``kind="_params"``) or
        buffer (``"_buffers"``), depth first in assignment order; children registered with a suffix
        contribute ``path + name + suffix`` instead of ``path + child + "." + name``."""
        stack: list[tuple[Module, str, str]] = [(self, f"{prefix}." if prefix else "", "")]
        while stack:
            mod, path, suffix = stack.pop()
            for k, v in getattr(mod, kind).items():
                yield f"{path}{k}{suffix}", mod, k, v
            for name, child in reversed(list(mod._modules.items())):
                s = mod._flat.get(name)
                nxt = (child, path, s + suffix) if s is not None else (child, f"{path}{name}.", suffix)
                stack.append(nxt)

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module (depth first, in assignment order) with dotted names."""
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            yield name, mod
            for k, m in reversed(list(mod._modules.items())):
                stack.append((f"{name}.{k}" if name else k, m))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` pairs; a parameter shared by two modules appears once."""
        seen: set[int] = set()
        for key, _, _, p in self._entries("_params", prefix):
            if id(p) not in seen:
                seen.add(id(p))
                yield key, p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for key, _, _, b in self._entries("_buffers", prefix):
            if b is not None:
                yield key, b

    def num_parameters(self) -> int:
        """Total number of scalar parameters."""
        return int(sum(p.size for p in self.parameters()))

    def name_parameters(self, prefix: str = "") -> Module:
        """Give every parameter its dotted path as ``name`` (drawings and errors show it)."""
        for n, p in self.named_parameters(prefix):
            p.name = n
        return self

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every sub-module (children first, in order) and then on this module, as
        PyTorch's ``apply`` (e.g. a custom initialisation); returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes, grads, dtype
    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout active) on this module and every sub-module; returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode (``train(False)``); returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Set every parameter's ``.grad`` to None (PyTorch's default), or to zeros in place with
        ``set_to_none=False``."""
        for p in self.parameters():
            g = grad_array(p)
            if set_to_none or g is None:
                p.grad = None
            else:
                set_grad(p, np.zeros_like(g))

    def requires_grad_(self, flag: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """PyTorch's ``to``: ``to(dtype)``, ``to("cpu")``, ``to("cpu", dtype)``, ``to(tensor)`` (its
        dtype), ``to(device=..., dtype=...)``; ``non_blocking`` is accepted and ignored. Casts every
        parameter (in place: the same Parameter objects, so an optimiser built earlier still holds them)
        and float buffer to ``dtype`` (float32 or float64); gradients are dropped. A device other than
        the CPU is a ``ValueError``. Returns self."""
        dtype = _to_args(type(self).__name__, args, kwargs)
        if dtype is None:
            return self
        dt = dtypes.resolve(dtype)
        if not dtypes.is_float(dt):
            raise TypeError(f"{type(self).__name__}.to: parameters must be float32 or float64, got {dt}")
        for p in self.parameters():
            if p.dtype != dt:
                p.data = p.data.astype(dt)
                p.grad = None
        for m in self.modules():
            for k, b in list(m._buffers.items()):
                if b is not None and b.dtype.kind == "f":
                    m._replace_buffer(k, b.astype(dt))
        return self

    def cpu(self) -> Module:
        """Everything already lives on the CPU: returns self (PyTorch code calls it freely)."""
        return self

    def cuda(self, device: Any = None) -> Module:
        """Always a ``ValueError``: minigrad runs on the CPU only."""
        dtypes.check_device("cuda" if device is None else device, f"{type(self).__name__}.cuda")
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # ------------------------------------------------------------------ state
    def state_dict(self, *, prefix: str = "", keep_vars: bool = False) -> dict[str, Any]:
        """Parameter and buffer arrays by dotted name, e.g. ``{"fc1.weight": ..., ...}``: copies, or the
        Parameters themselves with ``keep_vars``. A parameter held under several names (tied weights)
        is listed under every one of them (one shared copy), as in PyTorch."""
        state: dict[str, Any] = {}
        copies: dict[int, Any] = {}
        for key, _, _, p in self._entries("_params", prefix.rstrip(".")):
            if id(p) not in copies:
                copies[id(p)] = p if keep_vars else p.data.copy()
            state[key] = copies[id(p)]
        state.update((n, b if keep_vars else b.copy()) for n, b in self.named_buffers(prefix.rstrip(".")))
        return state

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the parameters and buffers of the same name (cast to their dtype). Values
        may be ndarrays, Tensors, lists, or anything with ``.numpy()`` (a PyTorch tensor: detached and
        moved to the CPU first) or ``__array__``.

        Everything is checked before anything is changed: with ``strict`` a missing or unexpected key
        is a ``StateDictError`` (a ``KeyError``) listing all of them; a shape mismatch is a ``ShapeError``
        (a ``ValueError``) naming the key and both shapes. A tied parameter may be given under any of
        its names (different values under two of them are a ``ValueError``). Returns
        ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict({type(self).__name__}): expected a dict of arrays, got "
                            f"{type(state).__name__}")
        owner = type(self).__name__
        targets = self._load_targets()
        given = {id(t[0]) for k, t in targets.items() if k in state}
        missing = [k for k, t in targets.items() if k not in state and id(t[0]) not in given]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            raise StateDictError(f"load_state_dict({owner}): missing keys {missing}, "
                                 f"unexpected keys {unexpected}")
        new: dict[str, np.ndarray] = {}
        first: dict[int, str] = {}
        for k, (obj, _, _, cur) in targets.items():
            if k not in state:
                continue
            new[k] = arr = _state_array(owner, k, state[k], cur)
            if id(obj) in first and not np.array_equal(new[first[id(obj)]], arr, equal_nan=True):
                raise ValueError(f"load_state_dict({owner}): '{first[id(obj)]}' and '{k}' name the same "
                                 "(tied) parameter but hold different values in the state dict")
            first.setdefault(id(obj), k)
        for k, arr in new.items():
            obj, mod, attr, _ = targets[k]
            if isinstance(obj, Parameter):
                obj.data = arr
            else:
                mod._replace_buffer(attr, arr)
        return IncompatibleKeys(missing, unexpected)

    def _load_targets(self) -> dict[str, tuple[Any, Module, str, np.ndarray]]:
        """``key -> (parameter or buffer key, owner, attribute, current array)`` under every name."""
        targets: dict[str, tuple[Any, Module, str, np.ndarray]] = {}
        for key, mod, k, p in self._entries("_params"):
            targets[key] = (p, mod, k, p.data)
        for key, mod, k, b in self._entries("_buffers"):
            if b is not None:
                targets[key] = (key, mod, k, b)
        return targets

    # ------------------------------------------------------------------ calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        """One-line description of this module's own settings, shown inside ``repr``."""
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for k, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({k}): {sub}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules, registered as ``0``, ``1``, ... (``layers.0.weight``)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, m: Module) -> ModuleList:
        if not isinstance(m, Module):
            raise TypeError(f"{type(self).__name__}.append: expected a Module, got {type(m).__name__}")
        setattr(self, str(len(self._modules)), m)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i: int | slice) -> Any:
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return ModuleList(mods[i])
        return mods[i]

    def __setitem__(self, i: int, m: Module) -> None:
        if not isinstance(m, Module):
            raise TypeError(f"{type(self).__name__}[{i}] = ...: expected a Module, got {type(m).__name__}")
        keys = list(self._modules)
        if not -len(keys) <= i < len(keys):
            raise IndexError(f"{type(self).__name__} index {i} out of range for length {len(keys)}")
        setattr(self, keys[i], m)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))
