# %% [markdown]
# # 5. Applications
#
# Three of the bundled tasks (`rnn.tasks`, no downloads), each trained briefly with the same trainer the
# command line uses (`python -m rnn train`), then plotted and drawn:
#
# - **next-character prediction** on Shakespeare, sampled with a temperature;
# - **time-series forecasting** of the chaotic Mackey-Glass series, one step and closed loop;
# - **sequence classification** of variable-length sequences (the class is the most frequent symbol).
#
# The budgets are cut to a few seconds each; the command line's defaults train longer (see `docs/tasks.md`).

# %%
import tempfile
import time

import numpy as np
import matplotlib.pyplot as plt

import minigrad as mg
import viz
from rnn.tasks.trainer import TrainConfig, train

runs = tempfile.mkdtemp()

def fit(**kw):
    t0 = time.perf_counter()
    res = train(TrainConfig(**kw), f"{runs}/{kw['task']}", quiet=True)
    print(f"{kw['task']}: {res.result['metric']:.4g} ({res.task.metric}) vs baseline {res.result['baseline']:.4g}"
          f"  [{time.perf_counter() - t0:.1f} s]")
    return res

# %% [markdown]
# ## Next-character prediction, sampled with a temperature
#
# An LSTM reads one-hot characters and predicts the next one (`rnn.NextStepPredictor`); the metric is the
# held-out cross-entropy in nats per character, against the unigram model. Sampling draws each character from
# $\mathrm{softmax}(\text{logits} / \tau)$ and feeds it back: low $\tau$ is safe and repetitive, high $\tau$ inventive
# and misspelt.

# %%
lm = fit(task="charlm", cell="lstm", hidden=64, seq_len=32, batch=16, steps=250, lr=1e-2, schedule="constant")
for tau in (0.3, 0.8, 1.5):
    text = lm.task.sample(lm.model, 120, prime="HAMLET.\n", temperature=tau, rng=np.random.default_rng(0))
    print(f"--- temperature {tau}\n{text}\n")

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(lm.losses, lw=0.8, label="training batch")
ax.axhline(lm.result["baseline"], color="grey", ls=":", label="unigram (held out)")
ax.axhline(lm.result["metric"], color="C1", ls="--", label="model (held out)")
ax.set_xlabel("Adam step"); ax.set_ylabel("nats / character"); ax.set_title("character-level LSTM")
ax.legend()
plt.show()

# %% [markdown]
# ## Forecasting a time series
#
# A GRU reads the Mackey-Glass series and predicts the next value. One step ahead it only has to beat "the next
# value equals the last one"; closed loop (`model.rollout`: each prediction fed back as the next input) the
# errors compound.

# %%
fc = fit(task="forecast", cell="gru", hidden=32, steps=300)
task, model = fc.task, fc.model
series = task.test_part[:400]
with mg.no_grad():
    one_step = model(series[None, :-1, None])[0].numpy()[0, :, 0]
context, horizon = 200, 60
rollout = model.rollout(series[None, :context, None], horizon)[0, :, 0]
mse_h, base_h = task.multi_step(model, horizon=30)

fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.4))
a.plot(series, color="k", lw=1, label="series")
a.plot(np.arange(1, len(series)), one_step, color="C0", lw=1, ls="--", label="one step ahead")
a.plot(np.arange(context, context + horizon), rollout, color="C3", lw=2, label=f"closed loop, {horizon} steps")
a.axvline(context, color="grey", ls=":")
a.set_xlabel("t (test part)"); a.legend(fontsize=8); a.set_title("Mackey-Glass: forecasts")
b.semilogy(np.arange(1, 31), mse_h, label="GRU, closed loop")
b.semilogy(np.arange(1, 31), base_h, label="last value")
b.set_xlabel("horizon (steps ahead)"); b.set_ylabel("test MSE"); b.legend(); b.set_title("error by horizon")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Classifying variable-length sequences
#
# Sequences of 5 to 20 symbols out of 4 (zero-padded to 20); the class is the most frequent symbol. The true `lengths`
# go to the recurrent layer, which keeps each sequence's state after its end, so padding cannot change a
# prediction.

# %%
cl = fit(task="classify", cell="lstm", hidden=32, steps=300)
test = cl.task.batch(0, 500, "test")
pred = cl.model.predict(test["x"], test["lengths"])
confusion = np.zeros((4, 4), int)
np.add.at(confusion, (test["labels"], pred), 1)

fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
a.plot(np.convolve(cl.losses, np.ones(10) / 10, "valid")); a.set_xlabel("Adam step")
a.set_ylabel("cross-entropy (smoothed)"); a.set_title(f"test accuracy {cl.result['metric']:.1%} "
                                                      f"(majority {cl.result['baseline']:.1%})")
b.imshow(confusion, cmap="Blues")
b.set_xticks(range(4))
b.set_yticks(range(4))
for (i, j), n in np.ndenumerate(confusion):
    b.text(j, i, n, ha="center", va="center")
b.set_xlabel("predicted class"); b.set_ylabel("true class"); b.set_title("confusion (500 test sequences)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The trained classifier drawn on the first 6 steps of a test sequence: after `backward()` the colours show how
# much gradient each step receives.

# %%
one = cl.task.batch(1, 1, "test")
short = {"x": one["x"][:, :6], "labels": one["labels"], "lengths": np.minimum(one["lengths"], 6)}
loss = cl.task.loss(cl.model, short)
viz.retain_grads(loss)
loss.backward()
viz.draw(loss, params=cl.model, title="LSTM classifier, 6 steps, coloured by gradient norm")
