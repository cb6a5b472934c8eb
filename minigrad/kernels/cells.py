"""Numba kernels of the fused recurrent cells: the pointwise part of one LSTM/GRU/RNN time step.

Every kernel loops over (B, H) arrays (rows of the batch are independent) and writes into output
arrays the caller allocates, so float32 stays float32. Gate layouts are PyTorch's: LSTM ``i, f, g, o``
(``gates`` is (B, 4H)), GRU ``r, z, n`` (``gi`` and ``gh`` are (B, 3H)). Forward kernels save only what
the backward kernel needs; backward kernels turn the output gradients into the input gradients in one
pass with no temporaries. The sigmoid is evaluated without overflow; no ``fastmath`` (NaN and inf
propagate as in NumPy). ``_name`` is the pure-Python reference (what runs under
``NUMBA_DISABLE_JIT=1``); ``name`` is the jitted kernel, compiled on first use and cached on disk.
"""

from __future__ import annotations

import math

from ._jit import lazy_kernels


def _lstm_forward(gates, c_prev, h, c, act, tc):
    """i, f, o = sigmoid(gates_{i,f,o}), g = tanh(gates_g); c = f*c_prev + i*g; h = o*tanh(c).

    Writes h, c (B, H); saves act = [i, f, g, o] (B, 4H) and tc = tanh(c) (B, H) for backward.
    """
    B, H = c_prev.shape
    for b in range(B):
        for j in range(H):
            # sigmoid(v) = 1 / (1 + e^-v), or e^v / (1 + e^v) for v < 0: one exp, never overflows;
            # written as a select and one division so the loop has no data-dependent branch
            v = gates[b, j]
            e = math.exp(-abs(v))
            i = (1.0 if v >= 0 else e) / (1.0 + e)
            v = gates[b, H + j]
            e = math.exp(-abs(v))
            f = (1.0 if v >= 0 else e) / (1.0 + e)
            g = math.tanh(gates[b, 2 * H + j])
            v = gates[b, 3 * H + j]
            e = math.exp(-abs(v))
            o = (1.0 if v >= 0 else e) / (1.0 + e)
            cv = f * c_prev[b, j] + i * g
            t = math.tanh(cv)
            act[b, j] = i
            act[b, H + j] = f
            act[b, 2 * H + j] = g
            act[b, 3 * H + j] = o
            c[b, j] = cv
            tc[b, j] = t
            h[b, j] = o * t


def _lstm_forward_pre(gates, e, tg, c_prev, act, c):
    """The LSTM forward for larger arrays, given e = exp(-|gates|) and tg = tanh(gates_g) from NumPy's
    vectorised (SIMD) exp and tanh: act = [i, f, g, o] with σ(v) = (1 if v >= 0 else e) / (1 + e), and
    c = f*c_prev + i*g. The caller finishes with tanh(c) and h = o*tanh(c), again in NumPy.
    """
    B, H = c_prev.shape
    for b in range(B):
        for j in range(H):
            v = gates[b, j]
            ee = e[b, j]
            i = (1.0 if v >= 0 else ee) / (1.0 + ee)
            v = gates[b, H + j]
            ee = e[b, H + j]
            f = (1.0 if v >= 0 else ee) / (1.0 + ee)
            v = gates[b, 3 * H + j]
            ee = e[b, 3 * H + j]
            o = (1.0 if v >= 0 else ee) / (1.0 + ee)
            g = tg[b, j]
            act[b, j] = i
            act[b, H + j] = f
            act[b, 2 * H + j] = g
            act[b, 3 * H + j] = o
            c[b, j] = f * c_prev[b, j] + i * g


def _lstm_backward(act, c_prev, tc, gh, gc, has_gh, has_gc, dgates, dc_prev):
    """From dL/dh = gh and dL/dc = gc (either absent: zero):

        dc = gc + gh * o * (1 - tanh(c)^2)
        d_o = gh * tanh(c) * o(1-o),  d_i = dc * g * i(1-i),  d_f = dc * c_prev * f(1-f),
        d_g = dc * i * (1 - g^2),     dL/dc_prev = dc * f
    written into dgates (B, 4H) as [d_i, d_f, d_g, d_o] (pre-activation) and dc_prev (B, H).
    """
    B, H = c_prev.shape
    for b in range(B):
        for j in range(H):
            i = act[b, j]
            f = act[b, H + j]
            g = act[b, 2 * H + j]
            o = act[b, 3 * H + j]
            t = tc[b, j]
            dh = gh[b, j] if has_gh else 0.0
            dc = gc[b, j] if has_gc else 0.0
            dc = dc + dh * o * (1.0 - t * t)
            dgates[b, j] = dc * g * (i * (1.0 - i))
            dgates[b, H + j] = dc * c_prev[b, j] * (f * (1.0 - f))
            dgates[b, 2 * H + j] = dc * i * (1.0 - g * g)
            dgates[b, 3 * H + j] = dh * t * (o * (1.0 - o))
            dc_prev[b, j] = dc * f


