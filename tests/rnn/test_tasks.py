"""The bundled tasks: generators (shapes, determinism by seed, what the targets mean), baselines, models,
losses, truncated BPTT and a short training run that must beat the baseline."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import rnn
from rnn.tasks import TASKS, adding, charlm, classify, copy, forecast, get_task, seq2seq
from rnn.tasks.base import batch_rng, forget_bias

ALL = ["adding", "copy", "charlm", "forecast", "seq2seq", "classify"]
CELLS = list(rnn.CELLS)  # every registered cell, built-in or not


# ------------------------------------------------------------------------------------------ shared
def test_batch_rng_is_a_function_of_seed_step_split():
    a = batch_rng(3, 7).random(5)
    assert np.array_equal(a, batch_rng(3, 7).random(5))
    assert not np.array_equal(a, batch_rng(3, 8).random(5))
    assert not np.array_equal(a, batch_rng(4, 7).random(5))
    assert not np.array_equal(a, batch_rng(3, 7, "test").random(5))
    with pytest.raises(ValueError, match="split"):
        batch_rng(0, 0, "dev")
    with pytest.raises(ValueError, match=">= 0"):
        batch_rng(-1, 0)


def test_one_hot_padding_rows_are_zero():
    out = get_task("classify", seq_len=3).one_hot(np.array([[0, 2, -1]]))
    assert out.shape == (1, 3, 4) and out.dtype == np.float32
    assert np.array_equal(out[0], [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])


def test_per_step_cross_entropy_matches_numpy_and_gradcheck():
    """The per-step loss of copy/charlm (F.cross_entropy over every step) in nats, averaged over steps."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, 3, 4))
    y = rng.integers(0, 4, (2, 3))
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ref = -np.take_along_axis(logp, y[..., None], -1).mean()
    task = get_task("copy", seq_len=3)
    assert np.isclose(task.step_loss(mg.tensor(z), y).item(), ref, rtol=1e-12)
    assert mg.gradcheck(lambda t: task.step_loss(t, y), [mg.tensor(z, requires_grad=True)])
    with pytest.raises(mg.ShapeError, match="cross_entropy"):
        task.step_loss(mg.tensor(z), y[:, :2])


def test_mse_gradcheck():
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((4, 3, 1)), rng.standard_normal((4, 3, 1))
    task = get_task("forecast", seq_len=3)
    assert np.isclose(task.step_loss(mg.tensor(x), t).item(), np.mean((x - t) ** 2))
    assert mg.gradcheck(lambda a: task.step_loss(a, t), [mg.tensor(x, requires_grad=True)])


def test_get_task_unknown_name():
    with pytest.raises(ValueError, match=r"unknown task 'nope'.*adding"):
        get_task("nope")
    assert isinstance(get_task("memory"), copy.CopyTask)


@pytest.mark.parametrize("name", ALL)
def test_batches_deterministic_and_split_dependent(name):
    task = get_task(name, seq_len=None if name != "charlm" else 16, seed=5)
    b1, b2 = task.batch(3, 4), task.batch(3, 4)
    other_step, other_split = task.batch(4, 4), task.batch(3, 4, "test")
    for k in b1:
        assert np.array_equal(b1[k], b2[k])
    key = next(iter(b1))
    assert not np.array_equal(b1[key], other_step[key])
    assert not np.array_equal(b1[key], other_split[key])
    again = get_task(name, seq_len=None if name != "charlm" else 16, seed=6).batch(3, 4)
    assert not np.array_equal(b1[key], again[key])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("name", ALL)
def test_model_loss_backward_reaches_every_parameter(name, cell):
    task = get_task(name, seq_len={"charlm": 8, "seq2seq": 2}.get(name, 6), seed=0)
    model = task.build_model(cell, 8)
    loss = task.backward(model, task.batch(0, 3))
    assert np.isfinite(loss) and loss > 0
    for n, p in model.named_parameters():
        assert p.grad is not None and np.all(np.isfinite(p.grad)), n
    # the same seed builds the same initial weights
    again = task.build_model(cell, 8)
    for (n, p), (_, q) in zip(model.named_parameters(), again.named_parameters()):
        assert np.array_equal(p.data, q.data), n


