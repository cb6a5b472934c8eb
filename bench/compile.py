"""``python -m bench.compile``: what ``minigrad.compile`` buys, measured side by side in one run.

For every workload (``bench.problems``), cell and dtype: ms per train step (forward over T + full BPTT,
MSE on all outputs) of ``rnn.make_rnn``'s layer three ways -- the hand-written fused cell kernels
(``fused``, the default today), the primitive cell compiled by ``minigrad.compile`` (``compiled``), and
the primitive cell eager (``eager``) -- and of every zoo cell compiled and eager. Medians over
repetitions timed round-robin (``bench.run``'s timer); ratios against the fused layer of the same row.
Also the cold and cached cost of compiling the LSTM cell in fresh processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import minigrad as mg
import rnn

from . import mg_loop, problems
from .run import _table, _timeit

ZOO = ("mgu", "indrnn", "peephole_lstm", "ln_rnn")


def layer_step(layer: rnn.Recurrent, x: np.ndarray, y: np.ndarray) -> None:
    for p in layer.parameters():
        p.grad = None
    out, _ = layer(mg.tensor(x))
    d = out - mg.tensor(y)
    (d * d).mean().backward()


def time_layers(layers: dict, x: np.ndarray, y: np.ndarray, reps: int) -> dict:
    """Median seconds per train step of each layer (round-robin, one warm-up run: compilation)."""
    return _timeit({k: (lambda v=v: layer_step(v, x, y)) for k, v in layers.items()}, reps, 1)


def built_in_rows(workloads: list[str], dtypes: list[str], reps: int) -> list[list[str]]:
    rows = []
    for w in workloads:
        wl = problems.WORKLOADS[w]
        for dt in dtypes:
            for kind in ("rnn", "gru", "lstm"):
                x, y, p = problems.make_problem(kind, wl.I, wl.H, wl.B, wl.T, dt)
                layers = {"fused": mg_loop.make_rnn_layer(kind, p, fused=True),
                          "compiled": _compiled_layer(kind, p),
                          "eager": mg_loop.make_rnn_layer(kind, p, fused=False)}
                t = time_layers(layers, x, y, reps)
                f = t["fused"]
                rows.append([wl.label(), dt, kind, f"{f * 1e3:.2f}", f"{t['compiled'] * 1e3:.2f}",
                             f"{t['eager'] * 1e3:.2f}", f"{t['compiled'] / f:.2f}", f"{t['eager'] / f:.2f}"])
                print(*rows[-1], flush=True)
    return rows


def _compiled_layer(kind: str, p: dict[str, np.ndarray]) -> rnn.Recurrent:
    layer = mg_loop.make_rnn_layer(kind, p, fused=False)
    layer.compile = True
    return layer


def zoo_rows(workloads: list[str], dtypes: list[str], reps: int) -> list[list[str]]:
    rows = []
    for w in workloads:
        wl = problems.WORKLOADS[w]
        for dt in dtypes:
            rng = np.random.default_rng(0)
            x = rng.standard_normal((wl.T, wl.B, wl.I)).astype(dt)
            y = (0.5 * rng.standard_normal((wl.T, wl.B, wl.H))).astype(dt)
            for cell in ("lstm", *ZOO):
                layers = {c: rnn.make_rnn(cell, wl.I, wl.H, fused=False, dtype=dt, batch_first=False,
                                          compile=c, rng=np.random.default_rng(1)) for c in (True, False)}
                t = time_layers(layers, x, y, reps)
                rows.append([wl.label(), dt, cell, f"{t[True] * 1e3:.2f}", f"{t[False] * 1e3:.2f}",
                             f"{t[False] / t[True]:.2f}"])
                print(*rows[-1], flush=True)
    return rows


COLD = ("import time; t = time.perf_counter(); import numpy as np, minigrad as mg;"
        "f = mg.compile(lambda gx, h, c, w: (lambda i, f, g, o: (o.sigmoid() * (f.sigmoid() * c + "
        "i.sigmoid() * g.tanh()).tanh(), f.sigmoid() * c + i.sigmoid() * g.tanh()))"
        "(*(gx + h @ w.T).chunk(4, axis=-1)));"
        "a = [mg.randn(*s, requires_grad=True) for s in ((8, 128), (8, 32), (8, 32), (128, 32))];"
        "h, c = f(*a); (h.sum() + c.sum()).backward(); print(time.perf_counter() - t)")


def coldstart() -> tuple[float, float]:
    """Seconds from ``import minigrad`` to the first compiled LSTM-cell forward+backward, in a fresh
    process: with an empty cache, then again with the cache it wrote."""
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "MINIGRAD_CACHE_DIR": d}
        out = [float(subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True, text=True,
                                    check=True).stdout) for _ in range(2)]
    return out[0], out[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default="tiny,small,long")
    ap.add_argument("--zoo-workloads", default=None, help="workloads of the zoo table (default: --workloads)")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sections", default="cold,builtins,zoo", help="comma list of cold,builtins,zoo")
    args = ap.parse_args(argv)
    ws, dts, sections = args.workloads.split(","), args.dtypes.split(","), args.sections.split(",")
    t0 = time.perf_counter()
    if "cold" in sections:
        cold, warm = coldstart()
        print(f"### compile the LSTM cell in a fresh process: {cold:.2f} s cold, {warm:.2f} s cached\n")
    if "builtins" in sections:
        print("### built-in layers, ms per train step (ratios to fused)\n")
        print(_table(["workload", "dtype", "cell", "fused", "compiled", "eager", "compiled/fused",
                      "eager/fused"], built_in_rows(ws, dts, args.reps)))
    if "zoo" in sections:
        print("\n### zoo cells under rnn.Recurrent, ms per train step\n")
        print(_table(["workload", "dtype", "cell", "compiled", "eager", "eager/compiled"],
                     zoo_rows(args.zoo_workloads.split(",") if args.zoo_workloads else ws, dts, args.reps)))
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
