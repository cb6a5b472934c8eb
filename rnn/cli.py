"""``python -m rnn``: train, sample, evaluate and draw recurrent models on the bundled tasks.

    python -m rnn train --task adding --cell lstm --out runs/adding        # tuned defaults per task
    python -m rnn evaluate --checkpoint runs/adding
    python -m rnn sample --checkpoint runs/charlm --prime "Ham." --temperature 0.7
    python -m rnn draw --checkpoint runs/adding --steps 4 --out adding.svg
    python -m rnn experiment vanishing --out runs/vanishing
    python -m rnn demo --out runs/main

Every argument is checked before anything is written: a bad one prints ``error: ...`` and exits with
status 2, leaving no output directory behind. Ctrl-C during training saves a checkpoint, exits with 130,
and ``train --resume --out DIR`` continues exactly where it stopped.
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

from .tasks import TASKS
from .tasks._threads import limit_blas_threads
from .tasks.base import CELLS

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A bad argument or missing file: printed as ``error: ...``, exit status 2."""


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


def _nonneg_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {s!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {s}")
    return v


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
def build_parser() -> argparse.ArgumentParser:
    tasks = ", ".join(f"{k} ({v.summary})" for k, v in TASKS.items() if k != "memory")
    p = argparse.ArgumentParser(
        prog="python -m rnn",
        description="Train, sample, evaluate and draw RNN/GRU/LSTM models (minigrad) on bundled tasks.",
        epilog=f"tasks: {tasks}. Options left out take the task's tuned default.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a model on a task", description="Train a model on a bundled "
                       "task; writes checkpoint.mg, losses.tsv and results.json into --out.")
    t.add_argument("--task", help=f"one of {', '.join(TASKS)} (default adding)")
    t.add_argument("--cell", help="rnn | gru | lstm (default: the task's, lstm except gru for copy)")
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
    t.add_argument("--checkpoint-every", type=_nonneg_int, default=0, help="save every N steps (0: at end)")
    t.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.mg")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    t.add_argument("--quiet", action="store_true", help="no progress output")

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

    d = sub.add_parser("draw", help="SVG of the trained model unrolled over k steps (via viz)",
                       description="Run the trained model on one held-out example of k steps, "
                       "backpropagate, and draw the unrolled graph coloured by gradient magnitude.")
    d.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    d.add_argument("--steps", type=_positive_int, default=4, help="time steps to unroll (default 4)")
    d.add_argument("--out", "-o", help="output file (.svg, .png, .pdf or .dot; default <run>/unrolled.svg)")
    d.add_argument("--view", default="collapsed", choices=["collapsed", "expanded"])

    e = sub.add_parser("experiment", help="experiments (vanishing)", description="Run an experiment.")
    e.add_argument("name", choices=["vanishing"], help="vanishing: dL/dh_t norms and MSE of RNN/GRU/LSTM "
                   "on adding at several T")
    e.add_argument("--cells", type=_cell_list, default=list(CELLS), help="comma-separated (default all)")
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
    return p


# ----------------------------------------------------------------------------------------- commands
def _out_dir_for_new_run(out: str, overwrite: bool) -> Path:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise CLIError(f"--out {out} exists and is not a directory")
    from .tasks.trainer import CHECKPOINT

    if (path / CHECKPOINT).exists() and not overwrite:
        raise CLIError(f"--out {out} already holds a run ({CHECKPOINT}); pass --resume to continue it or "
                       "--overwrite to start again")
    return path


def _config_from_args(a: argparse.Namespace) -> Any:
    from .tasks.trainer import TrainConfig

    cfg = TrainConfig(task=a.task or "adding", cell=a.cell, hidden=a.hidden, layers=a.layers, bptt=a.bptt,
                      clip=a.clip, lr=a.lr, steps=a.steps, batch=a.batch, seq_len=a.seq_len,
                      seed=0 if a.seed is None else a.seed, optimizer=a.optimizer or "adam",
                      schedule=a.schedule, dtype=a.dtype or "float32", checkpoint_every=a.checkpoint_every)
    try:
        cfg.resolved()  # validation only
    except ValueError as exc:
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
    from .tasks.trainer import CHECKPOINT, TrainConfig, TrainingInterrupted, train

    if a.resume:
        fixed = [f"--{k.replace('_', '-')}" for k in RUN_SETTINGS if getattr(a, k) is not None]
        if fixed or a.overwrite:
            raise CLIError(f"--resume continues with the settings saved in the checkpoint; it cannot be "
                           f"combined with {', '.join(fixed or ['--overwrite'])} (only --steps, "
                           "--checkpoint-every and --quiet)")
        ck = Path(a.out) / CHECKPOINT
        if not ck.is_file():
            raise CLIError(f"--resume: no checkpoint at {ck}")
        cfg = TrainConfig(steps=a.steps, checkpoint_every=a.checkpoint_every)
    else:
        cfg = _config_from_args(a)
        _out_dir_for_new_run(a.out, a.overwrite)
    try:
        res = train(cfg, a.out, resume=a.resume, quiet=a.quiet)
    except TrainingInterrupted as exc:
        print(f"\n{exc}; continue with: python -m rnn train --resume --out {a.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not a.quiet:
        print(f"trained {res.config.cell.upper()} on {res.config.task} for {res.config.steps} steps in "
              f"{res.seconds:.1f}s ({res.steps_per_second:.1f} steps/s); checkpoint in {a.out}")
    _print_result(res.task, res.result)
    return 0


def _load(path: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    from .tasks.trainer import load_checkpoint, restore

    try:
        ckpt = load_checkpoint(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    cfg, task, model, _ = restore(ckpt)
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


def draw_model(cfg: Any, model: Any, steps: int, path: Path, view: str = "collapsed") -> Path:
    """Run ``model`` on one held-out example of ``steps`` steps, backpropagate its loss, and render the
    unrolled graph (``viz.draw``, coloured by gradient magnitude) to ``path``."""
    import viz

    from .tasks import get_task

    seq = cfg.seq_len if cfg.task == "seq2seq" else max(steps, TASKS[cfg.task].min_seq_len)
    task = get_task(cfg.task, seq_len=seq, seed=cfg.seed, dtype=cfg.dtype)
    batch = task.batch(0, 1, "test")
    model.zero_grad()
    loss = task.loss(model, batch)
    viz.retain_grads(loss)
    loss.backward()
    graph = viz.draw(loss, params=model, view=view,
                     title=f"{cfg.cell.upper()} on {cfg.task}, unrolled over {seq} steps "
                           f"(loss {float(loss.item()):.4f})")
    return viz.render(graph, path)


def cmd_draw(a: argparse.Namespace) -> int:
    out = Path(a.out) if a.out else None
    if out is not None and out.suffix.lower() not in (".svg", ".png", ".pdf", ".dot", ".gv"):
        raise CLIError(f"--out {a.out}: the file name must end in .svg, .png, .pdf or .dot")
    cfg, _, model, _ = _load(a.checkpoint)
    if out is None:
        ck = Path(a.checkpoint)
        out = (ck if ck.is_dir() else ck.parent) / "unrolled.svg"
    import viz

    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        path = draw_model(cfg, model, a.steps, out, a.view)
    except viz.RenderError as exc:
        raise CLIError(str(exc)) from None
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
    """Entry point of ``python -m rnn``; returns the exit status (0 ok, 2 bad arguments, 130 Ctrl-C)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.command is None:
        parser.print_help()
        return EXIT_ERROR
    limit_blas_threads(1)
    try:
        return COMMANDS[a.command](a)
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
