# %% [markdown]
# # 4. Vanishing and exploding gradients
#
# The gradient that reaches an early hidden state is a product of Jacobians, one per step back:
#
# $$\frac{dL}{dh_1} = \frac{dL}{dh_T}\,\frac{\partial h_T}{\partial h_{T-1}} \cdots \frac{\partial h_2}{\partial h_1}
# \quad(\text{plus the local terms}),$$
#
# so it shrinks geometrically when those Jacobians are contractive (**vanishing**) and grows when they are
# expansive (**exploding**). `rnn.hidden_grad_norms(model, x, loss_fn)` reads $\lVert dL/dh_t \rVert$ for every $t$ off
# the real graph. We measure it for a tanh RNN, a GRU and an LSTM on the adding problem (the sum of two marked
# numbers; the loss is at the last step), at initialisation and after a short training, then clip an exploding
# gradient, then look inside the gates of the trained LSTM and GRU.

# %%
import tempfile
import time

import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown

import minigrad as mg
import rnn
from rnn.experiments import color, grad_norms, grad_norms_at_init, label, table
from rnn.tasks import get_task
from rnn.tasks.trainer import TrainConfig, train

CELLS, HIDDEN, STEPS = ("rnn", "gru", "lstm"), 32, 400
runs = tempfile.mkdtemp()

# %% [markdown]
# ## $\lVert dL/dh_t \rVert$ over $t$, at initialisation and after training
#
# Each model is trained for 400 Adam steps (batch 50, clipping at 1) on sequences of length $T = 10$ and
# $T = 30$. The adding problem's constant predictor (always answer 1) scores MSE 0.167.

# %%
rows, models, curves = [], {}, {}
for T in (10, 30):
    for cell in CELLS:
        t0 = time.perf_counter()
        init = grad_norms_at_init(cell, T, hidden=HIDDEN)
        cfg = TrainConfig(task="adding", cell=cell, hidden=HIDDEN, seq_len=T, steps=STEPS, batch=50, lr=1e-2,
                          clip=1.0, seed=0)
        res = train(cfg, f"{runs}/{cell}_T{T}", quiet=True)
        trained = grad_norms(res.model, T)
        models[cell, T], curves[cell, T] = res.model, (init, trained)
        rows.append({"cell": cell, "T": T, "ratio": init[0] / init[-1], "ratio_trained": trained[0] / trained[-1],
                     "mse": res.result["metric"], "baseline": res.result["baseline"]})
        print(f"{label(cell):8s} T = {T}: {time.perf_counter() - t0:.1f} s")
Markdown(table(rows, STEPS))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
T = 30
for ax, (when, k) in zip(axes, (("at initialisation", 0), (f"after {STEPS} training steps", 1))):
    for cell in CELLS:
        n = curves[cell, T][k]
        ax.semilogy(np.arange(1, T + 1), n / n[-1], color=color(cell), label=label(cell), lw=2)
    ax.set_title(f"{when} (T = {T})")
    ax.set_xlabel("time step t")
axes[0].set_ylabel(r"$\|dL/dh_t\| \;/\; \|dL/dh_T\|$")
axes[0].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# At initialisation the tanh RNN and the GRU lose a factor 10 every few steps going back in time; the LSTM's
# additive cell state keeps much more. Training changes the picture for the gated cells: they learn gates that
# carry the state (and with it the gradient) across the sequence, which is how they reach a low MSE at
# $T = 30$ where the tanh RNN stays near the constant predictor.
#
# ## Exploding gradients and clipping
#
# A ReLU RNN whose recurrent matrix is twice an orthogonal one: every step back multiplies the gradient by
# $W_{hh}^\top$ restricted to the active units, which stretches it by up to 2. `rnn.clip_grad_norm_(params, max_norm)` rescales
# all gradients together when their global norm exceeds `max_norm` and returns the norm **before** clipping.

# %%
rng = np.random.default_rng(0)
boom = rnn.RNN(4, 16, nonlinearity="relu", dtype="float64", rng=rng)
q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
boom.weight_hh_l0.data[:] = 2.0 * q                       # orthogonal times 2: every direction grows
x = rng.standard_normal((40, 8, 4))
last = lambda res: (res[0][-1] ** 2).mean()               # the loss at the last step only
norms = rnn.hidden_grad_norms(boom, x, last)

