"""``python -m rnn``: train, sample, evaluate and draw recurrent models on the bundled tasks.

    python -m rnn train --task adding --cell lstm --out runs/adding        # tuned defaults per task
    python -m rnn evaluate --checkpoint runs/adding
    python -m rnn sample --checkpoint runs/charlm --prime "Ham." --temperature 0.7
    python -m rnn draw --checkpoint runs/adding --steps 4 --out adding.svg
    python -m rnn draw --cell lstm --steps 4 --view expanded --grads -o lstm.svg   # a fresh layer
    python -m rnn experiment vanishing --out runs/vanishing
    python -m rnn demo --out runs/main

``--cell`` takes any name in ``rnn.CELLS``: the built-in rnn, gru and lstm and every cell registered with
``rnn.register_cell`` before ``main`` runs. Every argument is checked before anything is written. Every
failure is one line ``error: ...`` on stderr and an exit status: 2 for bad input (an argument, a missing
or invalid checkpoint, a run too big for memory; no output directory is left behind), 1 for a failure
at run time (the run directory in use by another process, a full disk or read-only directory, out of
memory, a diverged training, Graphviz failing). ``--debug`` (anywhere on the command line) shows the
traceback instead. Ctrl-C during training saves a checkpoint, exits with 130, and
``train --resume --out DIR`` continues exactly where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .cells import CELLS
from .tasks import TASKS
from .tasks._threads import limit_blas_threads

EXIT_ERROR = 2        # bad input: an argument, a checkpoint, a size that cannot fit
EXIT_RUNTIME = 1      # failed at run time: directory in use, disk full, read-only, diverged, render failed
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A bad argument or missing file: printed as ``error: ...``, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one ``error:`` line (no usage block) for a bad command line; status 2."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_ERROR, f"error: {message} (see {self.prog} --help)\n")


# ----------------------------------------------------------------------------------------- argument types
def _checked(convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    """An argparse ``type`` that converts with ``convert`` and accepts values for which ``ok`` holds."""

    def parse(s: str) -> Any:
        try:
            v = convert(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {s}")
        return v

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_nonneg_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _checked(float, lambda v: math.isfinite(v) and v > 0, "a positive number")


_nonneg_float = _checked(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")


def _between(lo: int, hi: int) -> Callable[[str], int]:
    return _checked(int, lambda v: lo <= v <= hi, f"an integer between {lo} and {hi}")


def _int_list(s: str) -> list[int]:
    try:
        vals = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None
    if not vals or any(v < 2 for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 2, got {s!r}")
    return vals


def _cell_list(s: str) -> list[str]:
    vals = [v.strip() for v in s.split(",") if v.strip()]
    bad = [v for v in vals if v not in CELLS]
    if not vals or bad:
        raise argparse.ArgumentTypeError(f"expected comma-separated cells from {', '.join(CELLS)}, got {s!r}")
    return vals


# ----------------------------------------------------------------------------------------- parser
def _add_train(sub: Any) -> None:
    t = sub.add_parser("train", help="train a model on a task", description="Train a model on a bundled "
                       "task; writes model.safetensors, checkpoint.safetensors, losses.tsv and results.json "
                       "into --out (locked while it runs).")
    t.add_argument("--task", help=f"one of {', '.join(TASKS)} (default adding)")
    t.add_argument("--cell", help=f"one of {', '.join(CELLS)} (default: the task's, lstm except gru "
                   "for copy)")
    t.add_argument("--hidden", type=_positive_int, help="hidden units per layer")
    t.add_argument("--layers", type=_positive_int, help="stacked recurrent layers")
    t.add_argument("--bptt", type=_nonneg_int, help="truncated BPTT window k (0 = full BPTT)")
    t.add_argument("--clip", type=_nonneg_float, help="max global gradient norm (0 = no clipping)")
    t.add_argument("--lr", type=_positive_float, help="learning rate")
    t.add_argument("--optimizer", choices=["adam", "sgd", "rmsprop"], help="default adam")
    t.add_argument("--schedule", choices=["constant", "cosine"], help="learning-rate schedule")
    t.add_argument("--steps", type=_positive_int, help="optimiser steps (total, also when resuming)")
    t.add_argument("--batch", type=_positive_int, help="sequences per batch")
    t.add_argument("--seq-len", "--T", dest="seq_len", type=_positive_int,
                   help="sequence length T (adding/classify/forecast/charlm), delay (copy), digits (seq2seq)")
    t.add_argument("--seed", type=_nonneg_int, help="seed of data and weights (default 0)")
    t.add_argument("--dtype", help="float32 | float64 (default float32)")
    t.add_argument("--out", "-o", required=True, help="output directory")
    t.add_argument("--checkpoint-every", type=_nonneg_int, default=0,
                   help="also save every N steps (default 0: not by steps)")
    t.add_argument("--checkpoint-minutes", type=_nonneg_float, default=None,
                   help="also save when this many minutes passed since the last save (default 10; 0: no)")
    t.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.safetensors")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    t.add_argument("--quiet", action="store_true", help="no progress output")


def _add_sample_evaluate(sub: Any) -> None:
    for name, helptext in (("sample", "generate from a trained model (text for charlm, predictions "
                                      "otherwise)"),
                           ("evaluate", "metric vs baseline on the held-out split")):
        s = sub.add_parser(name, help=helptext, description=helptext)
        s.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
        s.add_argument("--seed", type=_nonneg_int, default=0, help="sampling seed")
        if name == "sample":
            s.add_argument("--length", type=_nonneg_int, default=300, help="characters to generate (charlm)")
            s.add_argument("--temperature", type=_positive_float, default=0.8, help="softmax temperature")
            s.add_argument("--prime", default="Ham.\n", help="priming string (charlm)")
        else:
            s.add_argument("--json", action="store_true", help="print the result as JSON")


#: options of ``draw`` that describe a fresh layer (with ``--cell``), and their defaults
FRESH = {"hidden": 3, "input": 2, "batch": 1, "layers": 1, "seed": 0}
FORMATS = ("svg", "png", "pdf", "dot")
SHOW = ("shape", "value", "grad", "dtype")


def _add_draw(sub: Any) -> None:
    d = sub.add_parser(
        "draw", help="draw a model unrolled over k steps (Graphviz, via viz)",
        description="Draw the unrolled computation graph of a trained model (--checkpoint: run it on one "
        "held-out example of its task, backpropagate the loss, colour by gradient magnitude) or of a "
        "fresh recurrent layer of any registered cell (--cell: input (T, batch, input) drawn from "
        "N(0, 1), loss = sum of squares of the last output).",
        epilog="Examples: python -m rnn draw --cell lstm --steps 4 --view expanded --grads -o lstm.svg | "
        "python -m rnn draw --cell gru --rolled -o gru.png | python -m rnn draw --cell rnn  (prints DOT) | "
        "python -m rnn draw --checkpoint runs/adding --steps 5 -o adding.svg")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint file or run directory of a trained model")
    src.add_argument("--cell", help=f"draw a fresh layer of this cell: one of {', '.join(CELLS)}")
    d.add_argument("--steps", type=_between(1, 10_000), default=4, help="time steps to unroll (default 4)")
    d.add_argument("--view", choices=("collapsed", "expanded"), default=None,
                   help="collapsed: one box per time step; expanded: every op (gate) inside a cluster per "
                        "step (default collapsed)")
    d.add_argument("--grads", action="store_true",
                   help="run loss.backward() first and show gradient norms, colouring boxes by ||grad|| on "
                        "a log scale (always on with --checkpoint)")
    d.add_argument("--rolled", action="store_true",
                   help="draw the rolled (folded) cell with its feedback loop instead of the unrolled graph")
    d.add_argument("-o", "--out", "--output", dest="out",
                   help="file to write (.svg, .png, .pdf or .dot); default: <run>/unrolled.svg with "
                        "--checkpoint, the DOT source on stdout with --cell")
    d.add_argument("--format", choices=FORMATS, help="output format (default: from the file name)")
    d.add_argument("--hidden", type=_between(1, 64), help=f"hidden size (--cell; default {FRESH['hidden']})")
    d.add_argument("--input", type=_between(1, 64), help=f"input size (--cell; default {FRESH['input']})")
    d.add_argument("--batch", type=_between(1, 64), help=f"batch size (--cell; default {FRESH['batch']})")
    d.add_argument("--layers", type=_between(1, 8),
                   help=f"stacked layers (--cell; default {FRESH['layers']})")
    d.add_argument("--bidirectional", action="store_true", help="add a reverse direction per layer (--cell)")
    d.add_argument("--seed", type=_nonneg_int, help="seed of weights and input (--cell; default 0)")
    d.add_argument("--max-steps", type=_between(2, 100_000),
                   help="draw at most this many steps per sequence (first and last kept, the middle elided "
                        "into one '... n steps ...' box)")
    d.add_argument("--show", default="shape,value,grad",
                   help=f"comma-separated label contents from {','.join(SHOW)} (default shape,value,grad)")
    d.add_argument("--rankdir", choices=("LR", "TB", "RL", "BT"),
                   help="layout direction (default LR, TB for the expanded view)")
    d.add_argument("--title", help="title above the drawing (default: a description)")
    d.add_argument("--timeout", type=_positive_float, default=60.0,
                   help="seconds to let Graphviz dot run (default 60)")


def _add_experiment_demo(sub: Any) -> None:
    e = sub.add_parser("experiment", help="experiments (vanishing)", description="Run an experiment.")
    e.add_argument("name", choices=["vanishing"], help="vanishing: dL/dh_t norms and MSE of every cell "
                   "on adding at several T")
    e.add_argument("--cells", type=_cell_list, default=None,
                   help=f"comma-separated from {','.join(CELLS)} (default: all of them)")
    e.add_argument("--T", dest="lengths", type=_int_list, default=[10, 50, 100, 200],
                   help="comma-separated sequence lengths (default 10,50,100,200)")
    e.add_argument("--steps", type=_nonneg_int, default=300, help="training steps per run (0: no training)")
    e.add_argument("--hidden", type=_positive_int, default=64)
    e.add_argument("--batch", type=_positive_int, default=50)
    e.add_argument("--lr", type=_positive_float, default=1e-2)
    e.add_argument("--seed", type=_nonneg_int, default=0)
    e.add_argument("--out", "-o", required=True, help="output directory")
    e.add_argument("--quiet", action="store_true")

    m = sub.add_parser("demo", help="the main job: train an LSTM on adding, evaluate, sample, draw",
                       description="Train an LSTM on the adding task (T=50), print test MSE vs the "
                       "constant baseline and a few predictions, save the checkpoint, draw the "
                       "unrolled graph as SVG.")
    m.add_argument("--out", "-o", default="runs/main", help="output directory (default runs/main)")
    m.add_argument("--steps", type=_positive_int, default=None, help="training steps (default tuned)")
    m.add_argument("--seed", type=_nonneg_int, default=0)
    m.add_argument("--quiet", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    tasks = ", ".join(f"{k} ({v.summary})" for k, v in TASKS.items() if k != "memory")
    p = Parser(
        prog="python -m rnn",
        description="Train, sample, evaluate and draw recurrent models (minigrad) on bundled tasks.",
        epilog=f"tasks: {tasks}. cells: {', '.join(CELLS)}. Options left out take the task's tuned default. "
        "Exit status: 0 ok, 2 bad input, 1 failed at run time, 130 interrupted; --debug shows tracebacks.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)
    _add_sample_evaluate(sub)
    _add_draw(sub)
    _add_experiment_demo(sub)
    return p


# ----------------------------------------------------------------------------------------- commands
def _out_dir_for_new_run(out: str, overwrite: bool) -> Path:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise CLIError(f"--out {out} exists and is not a directory")
    from .tasks.checkpoint import LEGACY
    from .tasks.trainer import CHECKPOINT

    for name in (CHECKPOINT, LEGACY):
        if (path / name).exists() and not overwrite:
            raise CLIError(f"--out {out} already holds a run ({name}); pass --resume to continue it or "
                           "--overwrite to start again")
    return path


def _config_from_args(a: argparse.Namespace) -> Any:
    from .tasks.trainer import TrainConfig, check_memory

    cfg = TrainConfig(task="adding" if a.task is None else a.task, cell=a.cell, hidden=a.hidden,
                      layers=a.layers, bptt=a.bptt,
                      clip=a.clip, lr=a.lr, steps=a.steps, batch=a.batch, seq_len=a.seq_len,
                      seed=0 if a.seed is None else a.seed, optimizer=a.optimizer or "adam",
                      schedule=a.schedule, dtype="float32" if a.dtype is None else a.dtype,
                      checkpoint_every=a.checkpoint_every)
    if a.checkpoint_minutes is not None:
        cfg.checkpoint_minutes = a.checkpoint_minutes
    try:
        check_memory(cfg.resolved())  # validation only
    except (ValueError, MemoryError) as exc:
        raise CLIError(str(exc)) from None
    return cfg


def _print_result(task: Any, result: dict[str, float], out: Any = None) -> None:
    out = out or sys.stdout
    better = "higher" if task.higher_is_better else "lower"
    verdict = "beats" if task.beats_baseline(result) else "does NOT beat"
    print(f"{task.name}: {task.metric} = {result['metric']:.4f}  (baseline {result['baseline']:.4f}, "
          f"{better} is better: {verdict} the baseline)", file=out)
    extras = {k: v for k, v in result.items() if k not in ("metric", "baseline")}
    if extras:
        print("  " + ", ".join(f"{k} = {v:.4g}" for k, v in extras.items()), file=out)


RUN_SETTINGS = ("task", "cell", "hidden", "layers", "bptt", "clip", "lr", "optimizer", "schedule", "batch",
                "seq_len", "seed", "dtype")


def cmd_train(a: argparse.Namespace) -> int:
    from .tasks.trainer import CHECKPOINT, CheckpointInvalid, TrainConfig, TrainingInterrupted, train

    if a.resume:
        fixed = [f"--{k.replace('_', '-')}" for k in RUN_SETTINGS if getattr(a, k) is not None]
        if fixed or a.overwrite:
            raise CLIError(f"--resume continues with the settings saved in the checkpoint; it cannot be "
                           f"combined with {', '.join(fixed or ['--overwrite'])} (only --steps, "
                           "--checkpoint-every and --quiet)")
        ck = Path(a.out) / CHECKPOINT
        if not Path(a.out).is_dir():
            raise CLIError(f"--resume: no checkpoint at {ck}")
        _load_checked(a.out)
        cfg = TrainConfig(steps=a.steps, checkpoint_every=a.checkpoint_every)
        if a.checkpoint_minutes is not None:
            cfg.checkpoint_minutes = a.checkpoint_minutes
    else:
        cfg = _config_from_args(a)
        _out_dir_for_new_run(a.out, a.overwrite)
    try:
        res = train(cfg, a.out, resume=a.resume, quiet=a.quiet)
    except CheckpointInvalid as exc:
        raise CLIError(str(exc)) from None
    except TrainingInterrupted as exc:
        print(f"\n{exc}; continue with: python -m rnn train --resume --out {a.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not a.quiet:
        print(f"trained {res.config.cell.upper()} on {res.config.task} for {res.config.steps} steps in "
              f"{res.seconds:.1f}s ({res.steps_per_second:.1f} steps/s); checkpoint in {a.out}")
    _print_result(res.task, res.result)
    return 0


def _load_checked(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``, or ``CLIError`` (missing, not a checkpoint, an older format)."""
    from .tasks.trainer import load_checkpoint

    try:
        return load_checkpoint(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None


def _load(path: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    from .tasks.trainer import restore

    ckpt = _load_checked(path)
    try:
        cfg, task, model, _ = restore(ckpt)
    except ValueError as exc:  # CheckpointInvalid: the weights do not fit the model
        raise CLIError(str(exc)) from None
    model.eval()
    return cfg, task, model, ckpt


def cmd_sample(a: argparse.Namespace) -> int:
    cfg, task, model, _ = _load(a.checkpoint)
    rng = np.random.default_rng(a.seed)
    if cfg.task == "charlm":
        try:
            print(task.sample(model, a.length, prime=a.prime, temperature=a.temperature, rng=rng))
        except ValueError as exc:
            raise CLIError(str(exc)) from None
    else:
        print(task.showcase(model, rng))
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    cfg, task, model, ckpt = _load(a.checkpoint)
    result = task.evaluate(model)
    if a.json:
        print(json.dumps({"task": cfg.task, "cell": cfg.cell, "step": ckpt["step"],
                          "metric_name": task.metric, **result}))
    else:
        print(f"checkpoint at step {ckpt['step']} ({cfg.cell.upper()}, hidden {cfg.hidden})")
        _print_result(task, result)
    return 0


def checkpoint_graph(cfg: Any, model: Any, steps: int, **draw_kw: Any) -> Any:
    """Run the trained ``model`` on one held-out example of ``steps`` steps, backpropagate its loss and
    draw the unrolled graph (``viz.draw``, coloured by gradient magnitude; ``draw_kw`` go to it)."""
    import viz

    from .tasks import get_task

    seq = cfg.seq_len if cfg.task == "seq2seq" else max(steps, TASKS[cfg.task].min_seq_len)
    task = get_task(cfg.task, seq_len=seq, seed=cfg.seed, dtype=cfg.dtype)
    model.zero_grad()
    loss = task.loss(model, task.batch(0, 1, "test"))
    viz.retain_grads(loss)
    loss.backward()
    if draw_kw.get("title") is None:
        draw_kw["title"] = (f"{cfg.cell.upper()} on {cfg.task}, unrolled over {seq} steps "
                            f"(loss {float(loss.item()):.4f})")
    return viz.draw(loss, params=model, **draw_kw)


def draw_model(cfg: Any, model: Any, steps: int, path: Path, view: str = "collapsed") -> Path:
    """``checkpoint_graph`` rendered to ``path``."""
    import viz

    return viz.render(checkpoint_graph(cfg, model, steps, view=view), path)


def fresh_graph(a: argparse.Namespace) -> Any:
    """A fresh layer of cell ``a.cell`` (``rnn.make_rnn``) over an input drawn from N(0, 1), with
    loss = sum of squares of the last output (backpropagated with ``a.grads``), drawn by viz."""
    import minigrad as mg
    import viz

    from .models import make_rnn

    expanded = a.view == "expanded"
    mg.manual_seed(a.seed)
    layer = make_rnn(a.cell, a.input, a.hidden, a.layers, a.bidirectional, batch_first=False)
    if a.rolled:
        return viz.draw_rolled(layer, rankdir=a.rankdir or "LR", title=a.title)
    out, _ = layer(mg.randn(a.steps, a.batch, a.input))
    loss = (out[-1] ** 2).sum()
    if a.grads:
        viz.retain_grads(loss)
        loss.backward()
    title = a.title
    if title is None:
        title = (f"{layer.scope_name}(input {a.input}, hidden {a.hidden}"
                 + (f", {a.layers} layers" if a.layers > 1 else "")
                 + (", bidirectional" if a.bidirectional else "")
                 + f") unrolled over {a.steps} steps" + (", gradients of loss = Σ h_T²" if a.grads else ""))
    return viz.draw(loss, view=a.view, show=a.show, max_steps=a.max_steps, title=title,
                    rankdir=a.rankdir or ("TB" if expanded else "LR"))


def _check_draw_args(a: argparse.Namespace) -> str | None:
    """Raise ``CLIError`` for options that do not fit together; fill the defaults; returns the output
    format (None: print the DOT source)."""
    if a.checkpoint is not None:
        given = [f"--{k}" for k in FRESH if getattr(a, k) is not None] + (["--bidirectional"]
                                                                          if a.bidirectional else [])
        if given:
            raise CLIError(f"{', '.join(given)} describe a fresh layer (--cell); a --checkpoint brings its "
                           "own model")
    elif a.cell not in CELLS:
        raise CLIError(f"unknown cell {a.cell!r}; choose one of {', '.join(CELLS)}")
    for k, v in FRESH.items():
        setattr(a, k, v if getattr(a, k) is None else getattr(a, k))
    if a.rolled and (a.view is not None or a.grads or a.max_steps is not None):
        raise CLIError("--rolled draws the folded cell; it takes no --view, --grads or --max-steps")
    a.view = a.view or "collapsed"
    a.show = tuple(v.strip() for v in a.show.split(",") if v.strip())
    bad = sorted(set(a.show) - set(SHOW))
    if bad:
        raise CLIError(f"--show: unknown {', '.join(bad)} (choose from {','.join(SHOW)})")
    if a.out is None:
        if a.checkpoint is None:
            if a.format not in (None, "dot"):
                raise CLIError(f"--format {a.format} needs -o FILE (without it the DOT source is printed)")
            return None
        ck = Path(a.checkpoint)
        a.out = str((ck if ck.is_dir() else ck.parent) / "unrolled.svg")
    if Path(a.out).exists() and not Path(a.out).is_file():
        raise CLIError(f"-o {a.out} exists and is not a regular file (the picture replaces it atomically)")
    ext = Path(a.out).suffix.lstrip(".").lower()
    ext = "dot" if ext == "gv" else ext
    if a.format is None and ext not in FORMATS:
        raise CLIError(f"cannot tell the format from {a.out!r}: use a .svg, .png, .pdf or .dot file name "
                       "or pass --format")
    if a.format is not None and ext in FORMATS and ext != a.format:
        raise CLIError(f"--format {a.format} does not match the file name {a.out!r}")
    return a.format or ext


def cmd_draw(a: argparse.Namespace) -> int:
    import viz

    fmt = _check_draw_args(a)
    try:
        if a.checkpoint is not None:
            cfg, _, model, _ = _load(a.checkpoint)
            graph = (viz.draw_rolled(model, rankdir=a.rankdir or "LR", title=a.title) if a.rolled else
                     checkpoint_graph(cfg, model, a.steps, view=a.view, show=a.show, max_steps=a.max_steps,
                                      rankdir=a.rankdir or ("TB" if a.view == "expanded" else "LR"),
                                      title=a.title))
        else:
            graph = fresh_graph(a)
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None
    if fmt is None:
        sys.stdout.write(graph.source)
        return 0
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = viz.render(graph, out, fmt, timeout=a.timeout)  # a RenderError: exit status 1
    print(f"wrote {path}")
    return 0


def cmd_experiment(a: argparse.Namespace) -> int:
    from .experiments import vanishing

    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {a.out} exists and is not a directory")
    res = vanishing(out, cells=a.cells, lengths=a.lengths, steps=a.steps, hidden=a.hidden, batch=a.batch,
                    lr=a.lr, seed=a.seed, quiet=a.quiet)
    print(res["table"])
    print(f"wrote {', '.join(str(p) for p in res['files'])}")
    return 0


DEMO_T = 50
DEMO_STEPS = 1000


def cmd_demo(a: argparse.Namespace) -> int:
    """The main job, end to end, in about a minute on 2 cores."""
    from .tasks.trainer import CHECKPOINT, TrainConfig, TrainingInterrupted, train

    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {a.out} exists and is not a directory")
    t0 = time.perf_counter()
    cfg = TrainConfig(task="adding", cell="lstm", seq_len=DEMO_T, steps=a.steps or DEMO_STEPS, seed=a.seed,
                      checkpoint_every=100)
    say = (lambda *s: None) if a.quiet else print
    say(f"== minigrad demo: an LSTM learns the adding problem (T={DEMO_T}) by BPTT through the unrolled "
        f"graph\n   {cfg.steps} Adam steps of 50 sequences; the constant predictor scores MSE ~0.167")
    try:
        res = train(cfg, out, quiet=a.quiet, resume=False)
    except TrainingInterrupted as exc:
        print(f"\n{exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    _print_result(res.task, res.result)
    print(res.task.showcase(res.model, np.random.default_rng(a.seed)))
    svg = draw_model(res.config, res.model, 6, out / "unrolled.svg")
    print(f"checkpoint: {out / CHECKPOINT}\nunrolled graph (6 steps, coloured by |dL/dx|): {svg}")
    print(f"demo finished in {time.perf_counter() - t0:.1f}s")
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate, "draw": cmd_draw,
            "experiment": cmd_experiment, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m rnn``; returns the exit status (0 ok, 2 bad input, 1 failed at run
    time, 130 Ctrl-C). Every failure is one ``error:`` line on stderr; ``--debug`` re-raises instead."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [x for x in args if x != "--debug"]
    parser = build_parser()
    a = parser.parse_args(args)
    if a.command is None:
        parser.print_help()
        return EXIT_ERROR
    limit_blas_threads(1)
    try:
        return COMMANDS[a.command](a)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            raise
        status, msg = describe_failure(exc)
        print(f"error: {msg}", file=sys.stderr)
        return status


def describe_failure(exc: BaseException) -> tuple[int, str]:
    """The exit status and the one-line message of a failed command."""
    from .tasks.rundir import RunDirBusy

    one_line = " ".join(str(exc).split())
    if isinstance(exc, CLIError):
        return EXIT_ERROR, one_line
    if isinstance(exc, RunDirBusy):
        return EXIT_RUNTIME, one_line
    if isinstance(exc, MemoryError):
        return EXIT_RUNTIME, f"out of memory ({one_line or 'MemoryError'}); try a smaller --batch or --hidden"
    if isinstance(exc, FloatingPointError):
        return EXIT_RUNTIME, one_line
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return EXIT_RUNTIME, f"{where}{exc.strerror}"
    import viz

    if isinstance(exc, viz.RenderError):
        return EXIT_RUNTIME, one_line
    return EXIT_RUNTIME, (f"{type(exc).__name__}: {one_line[:500]} (an internal error: run again with "
                          "--debug for the traceback)")