@pytest.mark.parametrize("cell", CELLS)
def test_float64_models(cell):
    task = get_task("adding", seq_len=4, dtype="float64")
    model = task.build_model(cell, 5)
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert task.batch(0, 2)["x"].dtype == np.float64
    assert task.loss(model, task.batch(0, 2)).dtype == np.float64


def test_lstm_forget_bias_starts_at_one():
    model = get_task("adding", seq_len=4).build_model("lstm", 6)
    b = model.encoder.rnn.bias_hh_l0.data
    assert np.all(b[6:12] == 1.0)
    assert forget_bias("lstm") == 1.0 and forget_bias("gru") is None and forget_bias("rnn") is None
    for name in CELLS:  # every cell with a forget gate (e.g. the zoo's peephole LSTM) gets one
        assert forget_bias(name) == (1.0 if hasattr(rnn.CELLS[name], "set_forget_bias") else None)
    # a cell without a forget gate is built without one (make_rnn would refuse forget_bias for it)
    assert get_task("adding", seq_len=4).build_model("gru", 6) is not None


# ------------------------------------------------------------------------------------------ adding
def test_adding_generator_targets_and_markers():
    x, y = adding.generate(200, 10, np.random.default_rng(0))
    assert x.shape == (200, 10, 2) and y.shape == (200, 1) and x.dtype == np.float32
    marks = x[:, :, 1]
    assert np.all(marks.sum(1) == 2)
    assert np.all(marks[:, :5].sum(1) == 1) and np.all(marks[:, 5:].sum(1) == 1)
    assert np.allclose((x[:, :, 0] * marks).sum(1), y[:, 0], atol=1e-6)
    assert np.all((x[:, :, 0] >= 0) & (x[:, :, 0] < 1))
    with pytest.raises(ValueError, match="T >= 2"):
        adding.generate(3, 1, np.random.default_rng(0))


def test_adding_constant_baseline_is_one_sixth():
    task = get_task("adding", seq_len=20)
    b = task.batch(0, 20000, "test")
    assert abs(np.mean((1.0 - b["y"]) ** 2) - 1 / 6) < 0.01


def test_adding_evaluate_reports_metric_and_baseline():
    task = get_task("adding", seq_len=5)
    model = task.build_model("rnn", 4)
    r = task.evaluate(model, n=100)
    assert set(r) == {"metric", "baseline"} and 0.1 < r["baseline"] < 0.25
    assert "predicted" in task.showcase(model, np.random.default_rng(0))


def test_truncated_bptt_gradient_stops_at_window_boundary():
    """With k < T only the last window's inputs receive gradient (many-to-one loss)."""
    task = get_task("adding", seq_len=8)
    model = task.build_model("rnn", 4)
    b = task.batch(0, 2)
    x = mg.tensor(b["x"], requires_grad=True)  # a leaf, so we can see which steps get a gradient
    total = task.backward(model, {"x": x, "y": b["y"]}, bptt=3)
    g = np.abs(x.grad).sum(axis=(0, 2))
    assert np.all(g[:6] == 0) and np.all(g[6:] > 0)
    windows = [(w.start, w.stop) for w in rnn.tbptt_windows(model.encoder.rnn, b["x"], k1=3, time_axis=1)]
    assert windows == [(0, 3), (3, 6), (6, 8)] and total > 0
    # and with full BPTT every step gets one
    x.grad = None
    task.backward(model, {"x": x, "y": b["y"]})
    assert np.all(np.abs(x.grad).sum(axis=(0, 2)) > 0)