boom.zero_grad()
last(boom(mg.tensor(x))).backward()
before = float(rnn.clip_grad_norm_(boom.parameters(), max_norm=1.0))
after = float(np.sqrt(sum((p.grad.numpy() ** 2).sum() for p in boom.parameters())))
print(f"global gradient norm before clipping: {before:.3g}, after clip_grad_norm_(max_norm=1): {after:.3g}")
print(f"||dL/dh_1|| / ||dL/dh_40|| = {norms[0] / norms[-1]:.3g}; clipping keeps the direction of the update, "
      f"{before:.3g} times shorter")

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.semilogy(np.arange(1, 41), norms, color="#d62728", lw=2)
ax.set_xlabel("time step t"); ax.set_ylabel(r"$\|dL/dh_t\|$")
ax.set_title(f"exploding: ReLU RNN, W_hh = 2 x orthogonal\nglobal norm {before:.2g} -> {after:.2g} after clipping")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Inside the gates of the trained LSTM and GRU
#
# The gates are recomputed in NumPy from the trained parameters (PyTorch's equations and gate order: LSTM
# $i, f, g, o$; GRU $r, z, n$) on one test sequence of length 30, and checked against the layer's own output.
# The dashed lines mark the two marked numbers.

# %%
def sigmoid(a):
    return 1 / (1 + np.exp(-a))

def gates(model, x):
    """Gate activations (T, H) of a one-layer LSTM or GRU encoder on one sequence x (T, I)."""
    p = {k.split(".")[-1]: np.asarray(v, np.float64) for k, v in model.encoder.rnn.state_dict().items()}
    Wi, Wh, bi, bh = p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"]
    H = Wh.shape[1]
    h, c, out = np.zeros(H), np.zeros(H), {}
    for xt in x:
        gi, gh = Wi @ xt + bi, Wh @ h + bh
        if Wh.shape[0] == 4 * H:                          # LSTM: i, f, g, o
            a = gi + gh
            i, f, g, o = sigmoid(a[:H]), sigmoid(a[H:2 * H]), np.tanh(a[2 * H:3 * H]), sigmoid(a[3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
            step = {"input gate i": i, "forget gate f": f, "output gate o": o}
        else:                                             # GRU: r, z, n
            r = sigmoid(gi[:H] + gh[:H])
            z = sigmoid(gi[H:2 * H] + gh[H:2 * H])
            n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
            h = (1 - z) * n + z * h
            step = {"reset gate r": r, "update gate z (1 = keep h)": z}
        for k, v in step.items():
            out.setdefault(k, []).append(v)
    return {k: np.array(v) for k, v in out.items()}, h

task = get_task("adding", seq_len=30, seed=0)
b = task.batch(0, 1, "test")
seq, marks = b["x"][0], np.flatnonzero(b["x"][0, :, 1])
panels = []
for cell in ("lstm", "gru"):
    g, h_last = gates(models[cell, 30], seq.astype(np.float64))
    with mg.no_grad():
        _, state = models[cell, 30].encoder.rnn(mg.tensor(b["x"]))
    h_layer = (state[0] if isinstance(state, tuple) else state).numpy().reshape(-1)
    print(f"{label(cell)}: max |NumPy h_T - layer h_T| = {np.abs(h_last - h_layer).max():.1e}")
    panels += [(f"{label(cell)}: {k}", v) for k, v in g.items()]

fig, axes = plt.subplots(1, len(panels), figsize=(15, 3.4), sharey=True)
for ax, (name, v) in zip(axes, panels):
    im = ax.imshow(v.T, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    for m in marks:
        ax.axvline(m, color="w", ls="--", lw=1)
    ax.set_title(name, fontsize=9); ax.set_xlabel("time step t")
axes[0].set_ylabel("hidden unit")
fig.colorbar(im, ax=axes, shrink=0.8)
plt.show()

# %% [markdown]
# Look for units whose forget gate (LSTM) stays near 1, or whose update gate (GRU) stays near 1 ("keep"), between
# the marked steps, and whose input gate opens at a marked step: that is a memory cell holding a number, and
# the same path carries the gradient back to the step that wrote it.
#
# **Next:** [5. Applications](05_applications.ipynb).
