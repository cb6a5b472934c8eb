"""Measure max |analytic - numeric| per cell: backward's gradients against float64 central differences
(eps = 1e-6), full Jacobians w.r.t. the input, the state(s) and every parameter, 3 random cells each;
plus whole 2-layer bidirectional layers over T = 20, eager and compiled. Not a test (prints a table):

    PYTHONPATH=. python tests/rnn/fd_max_report.py
"""

import numpy as np

import minigrad as mg
from rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell


def _flat(res):
    res = list(res) if isinstance(res, tuple) else [res]
    return res


def max_fd_difference(f, inputs, eps=1e-6):
    """max over every output entry j and input entry k of |d out_j/d in_k (backward) - central FD|."""
    n_out = sum(o.size for o in _flat(f()))
    worst = 0.0
    for j in range(n_out):
        for t in inputs:
            t.grad = None
        outs = _flat(f())
        seeds = np.split(np.eye(n_out)[j], np.cumsum([o.size for o in outs])[:-1])
        sum((o * s.reshape(o.shape)).sum() for o, s in zip(outs, seeds)).backward()
        for t in inputs:
            g = np.zeros(t.shape) if t.grad is None else t.grad
            flat = t.data.reshape(-1)
            for k in range(t.size):
                old = flat[k]
                vals = []
                for v in (old + eps, old - eps):
                    flat[k] = v
                    with mg.no_grad():
                        vals.append(np.concatenate([o.data.ravel() for o in _flat(f())])[j])
                flat[k] = old
                worst = max(worst, abs(g.reshape(-1)[k] - (vals[0] - vals[1]) / (2 * eps)))
    return worst


def main():
    rng = np.random.default_rng(0)
    print("| cell | compiled | max abs(analytic - numeric) |\n|---|---|---|")
    for name, cls, kw in [("RNNCell tanh", RNNCell, {}), ("RNNCell relu", RNNCell, {"nonlinearity": "relu"}),
                          ("GRUCell", GRUCell, {}), ("LSTMCell", LSTMCell, {})]:
        worst = 0.0
        for seed in range(3):
            cell = cls(3, 3, rng=np.random.default_rng(seed), dtype="float64", **kw)
            if "relu" in name:
                cell.bias_ih.data += 0.5  # keep away from the kink
            x = mg.tensor(rng.standard_normal((3, 3)), requires_grad=True)
            h = mg.tensor(0.5 * rng.standard_normal((3, 3)), requires_grad=True)
            c = mg.tensor(0.5 * rng.standard_normal((3, 3)), requires_grad=True)
            hx, states = ((h, c), [h, c]) if cls is LSTMCell else (h, [h])
            worst = max(worst, max_fd_difference(lambda cell=cell, hx=hx, x=x: cell(x, hx),
                                                 [x, *states, *cell.parameters()]))
        print(f"| {name} | False | {worst:.2e} |")
    for name, cls in [("RNN", RNN), ("GRU", GRU), ("LSTM", LSTM)]:
        for compile in (False, True):
            layer = cls(2, 2, num_layers=2, bidirectional=True, dtype="float64", rng=np.random.default_rng(0),
                        compile=compile)
            x = mg.tensor(rng.standard_normal((20, 1, 2)), requires_grad=True)
            worst = max_fd_difference(lambda layer=layer, x=x: layer(x)[0][-1], [x, *layer.parameters()])
            print(f"| {name} layer, T=20, 2 layers, bidirectional (last output) | {compile} | {worst:.2e} |")


if __name__ == "__main__":
    main()
