"""Generated layer configurations (mode, sizes, layers, directions, batch_first, lengths, initial
state): forward equal to the hand-written NumPy reference, the compiled recurrence and the eager graph
give equal gradients, and padding never leaks into outputs, states or gradients."""

import numpy as np
import rnn_np_ref as ref
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from rnn import GRU, LSTM, RNN

MODES = {"RNN": RNN, "GRU": GRU, "LSTM": LSTM}


@st.composite
def configs(draw):
    T = draw(st.integers(1, 6))
    B = draw(st.integers(1, 3))
    return {
        "mode": draw(st.sampled_from(sorted(MODES))),
        "T": T, "B": B, "I": draw(st.integers(1, 3)), "H": draw(st.integers(1, 3)),
        "L": draw(st.integers(1, 2)), "bi": draw(st.booleans()), "bf": draw(st.booleans()),
        "lengths": draw(st.none() | st.lists(st.integers(0, T), min_size=B, max_size=B)),
        "h0": draw(st.booleans()), "seed": draw(st.integers(0, 2 ** 16)),
    }


def _run(c, compile):
    rng = np.random.default_rng(c["seed"])
    D = 2 if c["bi"] else 1
    layer = MODES[c["mode"]](c["I"], c["H"], num_layers=c["L"], bidirectional=c["bi"], batch_first=c["bf"],
                             compile=compile, rng=np.random.default_rng(c["seed"] + 1), dtype="float64")
    x_tm = rng.standard_normal((c["T"], c["B"], c["I"]))
    x = mg.tensor(x_tm.transpose(1, 0, 2).copy() if c["bf"] else x_tm, requires_grad=True)
    h0 = [mg.tensor(0.5 * rng.standard_normal((c["L"] * D, c["B"], c["H"])), requires_grad=True)
          for _ in range(2 if c["mode"] == "LSTM" else 1)] if c["h0"] else None
    hx = None if h0 is None else (tuple(h0) if c["mode"] == "LSTM" else h0[0])
    out, hn = layer(x, hx, lengths=c["lengths"])
    states = list(hn) if c["mode"] == "LSTM" else [hn]
    w = [rng.standard_normal(t.shape) for t in (out, *states)]
    sum((t * v).sum() for t, v in zip((out, *states), w)).backward()
    grads = [x.grad, *([] if h0 is None else [h.grad for h in h0]), *(p.grad for p in layer.parameters())]
    return layer, x_tm, h0, out, states, grads


@given(configs())
def test_generated_layers_match_numpy_and_compiled_equals_eager(c):
    layer, x_tm, h0, out, states, grads = _run(c, compile=True)
    params = {n: p.data for n, p in layer.named_parameters()}
    want, h_ref, c_ref = ref.layer(c["mode"], x_tm, params, c["L"], c["bi"],
                                   None if h0 is None else h0[0].data, None if h0 is None else h0[-1].data,
                                   lengths=c["lengths"])
    got = out.data.transpose(1, 0, 2) if c["bf"] else out.data
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(states[0].data, h_ref, rtol=1e-11, atol=1e-12)
    if c["mode"] == "LSTM":
        np.testing.assert_allclose(states[1].data, c_ref, rtol=1e-11, atol=1e-12)
    if c["lengths"] is not None:  # padded steps receive no gradient
        pad = np.arange(c["T"])[:, None] >= np.array(c["lengths"])[None, :]  # (T, B)
        gx = grads[0].transpose(1, 0, 2) if c["bf"] else grads[0]
        assert not gx[pad].any()
    *_, grads_eager = _run(c, compile=False)
    for a, b in zip(grads, grads_eager):  # None: h_0 = 0 skipped W_hh (T = 1), the compiled gives zeros
        if a is None or b is None:
            assert not (a if b is None else b).data.any()
            continue
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
