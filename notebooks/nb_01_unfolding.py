# %% [markdown]
# # 1. Recurrence and unfolding in time
#
# A recurrent cell applies **the same weights at every step**: $h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$.
# Folded, it is a cell with a loop; unfolded over $T$ steps it is a deep feed-forward graph whose every layer
# shares $W$. This notebook writes the loop by hand, checks it against `rnn.RNN`, draws the rolled and the
# unrolled graph of a real model, and runs the five architectures (and a bidirectional one) on toy data.
#
# Everything here runs in a few seconds on a laptop. Drawings need Graphviz's `dot` (`apt-get install graphviz`).

# %%
import numpy as np
import matplotlib.pyplot as plt

import minigrad as mg
import rnn
import viz
from minigrad.nn import functional as F
from minigrad.optim import Adam

mg.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## One cell and its loop
#
# `rnn.RNN` has PyTorch's parameters: `weight_ih_l0` $(H, I)$, `weight_hh_l0` $(H, H)$, `bias_ih_l0`, `bias_hh_l0`.
# The loop below is the whole recurrence, in NumPy, with those four arrays.

# %%
T, B, I, H = 6, 1, 2, 3
layer = rnn.RNN(I, H, dtype="float64")
x = rng.standard_normal((T, B, I))                    # (time, batch, features)

W_ih, W_hh = layer.weight_ih_l0.data, layer.weight_hh_l0.data
b = layer.bias_ih_l0.data + layer.bias_hh_l0.data
h = np.zeros((B, H))                                  # h_0
hs = []
for t in range(T):                                    # the loop: the same W_ih, W_hh, b at every step
    h = np.tanh(x[t] @ W_ih.T + h @ W_hh.T + b)
    hs.append(h)
hs = np.stack(hs)

out, h_n = layer(mg.tensor(x))                        # the layer: out holds h_1..h_T, h_n the last state
print("max |loop - rnn.RNN| =", np.abs(out.data - hs).max())
assert np.allclose(out.data, hs, atol=1e-12)

# %% [markdown]
# ## Rolled and unrolled, drawn from the real model
#
# `viz.draw_rolled(model)` draws the folded cell (no forward pass needed). `viz.draw(loss)` draws the graph the
# engine actually recorded: one box per time step, each parameter drawn **once** with an edge into every step
# that uses it (the shared weights), and, after `backward()`, gradient norms on every box.

# %%
lstm = rnn.LSTM(2, 3)
viz.draw_rolled(lstm)

# %%
out, _ = lstm(mg.randn(5, 1, 2))
loss = (out[-1] ** 2).sum()
viz.retain_grads(loss)           # keep the gradient of every intermediate tensor (call before backward)
loss.backward()
unrolled = viz.draw(loss, params=lstm)
print(unrolled.info["steps"], "time steps drawn")
unrolled

# %% [markdown]
# ## Shared weights: one gradient, summed over the steps
#
# `weight_hh_l0` is used at every step, so its gradient is the **sum** of one contribution per step. We can see
# the sum: the per-step contribution of step $t$ is the gradient of a copy of $W_{hh}$ used at step $t$ only.

# %%
def loss_with_copies(x, n_steps):
    """The same RNN, but step t uses its own copy W_t of W_hh (all equal)."""
    copies = [mg.tensor(W_hh.copy(), requires_grad=True) for _ in range(n_steps)]
    h = mg.zeros(B, H, dtype="float64")
    for t in range(n_steps):
        h = (mg.tensor(x[t]) @ mg.tensor(W_ih).T + h @ copies[t].T + mg.tensor(b)).tanh()
    return (h ** 2).sum(), copies

L, copies = loss_with_copies(x, T)
L.backward()
per_step = np.array([np.linalg.norm(c.grad.numpy()) for c in copies])

layer.zero_grad()
out, h_n = layer(mg.tensor(x))
(h_n[0] ** 2).sum().backward()
summed = sum(c.grad.numpy() for c in copies)
print("||dL/dW_hh|| contributed by each step:", np.round(per_step, 4))
print("max |sum of the copies' gradients - weight_hh_l0.grad| =", np.abs(summed - layer.weight_hh_l0.grad.numpy()).max())
assert np.allclose(summed, layer.weight_hh_l0.grad.numpy(), atol=1e-12)

