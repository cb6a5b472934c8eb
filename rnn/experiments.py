"""Experiments that tell the seeds' story with measurements. ``vanishing``: why LSTM and GRU exist.

For each cell (by default every registered one, ``rnn.CELLS``: the tanh RNN, GRU, LSTM and any cell
added with ``rnn.register_cell``) and each sequence length T of the ``adding`` task:

1. at initialisation (and again after training), the norm of dL/dh_t at every step t
   (``rnn.diagnostics.hidden_grad_norms``), relative to the last step:
   ``r_t = ||dL/dh_t|| / ||dL/dh_T||``. BPTT multiplies the gradient by the Jacobian ``dh_{t+1}/dh_t``
   once per step back, so ``r_1`` shrinks geometrically with T when those Jacobians are contractive
   (vanishing) and grows when they are expansive (exploding);
2. the test MSE after a fixed training budget (same steps, batch and learning rate for all), against the
   constant predictor's ~0.167.

Writes into the output directory: ``vanishing.md`` (the table), ``vanishing.json`` (all numbers),
``grad_norms.png`` and ``grad_norms.svg`` (r_t against t, log scale, one line per cell, one panel per T,
solid at initialisation and dashed after training; drawn with matplotlib, the ``plot`` extra:
``pip install 'minigrad[plot]'``) and ``unrolled_<cell>.svg`` (the unrolled graph at initialisation
coloured by gradient magnitude, via ``viz``). A progress bar over the runs is drawn on a terminal.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minigrad.nn import functional as F

from .cells import CELLS
from .tasks import get_task

COLORS = {"rnn": "#d62728", "gru": "#2ca02c", "lstm": "#1f77b4"}
#: colours of the other cells, in registration order
PALETTE = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e")
LABELS = {"rnn": "tanh RNN", "gru": "GRU", "lstm": "LSTM"}


def label(cell: str) -> str:
    """How tables and plots name a cell: "tanh RNN", "GRU", "LSTM", else the registered name."""
    return LABELS.get(cell, cell)


def color(cell: str) -> str:
    others = [c for c in CELLS if c not in COLORS]
    if cell in COLORS:
        return COLORS[cell]
    return PALETTE[others.index(cell) % len(PALETTE)] if cell in others else "#000000"


def grad_norms(model: Any, T: int, batch: int = 50, seed: int = 0) -> np.ndarray:
    """||dL/dh_t|| (t = 1..T) of ``model`` on a held-out adding batch of length ``T``."""
    from .diagnostics import hidden_grad_norms

    task = get_task("adding", seq_len=T, seed=seed, dtype=next(iter(model.parameters())).dtype)
    b = task.batch(0, batch, "test")
    return hidden_grad_norms(model, b["x"], lambda y: F.mse_loss(y, b["y"]))


def grad_norms_at_init(cell: str, T: int, hidden: int = 64, batch: int = 50, seed: int = 0) -> np.ndarray:
    """||dL/dh_t|| (t = 1..T) of a freshly initialised model on a held-out adding batch."""
    return grad_norms(get_task("adding", seq_len=T, seed=seed).build_model(cell, hidden), T, batch, seed)


def _ratio(norms: np.ndarray) -> float:
    return float(norms[0] / norms[-1]) if norms[-1] > 0 else float("nan")


def _fmt(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return str(x)
    return f"{x:.2e}" if (abs(x) < 1e-2 or abs(x) >= 1e3) else f"{x:.3f}"


def table(rows: list[dict[str, Any]], steps: int) -> str:
    """The markdown table of a ``vanishing`` run."""
    head = ("| cell | T | ‖dL/dh₁‖ / ‖dL/dh_T‖ at init | after training | test MSE after "
            f"{steps} steps | constant baseline |\n|---|---|---|---|---|---|\n")
    body = "".join(f"| {label(r['cell'])} | {r['T']} | {_fmt(r['ratio'])} | "
                   f"{_fmt(r['ratio_trained']) if r.get('ratio_trained') is not None else '-'} | "
                   f"{_fmt(r['mse']) if r['mse'] is not None else '-'} | {r['baseline']:.3f} |\n"
                   for r in rows)
    return head + body


class PlottingUnavailableError(ImportError):
    """Raised when a figure is asked for and matplotlib is not installed."""


def require_matplotlib() -> Any:
    """The ``matplotlib`` module, or ``PlottingUnavailableError`` saying how to install it."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401  (the object-oriented API: no pyplot, no backend)
    except ImportError:
        raise PlottingUnavailableError(
            "the figures are drawn with matplotlib, which is not installed: pip install 'minigrad[plot]' "
            "(or pip install matplotlib)") from None
    return matplotlib


