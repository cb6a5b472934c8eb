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
``grad_norms.svg`` (r_t against t, log scale, one line per cell, one panel per T; hand-written SVG, no
plotting library) and ``unrolled_<cell>.svg`` (the unrolled graph at initialisation coloured by gradient
magnitude, via ``viz``).
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


def svg_plot(curves: dict[int, dict[str, np.ndarray]], title: str) -> str:
    """Hand-written SVG: one panel per T, ``log10(||dL/dh_t|| / ||dL/dh_T||)`` against t, a line per cell."""
    Ts = sorted(curves)
    pw, ph, ml, mr, mt, mb = 250, 200, 55, 15, 50, 45
    W = ml + len(Ts) * (pw + mr) + 10
    H = mt + ph + mb + 25
    logs = [np.log10(np.maximum(c / c[-1], 1e-300)) for per in curves.values() for c in per.values()
            if len(c) and c[-1] > 0]
    finite = np.concatenate([v[np.isfinite(v)] for v in logs]) if logs else np.zeros(1)
    lo = math.floor(min(finite.min(), -1.0))
    hi = math.ceil(max(finite.max(), 0.0))
    lo = max(lo, hi - 40)  # keep the axis readable

    def y_of(v: float) -> float:
        return mt + ph * (hi - min(max(v, lo), hi)) / (hi - lo)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="Helvetica, Arial, sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2:.0f}" y="18" text-anchor="middle" font-size="14">{_esc(title)}</text>']
    step = max(1, math.ceil((hi - lo) / 8))
    for i, T in enumerate(Ts):
        x0 = ml + i * (pw + mr)
        out.append(f'<rect x="{x0}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
        out.append(f'<text x="{x0 + pw / 2:.0f}" y="{mt - 6}" text-anchor="middle">T = {T}</text>')
        for e in range(lo, hi + 1, step):
            y = y_of(e)
            out.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
            if i == 0:
                out.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end">1e{e}</text>')
        for t in sorted({1, (T + 1) // 2, T}):
            x = x0 + pw * (t - 1) / max(T - 1, 1)
            out.append(f'<text x="{x:.1f}" y="{mt + ph + 14}" text-anchor="middle">{t}</text>')
        out.append(f'<text x="{x0 + pw / 2:.0f}" y="{mt + ph + 30}" text-anchor="middle">time step t</text>')
        for cell, c in curves[T].items():
            if not len(c) or c[-1] <= 0:
                continue
            v = np.log10(np.maximum(c / c[-1], 1e-300))
            pts = " ".join(f"{x0 + pw * k / max(len(v) - 1, 1):.1f},{y_of(float(val)):.1f}"
                           for k, val in enumerate(v))
            out.append(f'<polyline fill="none" stroke="{color(cell)}" stroke-width="1.8" '
                       f'points="{pts}"><title>{_esc(label(cell))}, T={T}</title></polyline>')
    out.append(f'<text x="14" y="{mt + ph / 2:.0f}" transform="rotate(-90 14 {mt + ph / 2:.0f})" '
               'text-anchor="middle">||dL/dh_t|| / ||dL/dh_T||</text>')
    lx = ml
    for cell in dict.fromkeys(c for per in curves.values() for c in per):
        out.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{H - 12}" y2="{H - 12}" stroke="{color(cell)}" '
                   'stroke-width="2.5"/>')
        out.append(f'<text x="{lx + 27}" y="{H - 8}">{_esc(label(cell))}</text>')
        lx += 110
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


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
              draw: bool = True) -> dict[str, Any]:
    """Run the experiment (module doc) for ``cells`` (default: every registered cell); returns
    ``{"rows", "table", "files"}``."""
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
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    curves: dict[int, dict[str, np.ndarray]] = {}
    for T in lengths:
        for cell in cells:
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
            rows.append(row)
            if not quiet:
                print(f"{label(cell):>8s} T={T:<4d} ratio {_fmt(ratio):>9s} -> "
                      f"{_fmt(row['ratio_trained']) if row['ratio_trained'] is not None else '-':>9s}  MSE "
                      f"{_fmt(row['mse']) if row['mse'] is not None else '-':>9s}  "
                      f"({time.perf_counter() - t0:.1f}s)", file=sys.stderr, flush=True)
    md = table(rows, steps)
    files = [out / "vanishing.md", out / "vanishing.json", out / "grad_norms.svg"]
    files[0].write_text("# Vanishing gradients on the adding task\n\n" + md)
    files[1].write_text(json.dumps({"steps": steps, "hidden": hidden, "batch": batch, "lr": lr, "seed": seed,
                                    "rows": rows}, indent=1) + "\n")
    files[2].write_text(svg_plot(curves, "||dL/dh_t|| relative to the last step, at initialisation "
                                         "(adding task)"))
    if draw:
        for cell in cells:
            files.append(draw_unrolled_at_init(cell, out / f"unrolled_{cell}.svg", seed=seed))
    return {"rows": rows, "table": md, "files": files}