def test_full_bptt_equals_k_ge_T():
    task = get_task("charlm", seq_len=6)
    model = task.build_model("lstm", 8)
    b = task.batch(0, 2)
    l_full = task.backward(model, b, 0)
    g_full = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    l_k = task.backward(model, b, 6)
    assert np.isclose(l_full, l_k, rtol=1e-6)
    for a, p in zip(g_full, model.parameters()):
        assert np.allclose(a, p.grad, rtol=1e-5, atol=1e-7)
    model.zero_grad()
    l_trunc = task.backward(model, b, 2)
    assert np.isclose(l_full, l_trunc, rtol=1e-5)  # same loss, different (truncated) gradient
    assert not all(np.allclose(a, p.grad) for a, p in zip(g_full, model.parameters()))


# ------------------------------------------------------------------------------------------ copy
def test_copy_generator_layout():
    inp, tgt = copy.generate(50, 7, np.random.default_rng(0), n_symbols=4, length=3)
    assert inp.shape == tgt.shape == (50, 13)
    assert np.all((inp[:, :3] >= 1) & (inp[:, :3] <= 4))
    assert np.all(inp[:, 3 + 7 - 1] == 5)           # the delimiter
    assert np.all(inp[:, 3:9] == 0) and np.all(inp[:, 10:] == 0)
    assert np.array_equal(tgt[:, -3:], inp[:, :3]) and np.all(tgt[:, :-3] == 0)
    with pytest.raises(ValueError, match="n_symbols"):
        copy.generate(1, 3, np.random.default_rng(0), n_symbols=1)


def test_copy_evaluate_chance_baseline():
    task = get_task("copy", seq_len=3)
    r = task.evaluate(task.build_model("gru", 8), n=64)
    assert r["baseline"] == 1 / 8 and 0 <= r["metric"] <= 1 and 0 <= r["exact_match"] <= r["metric"] + 1e-9


# ------------------------------------------------------------------------------------------ charlm
def test_corpus_bundled_and_split():
    text = charlm.load_corpus()
    assert 200_000 < len(text) < 1_000_000 and "Hamlet" in text and "Macbeth" in text
    train, test = charlm.split_corpus(text)
    assert train + test == text and abs(len(test) / len(text) - 0.1) < 0.001
    v = charlm.Vocab(text)
    assert v.decode(v.encode("To be, or not to be")) == "To be, or not to be"
    with pytest.raises(ValueError, match="not in the corpus"):
        v.encode("caf\u00e9")


def test_unigram_baseline_matches_entropy():
    ids = np.array([0, 0, 1, 1])
    assert np.isclose(charlm.unigram_nats(ids, ids, 2), np.log(2))
    task = get_task("charlm", seq_len=8)
    base = charlm.unigram_nats(task.train_ids, task.test_ids, len(task.vocab))
    assert 2.5 < base < 4.0  # English characters: ~3.3 nats under a unigram


def test_charlm_windows_are_corpus_substrings_shifted_by_one():
    task = get_task("charlm", seq_len=12, seed=2)
    b = task.batch(0, 3)
    text = charlm.load_corpus()
    for i in range(3):
        inp = task.vocab.decode(b["x"][i].argmax(-1))
        tgt = task.vocab.decode(b["targets"][i])
        assert inp in text and inp[1:] == tgt[:-1]


def test_charlm_sampling_primed_and_reproducible():
    task = get_task("charlm", seq_len=8)
    model = task.build_model("lstm", 8)
    s1 = task.sample(model, 20, prime="Ham.", temperature=0.5, rng=np.random.default_rng(1))
    s2 = task.sample(model, 20, prime="Ham.", temperature=0.5, rng=np.random.default_rng(1))
    assert s1 == s2 and s1.startswith("Ham.") and len(s1) == 24
    with pytest.raises(ValueError, match="temperature"):
        task.sample(model, 5, temperature=0)
    r = task.evaluate(model, n_chars=500)
    assert np.isclose(r["perplexity"], np.exp(r["metric"]))
    assert r["metric"] > r["baseline"]  # an untrained model is worse than the unigram