def plot_grad_norms(curves: dict[int, dict[str, np.ndarray]], title: str,
                    trained: dict[int, dict[str, np.ndarray]] | None = None) -> Any:
    """A matplotlib ``Figure``: one panel per T, ``||dL/dh_t|| / ||dL/dh_T||`` against t on a log scale, one
    line per cell (solid: ``curves``, at initialisation; dashed: ``trained``, after training, if given)."""
    require_matplotlib()
    from matplotlib.figure import Figure

    Ts = sorted(curves)
    fig = Figure(figsize=(3.2 * len(Ts) + 0.8, 3.6), layout="constrained")
    axes = fig.subplots(1, len(Ts), sharey=True, squeeze=False)[0]
    for ax, T in zip(axes, Ts):
        for runs, style, when in ((curves, "-", "at init"), (trained or {}, "--", "trained")):
            for cell, c in runs.get(T, {}).items():
                c = np.asarray(c, dtype=np.float64)
                if not len(c) or not c[-1] > 0:
                    continue
                r = np.maximum(c / c[-1], 1e-300)
                ax.plot(np.arange(1, len(r) + 1), r, style, color=color(cell), lw=1.8,
                        label=label(cell) + (f" ({when})" if trained else ""))
        ax.set_yscale("log")
        ax.set_title(f"T = {T}")
        ax.set_xlabel("time step t")
        ax.grid(True, which="major", color="#eeeeee")
    axes[0].set_ylabel(r"$\|dL/dh_t\| \,/\, \|dL/dh_T\|$")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6), frameon=False)
    fig.suptitle(title)
    return fig


def save_figure(fig: Any, stem: str | Path) -> list[Path]:
    """Write ``fig`` as ``<stem>.png`` (150 dpi) and ``<stem>.svg`` (text kept as text, no date, stable
    ids: the same figure gives the same file); returns both paths."""
    mpl = require_matplotlib()
    stem = Path(stem)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    with mpl.rc_context({"svg.hashsalt": "minigrad", "svg.fonttype": "none"}):
        fig.savefig(paths[0], dpi=150, metadata={"Software": None})
        fig.savefig(paths[1], metadata={"Date": None, "Creator": None})
    return paths


def draw_unrolled_at_init(cell: str, path: Path, steps: int = 8, hidden: int = 16, seed: int = 0) -> Path:
    """The unrolled graph of a fresh ``cell`` model on one adding sequence of ``steps`` steps, after
    ``backward()``, coloured by gradient magnitude (``viz``)."""
    import viz

    task = get_task("adding", seq_len=steps, seed=seed)
    model = task.build_model(cell, hidden)
    loss = task.loss(model, task.batch(0, 1, "test"))
    viz.retain_grads(loss)
    loss.backward()
    g = viz.draw(loss, params=model, title=f"{label(cell)} at initialisation, {steps} steps: "
                 "colour = log ‖gradient‖ (blue small, red large)")
    return viz.render(g, path)


