"""``python -m viz``: draw a small recurrent model unrolled over a few steps (after one backward pass).

    python -m viz lstm --steps 4 --view expanded --grads -o lstm.svg
    python -m viz gru --rolled -o gru_rolled.png
    python -m viz rnn --steps 3                      # no -o: print the DOT source

The model comes from the ``rnn`` package, imported lazily here (viz itself never imports rnn). The
expanded view builds the model with ``fused=False`` so every gate is its own op node; the collapsed
view uses the default (fused) cell, which it draws as one box per step anyway.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .render import DEFAULT_TIMEOUT, FORMATS, RenderError, render

MODELS = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}


def _positive(name: str, lo: int = 1, hi: int = 100_000) -> Any:
    def conv(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{name} must be between {lo} and {hi}, got {v}")
        return v
    return conv


def _timeout(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"timeout must be a number of seconds, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"timeout must be positive, got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m viz",
        description="Draw a small RNN/GRU/LSTM unrolled over a few time steps (minigrad's real graph, "
                    "after one backward pass), or its rolled (folded) diagram, with Graphviz.",
        epilog="Examples: python -m viz lstm --steps 4 --view expanded --grads -o lstm.svg | "
               "python -m viz gru --rolled -o gru.png | python -m viz rnn  (prints DOT).")
    p.add_argument("model", choices=sorted(MODELS), help="which recurrent layer to draw")
    p.add_argument("--steps", type=_positive("--steps", 1, 10_000), default=4,
                   help="sequence length T to unroll (default 4)")
    p.add_argument("--view", choices=("collapsed", "expanded"), default="collapsed",
                   help="collapsed: one box per time step; expanded: every op (gate) inside a cluster "
                        "per step (default collapsed)")
    p.add_argument("--grads", action="store_true",
                   help="run loss.backward() first (loss = sum of squares of the last output) and show "
                        "gradient norms, colouring boxes by ||grad|| on a log scale")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="file to write (.svg, .png, .pdf or .dot); without it the DOT source is printed")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="output format (default: from the extension of -o; without -o the DOT source)")
    p.add_argument("--hidden", type=_positive("--hidden", 1, 64), default=3, help="hidden size (default 3)")
    p.add_argument("--input", type=_positive("--input", 1, 64), default=2, help="input size (default 2)")
    p.add_argument("--batch", type=_positive("--batch", 1, 64), default=1, help="batch size (default 1)")
    p.add_argument("--layers", type=_positive("--layers", 1, 8), default=1,
                   help="number of stacked layers (default 1)")
    p.add_argument("--bidirectional", action="store_true", help="add a reverse direction per layer")
    p.add_argument("--rolled", action="store_true",
                   help="draw the rolled (folded) cell with its feedback loop instead of the unrolled graph")
    p.add_argument("--max-steps", type=_positive("--max-steps", 2, 100_000), default=None,
                   help="draw at most this many steps per sequence (first and last kept, the middle "
                        "elided into one '... n steps ...' box)")
    p.add_argument("--show", default="shape,value,grad",
                   help="comma-separated label contents from shape,value,grad,dtype "
                        "(default shape,value,grad)")
    p.add_argument("--rankdir", choices=("LR", "TB", "RL", "BT"), default=None,
                   help="layout direction (default LR, TB for the expanded view)")
    p.add_argument("--seed", type=int, default=0, help="random seed of weights and input (default 0)")
    p.add_argument("--title", default=None, help="title above the drawing (default: a description)")
    p.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT,
                   help=f"seconds to let Graphviz dot run (default {DEFAULT_TIMEOUT:g})")
    return p


def _output_format(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    if args.output is None:
        return args.format or "dot"
    ext = args.output.suffix.lstrip(".").lower()
    ext = "dot" if ext == "gv" else ext
    if args.format is None:
        if ext not in FORMATS:
            parser.error(f"cannot tell the format from {str(args.output)!r}: use a .svg/.png/.pdf/.dot "
                         f"file name or pass --format")
        return ext
    if ext and ext in FORMATS and ext != args.format:
        parser.error(f"--format {args.format} does not match the file name {str(args.output)!r}")
    return args.format


def build_graph(args: argparse.Namespace) -> Any:
    """The model, one forward (and backward with --grads) pass, and the drawing."""
    import minigrad as mg

    from . import draw, draw_rolled, retain_grads
    try:
        import rnn  # lazy: viz does not depend on rnn, only this command does
    except ImportError as exc:  # pragma: no cover
        raise SystemExit(f"python -m viz: the rnn package is needed to build the models ({exc})") from None
    cls = getattr(rnn, MODELS[args.model])
    kwargs: dict[str, Any] = dict(num_layers=args.layers, bidirectional=args.bidirectional)
    if args.view == "expanded":
        kwargs["fused"] = False  # one node per gate op; a fused cell step is a single op node
    mg.manual_seed(args.seed)
    model = cls(args.input, args.hidden, **kwargs)
    kind = MODELS[args.model]
    if args.rolled:
        return draw_rolled(model, rankdir=args.rankdir or "LR", title=args.title)
    x = mg.randn(args.steps, args.batch, args.input)
    out, _ = model(x)
    loss = (out[-1] ** 2).sum()
    if args.grads:
        retain_grads(loss)
        loss.backward()
    show = tuple(s.strip() for s in args.show.split(",") if s.strip())
    title = args.title
    if title is None:
        title = (f"{kind}(input {args.input}, hidden {args.hidden}"
                 + (f", {args.layers} layers" if args.layers > 1 else "")
                 + (", bidirectional" if args.bidirectional else "")
                 + f") unrolled over {args.steps} steps"
                 + (", gradients of loss = Σ h_T²" if args.grads else ""))
    return draw(loss, view=args.view, show=show, max_steps=args.max_steps,
                rankdir=args.rankdir or ("TB" if args.view == "expanded" else "LR"), title=title)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    fmt = _output_format(args, parser)
    if args.output is not None and not args.output.absolute().parent.is_dir():
        parser.error(f"the directory of {str(args.output)!r} does not exist")
    bad = {s.strip() for s in args.show.split(",") if s.strip()} - {"shape", "value", "grad", "dtype"}
    if bad:
        parser.error(f"--show: unknown {', '.join(sorted(bad))} (choose from shape,value,grad,dtype)")
    if args.rolled and (args.view != "collapsed" or args.grads or args.max_steps):
        parser.error("--rolled draws the folded cell; it takes no --view, --grads or --max-steps")
    graph = build_graph(args)
    if args.output is None:
        sys.stdout.write(graph.source)
        return 0
    try:
        path = render(graph, args.output, fmt, timeout=args.timeout)
    except RenderError as exc:
        print(f"python -m viz: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}", file=sys.stderr)
    return 0
