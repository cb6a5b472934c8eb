"""Hand-written NumPy forward passes of PyTorch's recurrent equations (float64), the references the
rnn tests compare against. Independent of minigrad: plain arrays, explicit gate slicing."""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    pre = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    return np.tanh(pre) if nonlinearity == "tanh" else np.maximum(pre, 0.0)


def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    H = h.shape[-1]
    gi = x @ w_ih.T + b_ih
    gh = h @ w_hh.T + b_hh
    r = sigmoid(gi[:, :H] + gh[:, :H])
    z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h


def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    H = h.shape[-1]
    g = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f, gg, o = sigmoid(g[:, :H]), sigmoid(g[:, H:2 * H]), np.tanh(g[:, 2 * H:3 * H]), sigmoid(g[:, 3 * H:])
    c2 = f * c + i * gg
    return o * np.tanh(c2), c2


def layer(mode, x, params, num_layers, bidirectional, h0=None, c0=None, lengths=None,
          nonlinearity="tanh"):
    """Multi-layer (bi)directional RNN/GRU/LSTM over x (T, B, I) with PyTorch parameter names.

    lengths: per-sequence valid lengths; padded steps keep the state and output zeros; the reverse
    direction of each sequence starts at its own last valid step (PyTorch's packed semantics)."""
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    h0 = np.zeros((num_layers * D, B, H)) if h0 is None else h0
    c0 = np.zeros((num_layers * D, B, H)) if c0 is None else c0
    inp = x
    hn, cn = [], []
    for layer_i in range(num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{layer_i}" + ("_reverse" if d else "")
            w = [params[f"{k}{sfx}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            out = np.zeros((T, B, H))
            hf = np.zeros((B, H))
            cf = np.zeros((B, H))
            for b in range(B):  # one sequence at a time, only its valid steps
                h = h0[layer_i * D + d, b:b + 1]
                c = c0[layer_i * D + d, b:b + 1]
                L = lengths[b]
                steps = range(L - 1, -1, -1) if d else range(L)
                for t in steps:
                    xt = inp[t, b:b + 1]
                    if mode == "LSTM":
                        h, c = lstm_cell(xt, h, c, *w)
                    elif mode == "GRU":
                        h = gru_cell(xt, h, *w)
                    else:
                        h = rnn_cell(xt, h, *w, nonlinearity)
                    out[t, b] = h[0]
                hf[b], cf[b] = h[0], c[0]
            outs.append(out)
            hn.append(hf)
            cn.append(cf)
        inp = np.concatenate(outs, axis=2)
    return inp, np.stack(hn), np.stack(cn)
