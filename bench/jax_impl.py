"""JAX CPU train steps (optional: used only when ``jax`` is importable; never a dependency).

``scan``: PyTorch's RNN/GRU/LSTM equations as ONE ``jax.lax.scan`` over the T steps under ``jax.jit``,
the gradient by ``jax.value_and_grad`` (JAX transposes the scan: its backward is a reverse scan).
Same weights, inputs, targets and loss (MSE on all outputs) as the other implementations; float64
runs with ``jax_enable_x64``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .optional import load


def available() -> bool:
    return load("jax") is not None


def version() -> str | None:
    jax = load("jax")
    return None if jax is None else f"{jax.__version__} ({jax.devices()[0].platform})"


def _cell(kind: str) -> Callable[..., Any]:
    """``(params, carry, gx) -> (carry, h)`` for one step; ``gx = x W_ih^T + b_ih`` (hoisted)."""
    import jax.numpy as jnp
    from jax.nn import sigmoid

    def rnn(p: dict, carry: tuple, gx: Any) -> tuple:
        h = jnp.tanh(gx + carry[0] @ p["w_hh"].T + p["b_hh"])
        return (h,), h

    def gru(p: dict, carry: tuple, gx: Any) -> tuple:
        h = carry[0]
        gh = h @ p["w_hh"].T + p["b_hh"]
        xr, xz, xn = jnp.split(gx, 3, axis=-1)
        hr, hz, hn = jnp.split(gh, 3, axis=-1)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        return (h,), h

    def lstm(p: dict, carry: tuple, gx: Any) -> tuple:
        h, c = carry
        i, f, g, o = jnp.split(gx + h @ p["w_hh"].T + p["b_hh"], 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * jnp.tanh(g)
        h = sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    return {"rnn": rnn, "gru": gru, "lstm": lstm}[kind]


def step_fn(kind: str, x: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray]
            ) -> Callable[[], tuple[float, dict[str, np.ndarray]]]:
    """A zero-argument train step returning (loss, grads) with the bench's parameter keys."""
    import jax

    if x.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    cell = _cell(kind)
    B, H = x.shape[1], params["w_hh"].shape[1]
    n_state = 2 if kind == "lstm" else 1

    def loss_fn(p: dict, xs: Any, ys: Any) -> Any:
        gx = xs @ p["w_ih"].T + p["b_ih"]  # (T, B, G*H): the input projection of every step at once
        init = tuple(jnp.zeros((B, H), xs.dtype) for _ in range(n_state))
        _, hs = jax.lax.scan(lambda carry, g: cell(p, carry, g), init, gx)
        return jnp.mean((hs - ys) ** 2)

    grad = jax.jit(jax.value_and_grad(loss_fn))
    p = {k: jnp.asarray(v) for k, v in params.items()}
    xs, ys = jnp.asarray(x), jnp.asarray(y)

    def step() -> tuple[float, dict[str, np.ndarray]]:
        loss, g = grad(p, xs, ys)
        g = jax.block_until_ready(g)
        return float(loss), {k: np.asarray(v) for k, v in g.items()}

    return step
