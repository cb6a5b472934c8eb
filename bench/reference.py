"""Hand-written NumPy BPTT: forward and backward through time for RNN, GRU and LSTM, no framework.

This is the bar minigrad is measured against, written as a competent engineer would write it:

- PyTorch's conventions: ``w_ih`` (G*H, I), ``w_hh`` (G*H, H), ``b_ih``, ``b_hh`` (G*H,); LSTM gates
  i, f, g, o; GRU r, z, n with ``n = tanh(gi_n + r * (h W_hn^T + b_hn))``; h0 = c0 = 0.
- the input projection of all T steps is ONE matrix product (and so are the weight gradients after
  the backward loop: ``dW_ih = dG^T X``, ``dW_hh = dG^T H_prev``, ``db = sum dG``);
- buffers for the whole sequence are allocated once and written in place (``out=``), sigmoid is taken
  over all four LSTM gate blocks in one pass, and the factors of the backward pass that depend only
  on forward values (``i(1-i)``, ``o (1 - tanh^2 c)``, ...) are computed for all T at once, so the
  sequential loop holds only the recurrent product and a handful of (B, H) operations;
- float32 stays float32 (NumPy 2 treats Python scalars as weak).

``train_step(kind, x, y, params)`` returns ``(loss, grads)`` for the loss ``mean((h_1..T - y)^2)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Params = dict[str, np.ndarray]


def _sigmoid_(a: np.ndarray) -> np.ndarray:
    """In place: a <- 1 / (1 + exp(-a)) (overflow to inf gives the right limit 0)."""
    np.negative(a, out=a)
    np.exp(a, out=a)
    a += 1
    np.reciprocal(a, out=a)
    return a


def _mse(out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    diff = out - y
    n = diff.size
    loss = float(np.vdot(diff, diff)) / n
    diff *= 2 / n
    return loss, diff


def _weight_grads(dG: np.ndarray, x: np.ndarray, Hp: np.ndarray) -> tuple[np.ndarray, ...]:
    T, B, GH = dG.shape
    dG2 = dG.reshape(T * B, GH)
    dw_ih = dG2.T @ x.reshape(T * B, -1)
    dw_hh = dG2.T @ Hp.reshape(T * B, -1)
    return dw_ih, dw_hh, dG2.sum(axis=0)


def lstm_step(x: np.ndarray, y: np.ndarray, p: Params) -> tuple[float, Params]:
    w_ih, w_hh, b_ih, b_hh = p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"]
    T, B, In = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    H2, H3 = 2 * H, 3 * H
    with np.errstate(over="ignore"):
        # ---- forward: hoisted input projection, then the recurrence
        G = (x.reshape(T * B, In) @ w_ih.T).reshape(T, B, 4 * H)
        G += b_ih + b_hh
        A = np.empty((T, B, 4 * H), dt)      # activated gates i, f, g, o
        C = np.empty((T + 1, B, H), dt)      # C[t+1] = c_t, C[0] = c0
        TC = np.empty((T, B, H), dt)         # tanh(c_t)
        Hs = np.empty((T + 1, B, H), dt)     # Hs[t+1] = h_t, Hs[0] = h0
        C[0] = 0
        Hs[0] = 0
        rec = np.empty((B, 4 * H), dt)
        tmp = np.empty((B, H), dt)
        whhT = w_hh.T
        for t in range(T):
            g = G[t]
            np.matmul(Hs[t], whhT, out=rec)
            g += rec
            a = A[t]
            np.copyto(a, g)
            _sigmoid_(a)
            np.tanh(g[:, H2:H3], out=a[:, H2:H3])
            c = C[t + 1]
            np.multiply(a[:, H:H2], C[t], out=c)
            np.multiply(a[:, :H], a[:, H2:H3], out=tmp)
            c += tmp
            np.tanh(c, out=TC[t])
            np.multiply(a[:, H3:], TC[t], out=Hs[t + 1])
        loss, dH = _mse(Hs[1:], y)

        # ---- backward through time
        # factors that depend on forward values only, for all T at once
        Dact = A * (1 - A)                                   # sigmoid' for i, f, o
        gg = A[:, :, H2:H3]
        np.multiply(gg, gg, out=Dact[:, :, H2:H3])
        np.subtract(1, Dact[:, :, H2:H3], out=Dact[:, :, H2:H3])   # tanh' for g
        OdT = TC * TC
        np.subtract(1, OdT, out=OdT)
        OdT *= A[:, :, H3:]                                 # o (1 - tanh^2 c)
        dG = np.empty((T, B, 4 * H), dt)
        dc = np.zeros((B, H), dt)
        dh_next = np.zeros((B, H), dt)
        for t in range(T - 1, -1, -1):
            dh = dH[t]
            dh += dh_next
            np.multiply(dh, OdT[t], out=tmp)
            dc += tmp                                        # dL/dc_t
            a, m = A[t], dG[t]
            np.multiply(dc, a[:, H2:H3], out=m[:, :H])       # d i
            np.multiply(dc, C[t], out=m[:, H:H2])            # d f
            np.multiply(dc, a[:, :H], out=m[:, H2:H3])       # d g
            np.multiply(dh, TC[t], out=m[:, H3:])            # d o
            m *= Dact[t]
            dc *= a[:, H:H2]                                 # dL/dc_{t-1}
            np.matmul(m, w_hh, out=dh_next)                  # dL/dh_{t-1}
        dw_ih, dw_hh, db = _weight_grads(dG, x, Hs[:-1])
    return loss, {"w_ih": dw_ih, "w_hh": dw_hh, "b_ih": db, "b_hh": db.copy()}


def gru_step(x: np.ndarray, y: np.ndarray, p: Params) -> tuple[float, Params]:
    w_ih, w_hh, b_ih, b_hh = p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"]
    T, B, In = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    H2 = 2 * H
    with np.errstate(over="ignore"):
        GI = (x.reshape(T * B, In) @ w_ih.T).reshape(T, B, 3 * H)
        GI += b_ih
        GH = np.empty((T, B, 3 * H), dt)     # h_{t-1} W_hh^T + b_hh
        RZ = np.empty((T, B, H2), dt)        # r, z
        N = np.empty((T, B, H), dt)
        Hs = np.empty((T + 1, B, H), dt)
        Hs[0] = 0
        whhT = w_hh.T
        for t in range(T):
            gh, rz, n, h = GH[t], RZ[t], N[t], Hs[t + 1]
            np.matmul(Hs[t], whhT, out=gh)
            gh += b_hh
            np.add(GI[t][:, :H2], gh[:, :H2], out=rz)
            _sigmoid_(rz)
            np.multiply(rz[:, :H], gh[:, H2:], out=n)
            n += GI[t][:, H2:]
            np.tanh(n, out=n)
            np.subtract(Hs[t], n, out=h)                     # h = n + z (h_prev - n)
            h *= rz[:, H:]
            h += n
        loss, dH = _mse(Hs[1:], y)

        R, Z = RZ[:, :, :H], RZ[:, :, H:]
        Fn = (1 - Z) * (1 - N * N)                           # dh -> d(pre n)
        Fz = (Hs[:-1] - N) * Z * (1 - Z)                     # dh -> d(pre z)
        Fr = GH[:, :, H2:] * R * (1 - R)                     # d(pre n) -> d(pre r)
        dGI = np.empty((T, B, 3 * H), dt)
        dGH = np.empty((T, B, 3 * H), dt)
        dh_next = np.zeros((B, H), dt)
        tmp = np.empty((B, H), dt)
        for t in range(T - 1, -1, -1):
            dh = dH[t]
            dh += dh_next
            di, dgh = dGI[t], dGH[t]
            dn = di[:, H2:]
            np.multiply(dh, Fn[t], out=dn)
            np.multiply(dh, Fz[t], out=di[:, H:H2])
            np.multiply(dn, Fr[t], out=di[:, :H])
            dgh[:, :H2] = di[:, :H2]
            np.multiply(dn, R[t], out=dgh[:, H2:])
            np.matmul(dgh, w_hh, out=dh_next)
            np.multiply(dh, Z[t], out=tmp)
            dh_next += tmp
        dw_ih, _, db_ih = _weight_grads(dGI, x, Hs[:-1])
        _, dw_hh, db_hh = _weight_grads(dGH, x, Hs[:-1])
    return loss, {"w_ih": dw_ih, "w_hh": dw_hh, "b_ih": db_ih, "b_hh": db_hh}


def rnn_step(x: np.ndarray, y: np.ndarray, p: Params, nonlinearity: str = "tanh") -> tuple[float, Params]:
    w_ih, w_hh, b_ih, b_hh = p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"]
    T, B, In = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    relu = nonlinearity == "relu"
    P = (x.reshape(T * B, In) @ w_ih.T).reshape(T, B, H)
    P += b_ih + b_hh
    Hs = np.empty((T + 1, B, H), dt)
    Hs[0] = 0
    rec = np.empty((B, H), dt)
    whhT = w_hh.T
    for t in range(T):
        np.matmul(Hs[t], whhT, out=rec)
        rec += P[t]
        if relu:
            np.maximum(rec, 0, out=Hs[t + 1])
        else:
            np.tanh(rec, out=Hs[t + 1])
    loss, dH = _mse(Hs[1:], y)
    Hn = Hs[1:]
    D = (Hn > 0).astype(dt) if relu else 1 - Hn * Hn          # nonlinearity' for all T
    dP = np.empty((T, B, H), dt)
    dh_next = np.zeros((B, H), dt)
    for t in range(T - 1, -1, -1):
        dp = dP[t]
        np.add(dH[t], dh_next, out=dp)
        dp *= D[t]
        np.matmul(dp, w_hh, out=dh_next)
    dw_ih, dw_hh, db = _weight_grads(dP, x, Hs[:-1])
    return loss, {"w_ih": dw_ih, "w_hh": dw_hh, "b_ih": db, "b_hh": db.copy()}


STEPS: dict[str, Callable[..., tuple[float, Params]]] = {"rnn": rnn_step, "gru": gru_step, "lstm": lstm_step}


def train_step(kind: str, x: np.ndarray, y: np.ndarray, params: Params) -> tuple[float, Params]:
    """Forward over all T steps and full BPTT for ``kind`` in {"rnn", "gru", "lstm"} (RNN: tanh)."""
    return STEPS[kind](x, y, params)
