"""Architectures: shapes, what each reads (final state, causality, both directions), lengths,
gradcheck of whole models, generation by feeding samples back, seq2seq teacher forcing."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import functional as F
from rnn.models import (
    BiTagger,
    Generator,
    NextStepPredictor,
    Seq2Seq,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
    make_rnn,
)

F64 = {"dtype": "float64"}


def R(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bi", [False, True])
def test_classifier_reads_the_final_state(cell, bi, rng):
    m = SequenceClassifier(3, 4, 5, cell=cell, num_layers=2, bidirectional=bi, rng=R(), **F64)
    x = rng.standard_normal((2, 6, 3))
    logits = m(x)
    assert logits.shape == (2, 5)
    _, h_n = m.encoder.rnn(x)
    h = (h_n[0] if cell == "lstm" else h_n).data
    feat = np.concatenate([h[-2], h[-1]], -1) if bi else h[-1]
    np.testing.assert_allclose(logits.data, feat @ m.head.weight.data.T + m.head.bias.data, rtol=1e-12)
    assert m.predict(x).shape == (2,)


def test_classifier_lengths_padding_does_not_matter(rng):
    m = SequenceClassifier(2, 3, 4, cell="gru", bidirectional=True, rng=R(), **F64)
    x = rng.standard_normal((3, 5, 2))
    lengths = [5, 2, 4]
    x_pad = x.copy()
    for b, n in enumerate(lengths):
        x_pad[b, n:] = 99.0
    logits = m(x_pad, lengths=lengths)
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(logits.data[b], m(x[b:b + 1, :n]).data[0], rtol=1e-12)


def test_gradcheck_models(rng):
    x = mg.tensor(rng.standard_normal((2, 4, 2)), requires_grad=True)
    for m in (SequenceRegressor(2, 3, 2, cell="lstm", num_layers=2, rng=R(), **F64),
              BiTagger(2, 3, 3, cell="gru", rng=R(), **F64)):
        assert mg.gradcheck(lambda x, *p, m=m: m(x, lengths=[4, 3]), [x, *m.parameters()], atol=1e-7,
                            rtol=1e-6, fast=True)


def test_token_inputs_with_embedding(rng):
    m = SequenceClassifier(4, 3, 2, vocab_size=10, rng=R(), **F64)
    tokens = rng.integers(0, 10, (3, 7))
    logits = m(tokens, lengths=[7, 1, 3])
    F.cross_entropy(logits, np.array([0, 1, 1])).backward()
    assert m.encoder.embedding.weight.grad is not None
    assert np.abs(m.encoder.embedding.weight.grad[np.setdiff1d(np.arange(10), tokens)]).sum() == 0


@pytest.mark.parametrize("cls,bi", [(SequenceTagger, False), (BiTagger, True)])
def test_tagger_causality(cls, bi, rng):
    m = cls(2, 3, 4, cell="lstm", rng=R(), **F64)
    assert m.encoder.rnn.bidirectional is bi
    x = mg.tensor(rng.standard_normal((1, 5, 2)), requires_grad=True)
    logits = m(x)
    assert logits.shape == (1, 5, 4)
    logits[0, 1].sum().backward()
    future = np.abs(x.grad[0, 2:]).sum()
    assert (future > 0) if bi else (future == 0)  # a step's tag sees the future only when bidirectional
    assert np.abs(x.grad[0, :2]).sum() > 0
    assert m.predict(x.data).shape == (1, 5)


def test_next_step_predictor_state_and_rollout(rng):
    m = NextStepPredictor(1, 6, cell="gru", rng=R(), **F64)
    x = rng.standard_normal((2, 8, 1))
    y, _ = m(x)
    y1, h1 = m(x[:, :5])
    y2, _ = m(x[:, 5:], h1, t0=5)
    np.testing.assert_allclose(np.concatenate([y1.data, y2.data], 1), y.data, rtol=1e-12)
    r = m.rollout(x, 3)
    assert r.shape == (2, 3, 1)
    np.testing.assert_allclose(r[:, :1], y.data[:, -1:], rtol=1e-12)  # first prediction = last output
    y3, _ = m(np.concatenate([x, r[:, :2]], 1))
    np.testing.assert_allclose(r[:, 1:], y3.data[:, -2:], rtol=1e-10)  # predictions fed back as inputs


def test_generator_feeds_samples_back_seeded_and_greedy(rng):
    g = Generator(7, 5, embed_size=3, cell="lstm", num_layers=2, rng=R(), **F64)
    a = g.generate(10, start=[1, 2], rng=R(5))
    b = g.generate(10, start=[1, 2], rng=R(5))
    assert a.shape == (2, 10) and a.dtype == np.int64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, g.generate(10, start=[1, 2], rng=R(6), temperature=5.0))
    greedy = g.generate(6, start=3, temperature=0)
    # teacher-forced on its own output, the model's argmax reproduces the greedy sequence
    logits, _ = g(np.concatenate([[[3]], greedy[:, :-1]], 1))
    np.testing.assert_array_equal(logits.data.argmax(-1), greedy)
    # low temperature concentrates on the argmax
    np.testing.assert_array_equal(g.generate(6, start=3, temperature=1e-6, rng=R(1)), greedy)
    with pytest.raises(ValueError, match="temperature"):
        g.generate(3, temperature=-1)


def test_generator_one_to_many_from_a_vector(rng):
    g = Generator(6, 4, cell="gru", cond_size=3, rng=R(), **F64)
    cond = mg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    out = g.generate(5, start=0, cond=cond, rng=R(2))
    assert out.shape == (2, 5)
    logits, _ = g(np.zeros((2, 4), np.int64), cond=cond)
    logits.sum().backward()
    assert np.abs(cond.grad).sum() > 0 and np.abs(g.cond.weight.grad).sum() > 0
    with pytest.raises(ValueError, match="cond_size"):
        Generator(6, 4)(np.zeros((1, 2), np.int64), cond=np.zeros((1, 3)))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_seq2seq_teacher_forcing_and_greedy(cell, rng):
    m = Seq2Seq(5, 7, 4, embed_size=3, cell=cell, num_layers=2, bos=0, rng=R(), **F64)
    src = rng.integers(0, 5, (2, 6))
    tgt = rng.integers(1, 7, (2, 3))  # a different length from the source
    logits = m(src, tgt)
    assert logits.shape == (2, 3, 7)
    # the one-call teacher-forced decoder equals a step-by-step decoder fed the true tokens
    state = m.encode(src)
    tok, steps = np.zeros(2, np.int64), []
    for t in range(3):
        s, state = m._decode_step(tok, state, t)
        steps.append(s.data)
        tok = tgt[:, t]
    np.testing.assert_allclose(np.concatenate(steps, 1), logits.data, rtol=1e-12)
    # without teacher forcing the decoder feeds back its own argmax: that is greedy decoding
    free = m(src, tgt, teacher_forcing=0.0)
    np.testing.assert_array_equal(free.data.argmax(-1), m.greedy_decode(src, 3))
    F.cross_entropy(free.reshape(6, 7), tgt.reshape(6)).backward()
    assert np.abs(m.encoder.weight_hh_l0.grad).sum() > 0  # the loss reaches the encoder
    half = m(src, tgt, teacher_forcing=0.5, rng=R(3))
    assert half.shape == (2, 3, 7)
    with pytest.raises(ValueError, match="teacher_forcing"):
        m(src, tgt, teacher_forcing=2.0)


def test_seq2seq_scopes_and_eos(rng):
    m = Seq2Seq(4, 4, 3, cell="gru", rng=R(), **F64)
    logits = m(rng.integers(0, 4, (1, 3)), rng.integers(0, 4, (1, 2)))
    seen, stack, scopes = set(), [logits.node], set()
    while stack:
        n = stack.pop()
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        scopes.add(n.scope[:2])
        stack.extend(t.node for t in n.inputs)
    assert {s for s in scopes if len(s) == 2} >= {("encoder", "GRU"), ("decoder", "GRU")}
    src = np.zeros((3, 2), np.int64)
    first = int(m.greedy_decode(src[:1], 1)[0, 0])
    out = m.greedy_decode(src, 6, eos=first)
    assert (out == out[:, :1]).all()  # the first token is eos: every row keeps emitting it


def test_make_rnn_errors():
    with pytest.raises(ValueError, match="cell"):
        make_rnn("transformer", 2, 2)
