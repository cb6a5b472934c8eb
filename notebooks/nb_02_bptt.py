# %% [markdown]
# # 2. Backpropagation through time, by hand
#
# Unrolled, a recurrent net is a deep feed-forward graph whose layers share $W$. Backpropagation through it
# (BPTT) needs two facts:
#
# $$\frac{dL}{dh_t} = \frac{\partial L_t}{\partial h_t} + \frac{dL}{dh_{t+1}}\,\frac{\partial h_{t+1}}{\partial h_t},
# \qquad \frac{dL}{dW} = \sum_t \frac{dL}{dh_t}\,\frac{\partial h_t}{\partial W}\Big|_{\text{local}}$$
#
# the gradient reaching $h_t$ comes from the loss at step $t$ **and** from every later step, and a shared weight
# gets the **sum** of its uses. Here we write that out in NumPy for a tiny Elman RNN, check it against
# minigrad's `loss.backward()` and against finite differences, and then make the two classic slips of tutorial
# code and watch `mg.gradcheck` catch them.

# %%
import numpy as np
import matplotlib.pyplot as plt

import minigrad as mg
import rnn

rng = np.random.default_rng(0)
T, B, I, H = 5, 2, 3, 4
x = rng.standard_normal((T, B, I))
d = rng.standard_normal((T, B, H)) * 0.5          # a target for h_t at every step
layer = rnn.RNN(I, H, dtype="float64", rng=rng)   # h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)

# %% [markdown]
# ## minigrad: BPTT is `loss.backward()`
#
# The loss is $L = \tfrac12 \sum_t \lVert h_t - d_t \rVert^2$, a loss at every step.

# %%
def loss_of(layer, x):
    out, _ = layer(x)
    return ((out - mg.tensor(d)) ** 2).sum() / 2

layer.zero_grad()
loss = loss_of(layer, mg.tensor(x))
loss.backward()
names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
engine = {n: getattr(layer, n).grad.numpy() for n in names}
print(f"L = {loss.item():.6f}", {n: g.shape for n, g in engine.items()})

# %% [markdown]
# ## The same gradient in NumPy
#
# Forward, keeping every $h_t$ (with $h_{-1} = h_0 = 0$, the state before the first step), then one loop
# backwards in time. `dh_next` is $\frac{dL}{dh_{t+1}} \frac{\partial h_{t+1}}{\partial h_t}$: the gradient that
# the future sends back to $h_t$.

# %%
def forward(W_ih, W_hh, b_ih, b_hh, x):
    hs = [np.zeros((x.shape[1], W_hh.shape[0]))]     # hs[0] = h_0 = 0; hs[t + 1] = h after step t
    for t in range(len(x)):
        hs.append(np.tanh(x[t] @ W_ih.T + b_ih + hs[-1] @ W_hh.T + b_hh))
    return hs

def bptt(W_ih, W_hh, b_ih, b_hh, x, d, slip=None):
    """Gradients of L = 1/2 sum_t ||h_t - d_t||^2; slip: None, "h[t] for h[t-1]" or "no carry"."""
    hs = forward(W_ih, W_hh, b_ih, b_hh, x)
    gW_ih, gW_hh, gb = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros_like(b_ih)
    dh_next = np.zeros_like(hs[0])
    for t in reversed(range(len(x))):
        h, h_prev = hs[t + 1], hs[t]
        dh = (h - d[t]) + (0 if slip == "no carry" else dh_next)   # local + from the future
        da = dh * (1 - h ** 2)                                     # through tanh
        gW_ih += da.T @ x[t]
        gW_hh += da.T @ (h if slip == "h[t] for h[t-1]" else h_prev)
        gb += da.sum(0)
        dh_next = da @ W_hh                                        # carried back to h_{t-1}
    loss = sum(((h - dt) ** 2).sum() / 2 for h, dt in zip(hs[1:], d))
    return loss, {"weight_ih_l0": gW_ih, "weight_hh_l0": gW_hh, "bias_ih_l0": gb, "bias_hh_l0": gb.copy()}

params = [getattr(layer, n).data for n in names]
L_np, by_hand = bptt(*params, x, d)
print(f"L (NumPy) - L (minigrad) = {L_np - loss.item():.1e}")
for n in names:
    print(f"{n:13s} max |by hand - loss.backward()| = {np.abs(by_hand[n] - engine[n]).max():.1e}")
    assert np.allclose(by_hand[n], engine[n], atol=1e-12)

