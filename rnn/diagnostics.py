"""Gradient diagnostics: the norm of dL/dh_t at every time step, read off the unrolled graph.

BPTT sends the gradient of the loss back through the chain of hidden states,

    dL/dh_t = dL_t/dh_t + dL/dh_{t+1} * dh_{t+1}/dh_t,

so ||dL/dh_t|| as a function of t shows vanishing (it shrinks geometrically going back in time) or
exploding (it grows) gradients. Nothing is recomputed: while recording, a step hook
(``Recurrent.register_step_hook``) calls ``retain_grad()`` on the output state h_t carried out of every
step, and the engine's ordinary ``backward`` fills their ``.grad``.

    with record_hiddens(model) as rec:           # any Module containing recurrent layers (any cell)
        out, h_n = model(x)
    loss.backward()
    rec.grad_norms()                              # (T,) for the top layer, forward direction

    norms = hidden_grad_norms(model, x, lambda res: loss_of(res))   # the same in one call
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from minigrad import Tensor
from minigrad.nn import Module

from .recurrent import Recurrent

__all__ = ["HiddenRecorder", "hidden_grad_norms", "record_hiddens"]


class HiddenRecorder:
    """Every step's hidden state of the recorded layers, with gradients retained.

    ``hiddens[(layer_module, layer, direction)]`` maps the time index ``t`` (including a forward's
    ``t0``) to the hidden state tensor h_t (B, H) carried out of that step; a second forward over the
    same steps replaces the earlier entries.
    """

    def __init__(self, modules: list[Recurrent]) -> None:
        self.modules = modules
        self.hiddens: dict[tuple[Recurrent, int, int], dict[int, Tensor]] = {}

    def record(self, module: Recurrent, layer: int, direction: int, t: int,
               state: tuple[Tensor, ...]) -> None:
        """The step hook: keep h_t (the cell's output of the state) and retain its gradient."""
        h = module.cell(layer, direction).output(state)
        if h.requires_grad:
            h.retain_grad()
        self.hiddens.setdefault((module, layer, direction), {})[t] = h

    def _key(self, module: Recurrent | None, layer: int, direction: int) -> tuple[Recurrent, int, int]:
        module = self.modules[0] if module is None else module
        if module not in self.modules:
            raise ValueError(f"HiddenRecorder: {type(module).__name__} is not a recorded layer")
        if not -module.num_layers <= layer < module.num_layers:
            raise ValueError(f"HiddenRecorder: layer {layer} out of range for num_layers={module.num_layers}")
        if direction not in range(module.num_directions):
            raise ValueError(f"HiddenRecorder: direction {direction} but the layer has "
                             f"{module.num_directions} direction(s)")
        key = (module, layer % module.num_layers, direction)
        if key not in self.hiddens:
            raise RuntimeError("HiddenRecorder: nothing recorded; run the model's forward inside "
                               "`with record_hiddens(model):`")
        return key

    def steps(self, module: Recurrent | None = None, layer: int = -1, direction: int = 0) -> list[int]:
        """The recorded time indices, ascending."""
        return sorted(self.hiddens[self._key(module, layer, direction)])

    def grads(self, module: Recurrent | None = None, layer: int = -1, direction: int = 0) -> np.ndarray:
        """dL/dh_t stacked over the recorded steps in time order: (T, B, H). Zero where no gradient
        reached h_t. Call after ``loss.backward()``."""
        hs = self.hiddens[self._key(module, layer, direction)]
        if not any(h.grad is not None for h in hs.values()):
            raise RuntimeError("HiddenRecorder: no gradient reached the recorded hidden states; call "
                               "loss.backward() after the recorded forward (outside no_grad)")
        return np.stack([np.zeros(h.shape, h.dtype) if h.grad is None else h.grad
                         for _, h in sorted(hs.items())])

    def grad_norms(self, module: Recurrent | None = None, layer: int = -1, direction: int = 0,
                   per_example: bool = False) -> np.ndarray:
        """||dL/dh_t||_2 for every recorded step t: shape (T,) (over batch and hidden units), or
        (T, B) with ``per_example=True``. Defaults: the first recorded layer module, its top layer,
        forward direction."""
        g = self.grads(module, layer, direction).astype(np.float64)
        return np.sqrt((g ** 2).sum(axis=-1)) if per_example else np.sqrt((g ** 2).sum(axis=(1, 2)))


def _rnn_layers(model: Module) -> list[Recurrent]:
    layers = [m for m in model.modules() if isinstance(m, Recurrent)]
    if not layers:
        raise TypeError(f"record_hiddens: {type(model).__name__} contains no recurrent layer "
                        "(rnn.Recurrent, RNN, GRU, LSTM)")
    return layers


@contextmanager
def record_hiddens(model: Module) -> Iterator[HiddenRecorder]:
    """Inside the block, every recurrent layer in ``model`` keeps (and retains the gradient of) the
    hidden state of every step it runs."""
    layers = _rnn_layers(model)
    rec = HiddenRecorder(layers)
    handles = [m.register_step_hook(rec.record) for m in layers]
    try:
        yield rec
    finally:
        for h in handles:
            h.remove()


def hidden_grad_norms(model: Module, inputs: Any, loss_fn: Callable[[Any], Tensor], *,
                      rnn: Recurrent | None = None, layer: int = -1, direction: int = 0,
                      per_example: bool = False, **forward_kwargs: Any) -> np.ndarray:
    """Run ``model(inputs, **forward_kwargs)``, backpropagate ``loss_fn(result)`` and return
    ||dL/dh_t|| for every time step t (shape (T,), or (T, B) with ``per_example``).

    ``rnn`` picks the layer module (default: the first one in ``model``), ``layer`` and
    ``direction`` the stacked layer and direction within it. The parameters' ``.grad`` are left as
    they were before the call.
    """
    params = list(model.parameters())
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    try:
        with record_hiddens(model) as rec:
            result = model(inputs, **forward_kwargs)
        loss = loss_fn(result)
        if not isinstance(loss, Tensor) or loss.size != 1:
            raise TypeError(f"hidden_grad_norms: loss_fn must return a scalar Tensor, got "
                            f"{type(loss).__name__} {getattr(loss, 'shape', '')}")
        loss.backward()
        return rec.grad_norms(rnn, layer, direction, per_example)
    finally:
        for p, g in zip(params, saved):
            p.grad = g