# ------------------------------------------------------------------------------------------ forecast
def test_mackey_glass_is_bounded_and_chaotic_looking():
    x = forecast.mackey_glass(2000)
    assert x.shape == (2000,) and np.all((x > 0.1) & (x < 1.6))
    assert x.std() > 0.1  # not a fixed point
    task = get_task("forecast", seq_len=10)
    assert abs(task.train_part.mean()) < 1e-5 and abs(task.train_part.std() - 1) < 1e-4
    b = task.batch(0, 4)
    assert b["x"].shape == (4, 10, 1) and np.array_equal(b["x"][:, 1:], b["targets"][:, :-1])


def test_forecast_last_value_baseline():
    task = get_task("forecast", seq_len=10)
    model = task.build_model("gru", 4)
    _, base = task.one_step(model)
    x = task.test_part
    assert np.isclose(base, np.mean((x[:-1][20:] - x[1:][20:]) ** 2), rtol=1e-6)
    mh, bh = task.multi_step(model, horizon=5, n=10)
    assert mh.shape == bh.shape == (5,) and bh[0] < bh[-1]  # last value degrades with the horizon


# ------------------------------------------------------------------------------------------ seq2seq
def test_seq2seq_encoding_roundtrip():
    src, tgt = seq2seq.encode_problem(57, 803, 3)
    assert src == " 57+803" and tgt == "068 "
    ops, s, t = seq2seq.generate(100, 3, np.random.default_rng(0))
    assert s.shape == (100, 7) and t.shape == (100, 4)
    for (a, b), ti in zip(ops, t):
        assert seq2seq.decode_answer(ti) == str(a + b)


def test_seq2seq_greedy_and_evaluate():
    task = get_task("seq2seq", seq_len=2)
    model = task.build_model("lstm", 8)
    b = task.batch(0, 5)
    assert model.greedy_decode(b["src"], 3).shape == (5, 3)
    y = model(b["src"], b["targets"])
    assert y.shape == (5, 3, len(seq2seq.OUT_CHARS) + 1)  # the output characters and <go>
    assert y.shape[-1] == seq2seq.TGT_VOCAB
    r = task.evaluate(model, n=50)
    assert 0 <= r["metric"] <= 1 and r["baseline"] < 0.1


# ------------------------------------------------------------------------------------------ classify
def test_classify_labels_are_unique_majorities_and_lengths_vary():
    seqs, lengths, labels = classify.generate(300, 12, np.random.default_rng(0), n_classes=3)
    assert seqs.shape == (300, 12) and lengths.min() >= 3 and lengths.max() <= 12
    assert len(set(lengths.tolist())) > 5
    for s, L, y in zip(seqs, lengths, labels):
        assert np.all(s[L:] == -1) and np.all(s[:L] >= 0)
        c = np.bincount(s[:L], minlength=3)
        assert c[y] == c.max() and (c == c.max()).sum() == 1


def test_classify_padding_does_not_change_predictions():
    task = get_task("classify", seq_len=10)
    model = task.build_model("lstm", 8)
    b = task.batch(0, 6)
    full = model(b["x"], lengths=b["lengths"]).data
    for i in range(6):
        L = b["lengths"][i]
        alone = model(b["x"][i:i + 1, :L]).data
        assert np.allclose(full[i], alone[0], atol=1e-5)


# ------------------------------------------------------------------------------------------ learning
def test_classify_learns_above_baseline():
    """A few seconds of training beat the majority-class baseline clearly."""
    from rnn.tasks.trainer import TrainConfig, build

    cfg = TrainConfig(task="classify", cell="gru", hidden=16, steps=120, seq_len=8, batch=32).resolved()
    task, model, opt = build(cfg)
    for step in range(cfg.steps):
        opt.zero_grad()
        task.backward(model, task.batch(step, cfg.batch))
        opt.step()
    r = task.evaluate(model, n=400)
    assert r["metric"] > r["baseline"] + 0.25, r


def test_task_registry_documents_defaults():
    for name, cls in TASKS.items():
        assert cls.summary and cls.metric, name
        for k in ("hidden", "layers", "lr", "steps", "batch", "seq_len", "clip", "bptt"):
            assert k in cls.defaults, (name, k)