# %% [markdown]
# ## ... and against finite differences
#
# $\frac{\partial L}{\partial \theta_k} \approx \frac{L(\theta + \epsilon e_k) - L(\theta - \epsilon e_k)}{2\epsilon}$,
# one entry at a time, in float64.

# %%
def numeric_grads(params, eps=1e-6):
    out = []
    for i, p in enumerate(params):
        g = np.zeros_like(p)
        for k in np.ndindex(p.shape):
            plus = [q.copy() for q in params]; plus[i][k] += eps
            minus = [q.copy() for q in params]; minus[i][k] -= eps
            g[k] = (bptt(*plus, x, d)[0] - bptt(*minus, x, d)[0]) / (2 * eps)
        out.append(g)
    return dict(zip(names, out))

fd = numeric_grads(params)
for n in names:
    print(f"{n:13s} max |by hand - finite differences| = {np.abs(by_hand[n] - fd[n]).max():.1e}")
    assert np.allclose(by_hand[n], fd[n], atol=1e-7)

# %% [markdown]
# ## The two classic slips, caught by `mg.gradcheck`
#
# 1. **`h[t]` where `h[t-1]` belongs**: the weight gradient of step $t$ is $\delta_t\, h_{t-1}^\top$ (the state
#    that *entered* the step), not $\delta_t\, h_t^\top$. With lists indexed from the first output this slip is
#    one character.
# 2. **A state gradient never carried back**: forgetting `+ dh_next` keeps only the local term
#    $\partial L_t / \partial h_t$; every gradient still has the right shape and roughly the right size, and the
#    net even learns short dependencies, which is why the slip survives.
#
# To let `gradcheck` judge a hand-written backward, we wrap it as a minigrad op (`mg.Function`): its forward is
# the NumPy forward, its backward the hand-written BPTT. `gradcheck` then compares that backward with central
# differences of the forward and reports the worst entries.

# %%
def as_op(slip):
    class HandRNNLoss(mg.Function):
        @staticmethod
        def forward(ctx, W_ih, W_hh, b_ih, b_hh):
            loss, grads = bptt(W_ih, W_hh, b_ih, b_hh, x, d, slip=slip)
            ctx.grads = [grads[n] for n in names]
            return np.array(loss)

        @staticmethod
        def backward(ctx, g):
            return tuple(g * gr for gr in ctx.grads)
    return HandRNNLoss

inputs = [mg.tensor(p.copy(), requires_grad=True) for p in params]
print("inputs 0..3 are", ", ".join(names))
for slip in (None, "h[t] for h[t-1]", "no carry"):
    try:
        mg.gradcheck(lambda *ps: as_op(slip).apply(*ps), inputs)
        print(f"{slip or 'correct BPTT'}: gradcheck passes")
    except mg.GradcheckError as err:
        print(f"{slip}: gradcheck FAILS\n  " + "\n  ".join(str(err).splitlines()[:6]) + "\n")

# %% [markdown]
# ## Which entries are wrong
#
# The difference between each slip's gradient and the true one, entry by entry (white: exact):
# the first slip corrupts only `weight_hh_l0` (no other gradient reads $h_{t-1}$), the second corrupts
# every gradient, since every parameter acts on the later steps through the state.

# %%
slips = ("h[t] for h[t-1]", "no carry")
shown = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0"]
errors = {(slip, n): np.abs(bptt(*params, x, d, slip=slip)[1][n] - fd[n]).reshape(H, -1)
          for slip in slips for n in shown}
vmax = max(e.max() for e in errors.values())            # one colour scale: 1e-9 (FD noise) is white
fig, axes = plt.subplots(len(slips), 3, figsize=(11, 5.5), width_ratios=[3, 4, 1], layout="constrained")
for (slip, n), ax in zip(errors, axes.flat):
    err = errors[slip, n]
    im = ax.imshow(err, cmap="Reds", vmin=0, vmax=vmax)
    ax.set_title(f"{n}: {np.mean(err > 1e-6):.0%} wrong", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if n == shown[0]:
        ax.set_ylabel(f"slip: {slip}")
fig.colorbar(im, ax=axes, shrink=0.8, label="|slipped - finite differences|")
plt.show()

# %% [markdown]
# The same check on the real layer, which minigrad differentiates itself (no hand-written backward anywhere
# in `rnn/`):

# %%
assert mg.gradcheck(lambda xx: loss_of(layer, xx), [mg.tensor(x, requires_grad=True)])
print("rnn.RNN passes gradcheck w.r.t. its input")

# %% [markdown]
# **Next:** [3. Truncated BPTT](03_truncated_bptt.ipynb).
