"""End to end: small networks that must actually learn, with every piece of nn/optim in the loop."""

import time

import numpy as np

import minigrad as mg
from minigrad import nn, optim
from minigrad.nn import functional as F
from minigrad.nn.utils import clip_grad_norm_

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
Y = np.array([0, 1, 1, 0])


def test_mlp_learns_xor_to_100_percent(tmp_path):
    t0 = time.perf_counter()
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = optim.Adam(model.parameters(), lr=0.05)
    sched = optim.StepLR(opt, step_size=100, gamma=0.5)
    x = mg.tensor(X)
    losses = []
    for _ in range(300):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), Y)
        loss.backward()
        clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    pred = model(x).data.argmax(axis=1)
    assert (pred == Y).mean() == 1.0
    assert losses[-1] < 0.05 < losses[0]
    # the trained model survives a checkpoint
    mg.save({"model": model.state_dict()}, tmp_path / "xor.ckpt")
    fresh = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    fresh.load_state_dict(mg.load(tmp_path / "xor.ckpt")["model"])
    np.testing.assert_array_equal(fresh(x).data, model(x).data)
    assert time.perf_counter() - t0 < 20


def test_bce_mlp_with_dropout_and_sgd_learns_xor():
    mg.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.1, rng=np.random.default_rng(0)),
                          nn.Linear(16, 1))
    opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    x, y = mg.tensor(X), Y.astype(np.float32)[:, None]
    for _ in range(400):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(model(x), y).backward()
        opt.step()
    model.eval()
    assert np.array_equal(model(x).data[:, 0] > 0, Y == 1)


def test_embedding_classifier_learns_token_pair_threshold():
    """label = [a + b >= 3]: needs the embeddings to learn an ordering of the tokens."""
    mg.manual_seed(2)
    emb, head = nn.Embedding(4, 8), nn.Linear(16, 2)
    opt = optim.AdamW([*emb.parameters(), *head.parameters()], lr=0.05)
    pairs = np.array([[a, b] for a in range(4) for b in range(4)])
    labels = (pairs.sum(axis=1) >= 3).astype(np.int64)
    for _ in range(150):
        opt.zero_grad()
        logits = head(emb(pairs).reshape(16, 16))
        F.cross_entropy(logits, labels).backward()
        opt.step()
    assert np.array_equal(head(emb(pairs).reshape(16, 16)).data.argmax(1), labels)
