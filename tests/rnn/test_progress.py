"""rnn.tasks.progress: tqdm bars on a terminal, silence when quiet or when the stream is not a terminal."""

import io

from rnn.tasks.progress import Progress, bar, is_terminal, write


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_silent_when_not_a_terminal_or_quiet():
    for stream, quiet in ((io.StringIO(), False), (Tty(), True), (io.StringIO(), True)):
        p = Progress(20, stream=stream, quiet=quiet)
        for s in range(1, 21):
            p.update(s, 1.0 / s)
        p.close()
        assert stream.getvalue() == ""
        assert p.avg is not None and p.rate(20) > 0


def test_bar_on_a_terminal_shows_step_loss_and_rate():
    t = Tty()
    p = Progress(30, start=10, stream=t)            # a resumed run: the bar starts at step 10
    for s in range(11, 31):
        p.update(s, 0.5)
    p.close()
    p.close()                                       # twice is harmless
    out = t.getvalue()
    assert "30/30" in out and "loss 0.5000 (avg 0.5000)" in out and "step/s" in out
    assert "10/30" in out and out.endswith("\n")
    assert 0 < p.rate(30)


def test_progress_is_a_context_manager_and_closes_on_error():
    t = Tty()
    try:
        with Progress(5, stream=t) as p:
            p.update(1, 2.0)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert p.bar is None and t.getvalue().endswith("\n")


def test_bar_over_an_iterable():
    quiet, pipe, tty = io.StringIO(), io.StringIO(), Tty()
    assert list(bar(range(4), total=4, stream=pipe)) == [0, 1, 2, 3] and pipe.getvalue() == ""
    assert list(bar(range(4), total=4, stream=tty, quiet=True)) == [0, 1, 2, 3] and tty.getvalue() == ""
    assert list(bar(range(4), total=4, desc="runs", stream=tty, unit="run")) == [0, 1, 2, 3]
    assert "runs" in tty.getvalue() and "4/4" in tty.getvalue()
    write("a line", quiet)
    assert quiet.getvalue() == "a line\n"


def test_is_terminal_of_odd_streams():
    class Closed(io.StringIO):
        def isatty(self):
            raise ValueError("I/O operation on closed file")

    assert not is_terminal(object()) and not is_terminal(Closed()) and is_terminal(Tty())


def test_drop_in_for_the_trainers_progress(monkeypatch, tmp_path):
    from rnn.tasks import trainer

    monkeypatch.setattr(trainer, "Progress", Progress)
    t = Tty()
    cfg = trainer.TrainConfig(task="adding", hidden=4, seq_len=4, batch=2, steps=3)
    res = trainer.train(cfg, tmp_path / "run", stream=t)
    assert len(res.losses) == 3 and "3/3" in t.getvalue() and "loss" in t.getvalue()
    quiet = Tty()
    trainer.train(cfg, tmp_path / "quiet", stream=quiet, quiet=True)
    assert quiet.getvalue() == ""


def test_a_terminal_that_reports_no_size_still_gets_a_bar():
    from rnn.tasks.progress import _width

    assert _width(Tty()) == {"ncols": 80, "nrows": 24}      # no fileno: 80 x 24 (0 x 0 would hide it)