# %% [markdown]
# ## The architectures
#
# All of them are in `rnn.models` (batch-first) and differ only in what goes in and what comes out:
#
# | | in | out | model |
# |---|---|---|---|
# | one-to-one | one vector | one vector | `SequenceRegressor` on $T = 1$ (a feed-forward net) |
# | one-to-many | one token | a sequence | `Generator` (each sample is the next input) |
# | many-to-one | a sequence | one label | `SequenceClassifier` |
# | many-to-many | a sequence | a label per step | `SequenceTagger` |
# | encoder-decoder | a sequence | another sequence (other length) | `Seq2Seq` |
# | bidirectional | a sequence | a label per step, seeing the future too | `BiTagger` |
#
# Each is trained for a few dozen Adam steps on a toy problem below.

# %%
def fit(model, loss_fn, steps=60, lr=0.03):
    opt = Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    return losses

curves = {}

# one-to-one: y = sin(x) from one input (T = 1)
x1 = rng.uniform(-3, 3, (64, 1, 1)).astype(np.float32)
m = rnn.SequenceRegressor(1, 16, 1, cell="rnn", rng=rng)
curves["one-to-one: sin(x)"] = fit(m, lambda: F.mse_loss(m(x1), np.sin(x1[:, 0])))

# one-to-many: generate the repeating "language" 0 1 2 3 0 1 2 3 ...
text = np.array([[0, 1, 2, 3] * 6])
gen = rnn.Generator(4, 16, cell="lstm", rng=rng)
def lm_loss():
    logits, _ = gen(text[:, :-1])
    return F.cross_entropy(logits.reshape(-1, 4), text[:, 1:].reshape(-1))
curves["one-to-many: generator"] = fit(gen, lm_loss)
print("generated from 0:", gen.generate(8, start=0, temperature=0.5, rng=rng))

# many-to-one: class = sign of the summed first feature
xs = rng.standard_normal((32, 8, 2)).astype(np.float32)
y = (xs[:, :, 0].sum(1) > 0).astype(np.int64)
clf = rnn.SequenceClassifier(2, 8, 2, cell="gru", rng=rng)
curves["many-to-one: classifier"] = fit(clf, lambda: F.cross_entropy(clf(xs), y))
print("classifier accuracy on its training data:", (clf.predict(xs) == y).mean())

# many-to-many (aligned): tag = is the running sum of feature 0 positive?
tags = (np.cumsum(xs[:, :, 0], 1) > 0).astype(np.int64)
tagger = rnn.SequenceTagger(2, 8, 2, cell="lstm", rng=rng)
curves["many-to-many: tagger"] = fit(tagger, lambda: F.cross_entropy(tagger(xs).reshape(-1, 2), tags.reshape(-1)))

# bidirectional: tag = is the sum of the REMAINING feature 0 positive? (needs the future)
future = (np.cumsum(xs[:, ::-1, 0], 1)[:, ::-1] > 0).astype(np.int64)
bi = rnn.BiTagger(2, 8, 2, cell="lstm", rng=rng)
uni = rnn.SequenceTagger(2, 8, 2, cell="lstm", rng=rng)
curves["bidirectional: future sums"] = fit(bi, lambda: F.cross_entropy(bi(xs).reshape(-1, 2), future.reshape(-1)))
curves["(one direction only)"] = fit(uni, lambda: F.cross_entropy(uni(xs).reshape(-1, 2), future.reshape(-1)))

# encoder-decoder: the first three tokens, reversed (S = 5 in, T' = 3 out)
src = rng.integers(1, 6, (32, 5))
tgt = src[:, :3][:, ::-1].copy()
s2s = rnn.Seq2Seq(src_vocab=6, tgt_vocab=6, hidden_size=16, cell="gru", bos=0, rng=rng)
curves["encoder-decoder: reverse 3"] = fit(
    s2s, lambda: F.cross_entropy(s2s(src, tgt, teacher_forcing=1.0).reshape(-1, 6), tgt.reshape(-1)), lr=0.05)
print("seq2seq greedy:", s2s.greedy_decode(src[:2], max_len=3).tolist(), "target:", tgt[:2].tolist())

# %%
fig, axes = plt.subplots(2, 3, figsize=(11, 5.5), sharex=True)
pairs = [k for k in curves if not k.startswith("(")]
for ax, name in zip(axes.flat, pairs):
    ax.plot(curves[name], label="bidirectional" if name.startswith("bidirectional") else None)
    if name.startswith("bidirectional"):
        ax.plot(curves["(one direction only)"], "--", label="one direction only")
        ax.legend(fontsize=8)
    ax.set_title(name, fontsize=10)
for ax in axes[-1]:
    ax.set_xlabel("Adam step")
for ax in axes[:, 0]:
    ax.set_ylabel("training loss")
fig.tight_layout()
plt.show()

# %% [markdown]
# The bidirectional tagger learns the "future sum" tags that a one-directional tagger cannot see.
#
# **Next:** [2. Backpropagation through time](02_bptt.ipynb).
