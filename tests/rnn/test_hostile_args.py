"""Issue 15: hostile command lines and API arguments. Each case asserts the error text and that nothing
was written (no output directory, no file) or lost (an existing run is byte-for-byte unchanged)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
import rnn
from minigrad import nn, optim
from rnn.cli import main
from rnn.tasks.trainer import TrainConfig, train

TINY = ["--task", "adding", "--hidden", "4", "--seq-len", "5", "--batch", "4", "--quiet"]


def files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()
            and p.name != ".lock"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("hostile") / "run"
    train(TrainConfig(task="adding", hidden=4, seq_len=5, batch=4, steps=2), run, quiet=True, evaluate=False)
    return run


# ----------------------------------------------------------------------------- usage errors (argparse)
USAGE = [
    (["train", "--hidden", "-3"], "--hidden"), (["train", "--hidden", "0"], "--hidden"),
    (["train", "--hidden", "1e3"], "--hidden"), (["train", "--hidden", ""], "--hidden"),
    (["train", "--hidden", "0x10"], "--hidden"), (["train", "--layers", "-1"], "--layers"),
    (["train", "--steps", "0"], "--steps"), (["train", "--steps", "nan"], "--steps"),
    (["train", "--batch", "x"], "--batch"), (["train", "--batch", "-0"], "--batch"),
    (["train", "--seq-len", "-5"], "--seq-len"), (["train", "--T", "2.5"], "--seq-len"),
    (["train", "--bptt", "-1"], "--bptt"), (["train", "--seed", "-1"], "--seed"),
    (["train", "--lr", "-1"], "--lr"), (["train", "--lr", "0"], "--lr"), (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "inf"], "--lr"), (["train", "--lr", "abc"], "--lr"),
    (["train", "--clip", "nan"], "--clip"),
    (["train", "--clip", "-1"], "--clip"), (["train", "--clip", "-inf"], "--clip"),
    (["train", "--checkpoint-every", "-2"], "--checkpoint-every"),
    (["train", "--checkpoint-minutes", "-1"], "--checkpoint-minutes"),
    (["train", "--checkpoint-minutes", "inf"], "--checkpoint-minutes"),
    (["train", "--optimizer", "lbfgs"], "--optimizer"), (["train", "--schedule", "step"], "--schedule"),
    (["train", "--bogus"], "unrecognized arguments"), (["train", "--hidden"], "expected one argument"),
    (["train", "--lr", "1e-3", "extra"], "unrecognized arguments"),
    (["experiment", "vanishing", "--T", "1,5"], "--T"), (["experiment", "vanishing", "--T", ""], "--T"),
    (["experiment", "vanishing", "--T", "a,b"], "--T"), (["experiment", "vanishing", "--cells", "rnn,foo"],
                                                         "--cells"),
    (["experiment", "vanishing", "--cells", ","], "--cells"), (["experiment", "nope"], "invalid choice"),
    (["experiment", "vanishing", "--hidden", "0"], "--hidden"), (["demo", "--steps", "0"], "--steps"),
    (["demo", "--seed", "x"], "--seed"), (["nope"], "invalid choice"),
    (["sample", "--checkpoint", "x", "--temperature", "0"], "--temperature"),
    (["sample", "--checkpoint", "x", "--temperature", "nan"], "--temperature"),
    (["sample", "--checkpoint", "x", "--length", "-1"], "--length"),
    (["evaluate"], "required: --checkpoint"),
    (["draw", "--cell", "rnn", "--steps", "0"], "--steps"),
    (["draw", "--cell", "rnn", "--steps", "10001"], "--steps"),
    (["draw", "--cell", "rnn", "--hidden", "65"], "--hidden"),
    (["draw", "--cell", "rnn", "--layers", "9"], "--layers"),
    (["draw", "--cell", "rnn", "--timeout", "0"], "--timeout"),
    (["draw", "--cell", "rnn", "--timeout", "-1"], "--timeout"),
    (["draw", "--cell", "rnn", "--timeout", "nan"], "--timeout"),
    (["draw", "--cell", "rnn", "--max-steps", "1"], "--max-steps"),
    (["draw", "--cell", "rnn", "--view", "flat"], "--view"),
    (["draw", "--cell", "rnn", "--format", "jpg"], "--format"),
    (["draw", "--cell", "rnn", "--rankdir", "XY"], "--rankdir"), (["draw"], "one of the arguments"),
    (["draw", "--cell", "rnn", "--checkpoint", "x"], "not allowed with"),
]


@pytest.mark.parametrize("argv, msg", USAGE, ids=[" ".join(a)[:60] for a, _ in USAGE])
def test_usage_errors(argv, msg, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as ei:
        out = ["--out", str(tmp_path / "never")] if argv[0] in ("train", "experiment", "demo") else []
        main([*argv, *out])
    err = capsys.readouterr().err
    assert ei.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1 and msg in err, err
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- checked by the commands
BAD = [
    (["train", "--task", "nope"], "unknown task 'nope'"),
    (["train", "--task", ""], "unknown task ''"),
    (["train", "--task", "../../etc"], "unknown task"),
    (["train", "--cell", "transformer"], "unknown cell"),
    (["train", "--cell", "LSTM"], "unknown cell"),
    (["train", "--dtype", "float16"], "unknown dtype"),
    (["train", "--dtype", "int32"], "unknown dtype"),
    (["train", "--task", "seq2seq", "--bptt", "3"], "does not support truncated BPTT"),
    (["train", "--task", "classify", "--bptt", "3"], "does not support truncated BPTT"),
    (["train", "--task", "adding", "--seq-len", "1"], "--seq-len must be >= 2"),
    (["train", "--hidden", "5000"], "--hidden must be an integer between 1 and 4096"),
    (["train", "--layers", "17"], "--layers must be an integer between 1 and 16"),
    (["train", "--seq-len", "1000000"], "--seq-len must be an integer between 1 and 100000"),
    (["train", "--batch", "1000000000"], "--batch must be an integer between 1 and 10000000"),
    (["train", "--batch", "10000000", "--seq-len", "100000"], "GiB"),
    (["train", "--hidden", "4096", "--layers", "16", "--batch", "100000"], "GiB"),
    (["train", "--steps", "10000000000"], "--steps must be an integer between"),
    (["train", "--resume"], "no checkpoint"),
    (["train", "--resume", "--hidden", "8"], "cannot be combined with --hidden"),
    (["train", "--resume", "--task", "copy"], "cannot be combined with --task"),
    (["train", "--resume", "--overwrite"], "cannot be combined with --overwrite"),
    (["train", "--resume", "--seed", "3"], "cannot be combined with --seed"),
]


@pytest.mark.parametrize("argv, msg", BAD, ids=[" ".join(a)[:60] for a, _ in BAD])
def test_bad_train_arguments_write_nothing(argv, msg, tmp_path, capsys):
    out = tmp_path / "never"
    assert main([*argv, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and msg in err, err
    assert not out.exists()


CKPT_BAD = [
    (["evaluate", "--checkpoint", "{tmp}/nothing"], "does not exist"),
    (["sample", "--checkpoint", "{tmp}/nothing"], "does not exist"),
    (["draw", "--checkpoint", "{tmp}/nothing"], "does not exist"),
    (["evaluate", "--checkpoint", "{tmp}/empty"], "not a safetensors file: 0 bytes"),
    (["evaluate", "--checkpoint", "{tmp}/garbage"], "not a safetensors file"),
    (["evaluate", "--checkpoint", "{tmp}/pickle"], "not a safetensors file"),
    (["evaluate", "--checkpoint", "{tmp}/json"], "not a safetensors file"),
    (["evaluate", "--checkpoint", "{tmp}/dir_without"], "does not exist"),
    (["evaluate", "--checkpoint", "{tmp}/foreign.safetensors"], "not a minigrad rnn checkpoint"),
    (["evaluate", "--checkpoint", "{tmp}/nometa.safetensors"], "not a minigrad rnn checkpoint"),
    (["sample", "--checkpoint", "{tmp}/foreign.safetensors"], "not a minigrad rnn checkpoint"),
    (["draw", "--checkpoint", "{tmp}/foreign.safetensors", "-o", "{tmp}/x.svg"], "not a minigrad rnn"),
]


@pytest.mark.parametrize("argv, msg", CKPT_BAD, ids=[" ".join(a)[:60] for a, _ in CKPT_BAD])
def test_bad_checkpoint_files(argv, msg, tmp_path, capsys):
    from minigrad.serialization import save_safetensors

    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "garbage").write_bytes(b"\x00\x01garbage")
    (tmp_path / "pickle").write_bytes(b"\x80\x04\x95" + b"\0" * 5)
    (tmp_path / "json").write_bytes(b'{"format": "minigrad-rnn-checkpoint/3"}')
    (tmp_path / "dir_without").mkdir()
    save_safetensors({"w": np.ones(3)}, tmp_path / "foreign.safetensors", {"format": "pytorch"})
    save_safetensors({"w": np.ones(3)}, tmp_path / "nometa.safetensors")
    before = files(tmp_path)
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and msg in err, err
    assert files(tmp_path) == before


EXISTING = [
    (["train", *TINY, "--steps", "1"], "already holds a run"),
    (["train", "--resume", "--hidden", "8"], "cannot be combined"),
    (["train", "--resume", "--lr", "0.1"], "cannot be combined"),
    (["train", "--resume", "--dtype", "float64"], "cannot be combined"),
    (["train", "--resume", "--steps", "1", "--quiet"], None),   # fewer steps than done: nothing to do
]


@pytest.mark.parametrize("argv, msg", EXISTING, ids=[" ".join(a)[:60] for a, _ in EXISTING])
def test_an_existing_run_is_never_lost(run_dir, tmp_path, argv, msg, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for p in run_dir.iterdir():
        (run / p.name).write_bytes(p.read_bytes())
    before = files(run)
    status = main([*argv, "--out", str(run)])
    err = capsys.readouterr().err
    if msg is None:
        assert status == 0
        from rnn.tasks.checkpoint import load_checkpoint
        assert load_checkpoint(run)["step"] == 2
        assert files(run)["losses.tsv"] == before["losses.tsv"]
    else:
        assert status == 2 and msg in err
        assert files(run) == before


DRAW_BAD = [
    (["--checkpoint", "{run}", "--hidden", "3"], "describe a fresh layer"),
    (["--checkpoint", "{run}", "--bidirectional"], "describe a fresh layer"),
    (["--cell", "nope"], "unknown cell"),
    (["--cell", "rnn", "--rolled", "--grads"], "--rolled draws the folded cell"),
    (["--cell", "rnn", "--show", "colour"], "--show: unknown colour"),
    (["--cell", "rnn", "--format", "svg"], "needs -o FILE"),
    (["--cell", "rnn", "-o", "{tmp}/x.jpeg"], "cannot tell the format"),
    (["--cell", "rnn", "-o", "{tmp}/x.svg", "--format", "png"], "does not match"),
    (["--cell", "rnn", "-o", "{tmp}"], "not a regular file"),
]


@pytest.mark.parametrize("argv, msg", DRAW_BAD, ids=[" ".join(a)[:60] for a, _ in DRAW_BAD])
def test_bad_draw_arguments(run_dir, tmp_path, argv, msg, capsys):
    before = files(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{run}", str(run_dir)) for a in argv]
    assert main(["draw", *argv]) == 2
    err = capsys.readouterr()
    assert err.err.startswith("error: ") and msg in err.err and err.out == ""
    assert files(tmp_path) == before


# ----------------------------------------------------------------------------- API arguments
def params():
    return list(nn.Linear(2, 2).parameters())


OPTIM_BAD = [
    (lambda: optim.Adam(params(), lr="abc"), TypeError, "lr must be a real number"),
    (lambda: optim.Adam(params(), lr=None), TypeError, "lr must be a real number"),
    (lambda: optim.Adam(params(), lr=True), TypeError, "lr must be a real number"),
    (lambda: optim.Adam(params(), lr=[0.1]), TypeError, "lr must be a real number"),
    (lambda: optim.Adam(params(), lr=-1.0), ValueError, "invalid learning rate"),
    (lambda: optim.Adam(params(), lr=math.nan), ValueError, "invalid learning rate"),
    (lambda: optim.Adam(params(), eps="x"), TypeError, "eps must be a real number"),
    (lambda: optim.Adam(params(), betas=(0.9,)), ValueError, "betas must be two numbers"),
    (lambda: optim.Adam(params(), betas=(1.0, 0.999)), ValueError, "betas must be two numbers"),
    (lambda: optim.Adam(params(), betas="ab"), ValueError, "betas must be two numbers"),
    (lambda: optim.Adam(params(), weight_decay=-1), ValueError, "weight_decay"),
    (lambda: optim.SGD(params(), lr="0.1"), TypeError, "lr must be a real number"),
    (lambda: optim.SGD(params(), lr=0.1, momentum="x"), TypeError, "momentum must be a real number"),
    (lambda: optim.SGD(params(), lr=0.1, momentum=-0.5), ValueError, "momentum"),
    (lambda: optim.RMSprop(params(), lr={}), TypeError, "lr must be a real number"),
    (lambda: optim.RMSprop(params(), alpha="a"), TypeError, "alpha must be a real number"),
    (lambda: optim.Adam([], lr=0.1), ValueError, "empty parameter list"),
    (lambda: optim.Adam(mg.tensor([1.0], requires_grad=True)), TypeError, "single Tensor"),
]


@pytest.mark.parametrize("make, exc, msg", OPTIM_BAD, ids=[m for _, _, m in OPTIM_BAD])
def test_optimizer_arguments(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


def test_optimizer_accepts_numpy_and_tensor_numbers():
    optim.Adam(params(), lr=np.float32(0.01))
    optim.SGD(params(), lr=np.int64(1))


@pytest.fixture(scope="module")
def models():
    mg.manual_seed(0)
    return {"gen": rnn.Generator(5, 4), "s2s": rnn.Seq2Seq(5, 6, 4), "nsp": rnn.NextStepPredictor(2, 3)}


MODEL_BAD = [
    ("gen", lambda m: m.generate(-3), ValueError, "steps must be an integer >= 0, got -3"),
    ("gen", lambda m: m.generate(2.5), TypeError, "steps must be an integer >= 0"),
    ("gen", lambda m: m.generate("3"), TypeError, "steps must be an integer >= 0"),
    ("gen", lambda m: m.generate(True), TypeError, "steps must be an integer >= 0"),
    ("gen", lambda m: m.generate(None), TypeError, "steps must be an integer >= 0"),
    ("gen", lambda m: m.generate(2, temperature=-1), ValueError, "temperature must be a finite number"),
    ("gen", lambda m: m.generate(2, temperature=math.nan), ValueError, "temperature must be a finite number"),
    ("gen", lambda m: m.generate(2, temperature=math.inf), ValueError, "temperature must be a finite number"),
    ("gen", lambda m: m.generate(2, temperature="hot"), ValueError, "temperature must be a finite number"),
    ("s2s", lambda m: m.greedy_decode(np.zeros((1, 3), np.int64), max_len=-1), ValueError,
     "max_len must be an integer >= 0, got -1"),
    ("s2s", lambda m: m.greedy_decode(np.zeros((1, 3), np.int64), max_len=1.5), TypeError, "max_len"),
    ("s2s", lambda m: m.greedy_decode(np.zeros((1, 3), np.int64), max_len="4"), TypeError, "max_len"),
    ("nsp", lambda m: m.rollout(np.zeros((1, 3, 2), np.float32), -2), ValueError, "steps must be an integer"),
    ("nsp", lambda m: m.rollout(np.zeros((1, 3, 2), np.float32), 2.0), TypeError, "steps must be an integer"),
]


@pytest.mark.parametrize("which, call, exc, msg", MODEL_BAD, ids=[f"{w}-{m[:30]}-{i}" for i, (w, _, _, m)
                                                                    in enumerate(MODEL_BAD)])
def test_model_arguments(models, which, call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(models[which])


def test_zero_steps_are_empty(models):
    assert models["gen"].generate(0).shape == (1, 0)
    assert models["s2s"].greedy_decode(np.zeros((2, 3), np.int64), max_len=0).shape == (2, 0)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "mgu", "indrnn"])
def test_float64_tensor_into_float32_layer_raises_like_pytorch(cell):
    """Decision (issue 15 item 9): a Tensor of another dtype is a TypeError naming both dtypes (PyTorch:
    "expected scalar type Float but found Double"); a NumPy array or list is data, converted to the
    layer's dtype (as nn.Linear does), so the output dtype is always the parameters'."""
    mg.manual_seed(0)
    layer = rnn.make_rnn(cell, 2, 3)
    x64 = np.random.default_rng(0).standard_normal((4, 1, 2))
    with pytest.raises(TypeError, match=r"dtype float64 .* parameters are float32"):
        layer(mg.tensor(x64))
    out, _ = layer(x64)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.data, layer(x64.astype(np.float32))[0].data)
    with pytest.raises(TypeError, match="dtype float64"):
        layer(mg.tensor(x64.astype(np.float32)), mg.zeros(1, 1, 3, dtype="float64")
              if cell != "lstm" else (mg.zeros(1, 1, 3, dtype="float64"),) * 2)


SAVE_BAD = [
    (lambda d: mg.save({"a": 1}, d), IsADirectoryError, "is a directory"),
    (lambda d: mg.save({"w": np.ones(2)}, d), IsADirectoryError, "is a directory"),
    (lambda d: mg.save({"a": 1}, d / "missing" / "f"), FileNotFoundError, "does not exist"),
    (lambda d: mg.save({"a": object()}, d / "f"), TypeError, "cannot save"),
    (lambda d: mg.save({"a": np.array([1 + 2j])}, d / "f"), TypeError, "not supported"),
    (lambda d: mg.save({(1, 2): 1}, d / "f"), TypeError, "keys must be str or int"),
    (lambda d: mg.save({"a": 1}, 42), TypeError, "path or a binary file object"),
    (lambda d: mg.load(d), IsADirectoryError, "Is a directory"),
    (lambda d: mg.load(d / "nope"), FileNotFoundError, "No such file"),
    (lambda d: mg.serialization.save_safetensors({"a": "x"}, d / "f"), TypeError, "not an array"),
    (lambda d: mg.serialization.save_safetensors({1: np.ones(1)}, d / "f"), TypeError, "str keys"),
    (lambda d: mg.serialization.save_safetensors({"a": np.ones(1)}, d / "f", {"k": 1}), TypeError,
     "metadata must map str to str"),
]


@pytest.mark.parametrize("call, exc, msg", SAVE_BAD, ids=[f"{m or e.__name__}-{i}" for i, (_, e, m)
                                                          in enumerate(SAVE_BAD)])
def test_save_load_arguments_write_nothing(tmp_path, call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(tmp_path)
    assert os.listdir(tmp_path) == []


def test_checkpoint_bigger_than_memory_is_refused_before_reading(tmp_path, capsys):
    from rnn.tasks.trainer import memory_available

    if memory_available() is None:
        pytest.skip("no /proc/meminfo")
    p = tmp_path / "huge.safetensors"
    with open(p, "wb") as f:
        f.write((100).to_bytes(8, "little") + b"{")
        f.truncate(memory_available() // 2)  # sparse: takes no disk space
    assert main(["evaluate", "--checkpoint", str(p)]) == 2
    err = capsys.readouterr().err
    assert "GiB of memory available" in err and err.count("\n") == 1


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_device_or_fifo_as_checkpoint_is_not_read(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading would block forever
    for path in (fifo, Path("/dev/null"), Path("/dev/zero")):
        assert main(["evaluate", "--checkpoint", str(path)]) == 2
        assert "is not a regular file" in capsys.readouterr().err


def test_lock_file_that_is_a_directory(tmp_path, capsys):
    (tmp_path / "run" / ".lock").mkdir(parents=True)
    assert main(["train", *TINY, "--steps", "1", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'run' / '.lock'}") and "Is a directory" in err