def vanishing(out: str | Path, cells: Sequence[str] | None = None,
              lengths: Sequence[int] = (10, 50, 100, 200), steps: int = 300, hidden: int = 64,
              batch: int = 50, lr: float = 1e-2, seed: int = 0, quiet: bool = False,
              draw: bool = True, plot: bool = True) -> dict[str, Any]:
    """Run the experiment (module doc) for ``cells`` (default: every registered cell); returns
    ``{"rows", "table", "files"}``. A progress bar over the runs is drawn on a terminal unless ``quiet``.
    ``plot=False`` skips the matplotlib figures; with ``plot=True`` and no matplotlib,
    ``PlottingUnavailableError`` is raised before anything runs."""
    from .tasks.progress import bar, write
    from .tasks.trainer import TrainConfig, train

    cells = list(CELLS) if cells is None else list(cells)
    bad = [c for c in cells if c not in CELLS]
    if bad or not cells:
        raise ValueError(f"vanishing: cells must be among {', '.join(CELLS)}, got {cells}")
    if not lengths or any(int(T) < 2 for T in lengths):
        raise ValueError(f"vanishing: lengths must be integers >= 2, got {list(lengths)}")
    if steps < 0 or hidden < 1 or batch < 1 or lr <= 0:
        raise ValueError(f"vanishing: need steps >= 0, hidden >= 1, batch >= 1, lr > 0; got steps={steps}, "
                         f"hidden={hidden}, batch={batch}, lr={lr}")
    if plot:
        require_matplotlib()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    curves: dict[int, dict[str, np.ndarray]] = {}
    trained_curves: dict[int, dict[str, np.ndarray]] = {}
    runs = [(T, cell) for T in lengths for cell in cells]
    for T, cell in bar(runs, total=len(runs), desc="vanishing", quiet=quiet, unit="run"):
        t0 = time.perf_counter()
        norms = grad_norms_at_init(cell, T, hidden, batch, seed)
        curves.setdefault(T, {})[cell] = norms
        ratio = _ratio(norms)
        row: dict[str, Any] = {"cell": cell, "T": int(T), "ratio": ratio, "norms": norms.tolist(),
                               "ratio_trained": None, "mse": None, "baseline": 2 / 12}
        if steps > 0:
            cfg = TrainConfig(task="adding", cell=cell, hidden=hidden, lr=lr, steps=steps, batch=batch,
                              seq_len=int(T), seed=seed, clip=1.0)
            res = train(cfg, out / "runs" / f"{cell}_T{T}", quiet=True)
            row["mse"], row["baseline"] = res.result["metric"], res.result["baseline"]
            trained = grad_norms(res.model, int(T), batch, seed)
            row["ratio_trained"], row["norms_trained"] = _ratio(trained), trained.tolist()
            trained_curves.setdefault(T, {})[cell] = trained
        rows.append(row)
        if not quiet:
            write(f"{label(cell):>8s} T={T:<4d} ratio {_fmt(ratio):>9s} -> "
                  f"{_fmt(row['ratio_trained']) if row['ratio_trained'] is not None else '-':>9s}  MSE "
                  f"{_fmt(row['mse']) if row['mse'] is not None else '-':>9s}  "
                  f"({time.perf_counter() - t0:.1f}s)", sys.stderr)
    md = table(rows, steps)
    files = [out / "vanishing.md", out / "vanishing.json"]
    files[0].write_text("# Vanishing gradients on the adding task\n\n" + md)
    files[1].write_text(json.dumps({"steps": steps, "hidden": hidden, "batch": batch, "lr": lr, "seed": seed,
                                    "rows": rows}, indent=1) + "\n")
    if plot:
        title = ("‖dL/dh_t‖ relative to the last step on the adding task, at initialisation"
                 + (f" (solid) and after {steps} training steps (dashed)" if trained_curves else ""))
        fig = plot_grad_norms(curves, title, trained_curves or None)
        files += save_figure(fig, out / "grad_norms")
    if draw:
        for cell in cells:
            files.append(draw_unrolled_at_init(cell, out / f"unrolled_{cell}.svg", seed=seed))
    return {"rows": rows, "table": md, "files": files}