def _gru_forward(gi, gh, h_prev, h, act):
    """r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r*gh_n),
    h = (1-z)*n + z*h_prev.

    Writes h (B, H); saves act = [r, z, n, gh_n] (B, 4H) for backward.
    """
    B, H = h_prev.shape
    for b in range(B):
        for j in range(H):
            v = gi[b, j] + gh[b, j]
            e = math.exp(-abs(v))
            r = (1.0 if v >= 0 else e) / (1.0 + e)
            v = gi[b, H + j] + gh[b, H + j]
            e = math.exp(-abs(v))
            z = (1.0 if v >= 0 else e) / (1.0 + e)
            ghn = gh[b, 2 * H + j]
            n = math.tanh(gi[b, 2 * H + j] + r * ghn)
            act[b, j] = r
            act[b, H + j] = z
            act[b, 2 * H + j] = n
            act[b, 3 * H + j] = ghn
            h[b, j] = (1.0 - z) * n + z * h_prev[b, j]


def _gru_forward_pre(gi, gh, e, act):
    """The GRU forward for larger arrays, first part, given e = exp(-|gi_rz + gh_rz|) (B, 2H) from
    NumPy: act = [r, z, gi_n + r*gh_n, gh_n]; the caller applies tanh to the third block in place."""
    B, H2 = e.shape
    H = H2 // 2
    for b in range(B):
        for j in range(H):
            v = gi[b, j] + gh[b, j]
            ee = e[b, j]
            r = (1.0 if v >= 0 else ee) / (1.0 + ee)
            v = gi[b, H + j] + gh[b, H + j]
            ee = e[b, H + j]
            z = (1.0 if v >= 0 else ee) / (1.0 + ee)
            ghn = gh[b, 2 * H + j]
            act[b, j] = r
            act[b, H + j] = z
            act[b, 2 * H + j] = gi[b, 2 * H + j] + r * ghn
            act[b, 3 * H + j] = ghn


def _gru_forward_post(act, h_prev, h):
    """Second part: h = (1-z)*n + z*h_prev, with n = act[:, 2H:3H] already tanh'ed."""
    B, H = h_prev.shape
    for b in range(B):
        for j in range(H):
            z = act[b, H + j]
            h[b, j] = (1.0 - z) * act[b, 2 * H + j] + z * h_prev[b, j]


def _gru_backward(act, h_prev, dh, dgi, dgh, dh_prev):
    """From dL/dh = dh:

        d_n = dh (1-z)(1-n^2)          -> dgi_n = d_n,  dgh_n = d_n * r
        d_z = dh (h_prev - n) z(1-z)   -> dgi_z = dgh_z = d_z
        d_r = d_n * gh_n * r(1-r)      -> dgi_r = dgh_r = d_r
        dL/dh_prev = dh * z
    written into dgi, dgh (B, 3H) and dh_prev (B, H).
    """
    B, H = h_prev.shape
    for b in range(B):
        for j in range(H):
            r = act[b, j]
            z = act[b, H + j]
            n = act[b, 2 * H + j]
            ghn = act[b, 3 * H + j]
            d = dh[b, j]
            hp = h_prev[b, j]
            dn = d * (1.0 - z) * (1.0 - n * n)
            dz = (d * hp - d * n) * (z * (1.0 - z))
            dr = dn * ghn * (r * (1.0 - r))
            dgi[b, j] = dr
            dgi[b, H + j] = dz
            dgi[b, 2 * H + j] = dn
            dgh[b, j] = dr
            dgh[b, H + j] = dz
            dgh[b, 2 * H + j] = dn * r
            dh_prev[b, j] = d * z


def _rnn_tanh_forward(pre, h):
    """h = tanh(pre)."""
    B, H = pre.shape
    for b in range(B):
        for j in range(H):
            h[b, j] = math.tanh(pre[b, j])


def _rnn_tanh_backward(h, dh, dpre):
    """dL/dpre = dh * (1 - h^2), from the saved output h."""
    B, H = h.shape
    for b in range(B):
        for j in range(H):
            v = h[b, j]
            dpre[b, j] = dh[b, j] * (1.0 - v * v)


def _rnn_relu_forward(pre, h):
    """h = max(pre, 0) (NaN propagates)."""
    B, H = pre.shape
    for b in range(B):
        for j in range(H):
            v = pre[b, j]
            h[b, j] = 0.0 if v <= 0 else v


def _rnn_relu_backward(h, dh, dpre):
    """dL/dpre = dh * [pre > 0] = dh * [h > 0]  (relu'(0) = 0)."""
    B, H = h.shape
    for b in range(B):
        for j in range(H):
            dpre[b, j] = dh[b, j] if h[b, j] > 0 else 0.0


__getattr__ = lazy_kernels(globals())
