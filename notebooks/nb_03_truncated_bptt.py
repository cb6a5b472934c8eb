# %% [markdown]
# # 3. Truncated BPTT
#
# Full BPTT on a sequence of length $T$ keeps all $T$ steps in memory and updates once per sequence. Truncated
# BPTT runs the sequence in **windows of $k_1$ steps**: after each window it backpropagates, updates, and
# carries the state on **detached**, so the values cross the boundary but the gradient does not. With
# $k_2 > k_1$ each window backpropagates its $k_1$ new losses through the last $k_2$ steps (the windows
# overlap by $k_2 - k_1$ steps). `rnn.tbptt` does the loop; `rnn.tbptt_windows` hands you the windows.

# %%
import time

import numpy as np
import matplotlib.pyplot as plt

import minigrad as mg
import rnn
from minigrad.nn import functional as F
from minigrad.optim import Adam

rng = np.random.default_rng(0)

# %% [markdown]
# ## The windows
#
# `rnn.window_bounds(T, k1, k2)` lists each window as `(start, carry, loss_start, stop)`: steps
# `start..stop-1` run from the state carried in at `start`, the losses of `loss_start..stop-1` are
# backpropagated, and the state at `carry` is handed to the next window.

# %%
T = 20
fig, axes = plt.subplots(1, 2, figsize=(11, 2.6), sharey=False)
for ax, (k1, k2) in zip(axes, [(5, 5), (5, 8)]):
    bounds = rnn.window_bounds(T, k1, k2)
    for i, (start, carry, loss_start, stop) in enumerate(bounds):
        ax.barh(i, stop - start, left=start, color="#c6dbef", edgecolor="#3182bd", label="backprop through" if i == 0 else None)
        ax.barh(i, stop - loss_start, left=loss_start, height=0.35, color="#3182bd", label="losses of these steps" if i == 0 else None)
        ax.plot([carry], [i], "kv", label="state carried on (detached)" if i == 0 else None)
    ax.set_yticks(range(len(bounds)), [f"window {i}" for i in range(len(bounds))])
    ax.invert_yaxis(); ax.set_xlim(0, T); ax.set_xlabel("time step")
    ax.set_title(f"k1 = {k1}, k2 = {k2}")
axes[1].legend(fontsize=7, loc="lower left")
fig.tight_layout()
plt.show()
print(rnn.window_bounds(T, 5, 8))

# %% [markdown]
# ## What crosses a window boundary, and what does not
#
# Run a GRU over one sequence in windows of $k_1 = 5$, backpropagating each window's loss into an input tensor
# that records gradients. The state entering window 1 has the **same values** as the state leaving window 0,
# but it is a leaf: window 1's loss sends **no gradient** into the inputs of window 0.

# %%
gru = rnn.GRU(1, 8, dtype="float64", rng=rng)
x = rng.standard_normal((T, 1, 1))
windows = list(rnn.tbptt_windows(gru, x, None, k1=5))
w0, w1 = windows[0], windows[1]
print("state leaving window 0 == state entering window 1:", np.array_equal(w0.state[0].numpy(), w1.state_in[0].numpy()))
print("state entering window 1 is a leaf (no graph behind it):", w1.state_in[0].is_leaf)

# the same thing measured: the gradient of window 1's loss w.r.t. every input step
xs = mg.tensor(x, requires_grad=True)
state = None
grads = []
for k, (start, carry, loss_start, stop) in enumerate(rnn.window_bounds(T, 5)):
    out, state = gru(xs[start:stop], state)
    if k == 1:
        (out ** 2).sum().backward()
    state = rnn.detach_state(state)
print("|dL_window1/dx_t| for t = 0..9:", np.round(np.abs(xs.grad.numpy()[:10, 0, 0]), 4))

# %% [markdown]
# ## The effect of $k$ on a dependency longer than $k$
#
# An echo with delay $D = 8$: the input is a random $\pm 1$ sequence and the target at step $t$ is the input at
# step $t - D$ (a loss at every step). To learn it, the gradient of the loss at $t$ must reach $x_{t-D}$, 8 steps
# back. A GRU is trained on the same batches with TBPTT of $k_1 = 4$ (every gradient path is at most 4 steps
# long), $k_1 = 4$ with $k_2 = 12$ (4 new losses per window, backpropagated 12 steps) and $k_1 = 16$.
# Predicting 0 scores MSE 1.

# %%
D = 8

def echo_batch(rng, batch=16, length=96):
    x = rng.choice([-1.0, 1.0], (batch, length, 1)).astype(np.float32)
    y = np.zeros_like(x)
    y[:, D:] = x[:, :-D]
    return x, y

histories = {}
for k1, k2 in ((4, 4), (4, 12), (16, 16)):
    t0 = time.perf_counter()
    data_rng = np.random.default_rng(0)                  # the same batches for every k
    model = rnn.NextStepPredictor(1, 16, cell="gru", rng=np.random.default_rng(1))
    opt = Adam(model.parameters(), lr=2e-2)
    hist = []
    for epoch in range(150):
        x, y = echo_batch(data_rng)
        res = rnn.tbptt(model, x, y, F.mse_loss, opt, k1=k1, k2=k2, clip=1.0, time_axis=1)
        hist.append(res.mean_loss)
    histories[(k1, k2)] = hist
    print(f"k1 = {k1:2d}, k2 = {k2:2d}: final training MSE {np.mean(hist[-10:]):.3f}  "
          f"[{time.perf_counter() - t0:.1f} s]")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for (k1, k2), hist in histories.items():
    ax.plot(hist, label=f"k1 = {k1}, k2 = {k2}")
ax.axhline(1.0, color="grey", ls=":", label="predict 0")
ax.set_xlabel("batch (one TBPTT pass over 96 steps)"); ax.set_ylabel("training MSE")
ax.set_title(f"echo with delay D = {D}")
ax.legend()
plt.show()

# %% [markdown]
# With gradient paths of 4 steps the network never learns to hold a value for 8: the state *could* carry it
# across the boundary, but nothing *teaches* it to. Backpropagating 12 steps ($k_2 = 12$) or using windows of
# 16 learns the echo. Truncation buys memory and frequent updates, at the price of dependencies longer than $k_2$.
#
# **Next:** [4. Vanishing and exploding gradients](04_vanishing_exploding.ipynb).
