"""The benchmark sections behind ``python -m bench`` (see ``bench/__main__.py`` for the options).

- steps: ms per train step (forward over T + full BPTT, MSE on all outputs) for every workload, cell
  with a NumPy reference (rnn, gru, lstm) and dtype: the NumPy reference, minigrad (``rnn.make_rnn``'s
  layer with its default ``compile=None`` -- one compiled recurrence per layer when Numba's JIT is on --,
  the same layer eager, ``compile=False``, and the bench's own eager loop), PyTorch's layer and cell
  loop when torch is importable, JAX's jitted ``lax.scan`` when jax is importable. Targets (issues 6
  and 12) are ratios of the minigrad column.
  Implementations are timed round-robin (one run of each per repetition) so load on the machine hits
  them alike; medians.
- cells: the same train step for every registered cell (``rnn.CELLS``, the built-ins and any cell added
  with ``rnn.register_cell``) through ``rnn.make_rnn``: what a cell costs under the generic layer.
- overhead: forward+backward of one tiny elementwise op vs the raw NumPy it wraps.
- scaling: forward/backward time and peak traced memory of an eager LSTM layer (``compile=False``)
  for T = 250 ... 4000; the compiled layer's (``compile=True``) time and saved bytes for T = 250 ... 8000.
- coldstart: ``import minigrad`` and the first LSTM train step (the default, compiled layer) in fresh
  processes, with cold (empty temporary) and warm Numba and minigrad caches.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import jax_impl, mg_loop, problems, reference, torch_impl

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------------------------ helpers


def _timeit(fns: dict[str, Callable[[], object]], reps: int, warmup: int, budget: float = 1.0
            ) -> dict[str, float]:
    """Median seconds per call of each fn over rounds that interleave the implementations (so that a
    change of the machine's load hits all of them); warm-up runs excluded.

    In a round each fn runs a block of back-to-back calls (as the steps of a training loop do; a fast
    fn repeats until its block takes ~5 ms) and its time is the block's mean. A block of calls under
    50 ms starts with one untimed call: a call right after another implementation or a garbage
    collection finds the CPU caches cold, which charges a Python-heavy step up to 0.5 ms at the tiny
    sizes (measured: a 0.26 ms step took 0.7-0.9 ms right after ``gc.collect()``), a cost the steady
    state of a training loop does not pay. As in ``timeit`` the collector is off inside a round and
    collects between rounds; the order of the fns rotates. Fast cases get more rounds (up to
    ``budget`` seconds, at most 10x ``reps``): a median of a few sub-millisecond blocks on a shared
    machine is mostly noise."""
    once: dict[str, float] = {}  # the fastest warm-up call (the first compiles and fills caches)
    for _ in range(max(warmup, 3)):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            t = time.perf_counter() - t0
            once[k] = min(t, once.get(k, t))
    inner = {k: max(1, min(50, int(0.005 / max(t, 1e-9)))) for k, t in once.items()}
    per_round = sum((inner[k] + (once[k] < 0.05)) * once[k] for k in fns)
    reps = max(reps, min(10 * reps, int(budget / max(per_round, 1e-9))))
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns.items())
    enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(reps):
            gc.collect()  # collects with the collector disabled too
            for k, f in order[r % len(order):] + order[:r % len(order)]:
                if once[k] < 0.05:  # untimed: warms the caches for this block (slow cases need not)
                    f()
                t0 = time.perf_counter()
                for _ in range(inner[k]):
                    f()
                times[k].append((time.perf_counter() - t0) / inner[k])
    finally:
        if enabled:
            gc.enable()
    return {k: statistics.median(v) for k, v in times.items()}


def _fmt_ms(s: float | None) -> str:
    if s is None:
        return "-"
    ms = s * 1e3
    return f"{ms:.3g}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> str:
    right = [i > 0 for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


class Report:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, text: str = "") -> None:
        print(text, flush=True)
        self.parts.append(text)

    def text(self) -> str:
        return "\n".join(self.parts) + "\n"


# ------------------------------------------------------------------------------------------ steps


def bench_steps(args: argparse.Namespace, rep: Report) -> dict:
    import minigrad as mg

    use_torch = not args.no_torch and torch_impl.available()
    use_jax = not getattr(args, "no_jax", False) and jax_impl.available()
    if use_torch:
        import torch

        torch.set_num_threads(args.threads)
    results: dict = {}
    for dt in args.dtypes.split(","):
        rows = []
        for wname in args.workloads.split(","):
            w = problems.WORKLOADS[wname]
            for kind in reference_cells(args):
                x, y, p = problems.make_problem(kind, w.I, w.H, w.B, w.T, dt)
                fns: dict[str, Callable[[], object]] = {
                    "numpy": lambda kind=kind, x=x, y=y, p=p: reference.train_step(kind, x, y, p),
                    "minigrad": mg_loop.step_fn(kind, x, y, p, "rnn"),
                    "eager": mg_loop.step_fn(kind, x, y, p, "rnn-eager"),
                    "mg-loop": mg_loop.step_fn(kind, x, y, p, "loop"),
                }
                if use_torch:
                    fns["torch-layer"] = torch_impl.step_fn(kind, x, y, p, "layer")
                    fns["torch-cell"] = torch_impl.step_fn(kind, x, y, p, "cell")
                if use_jax:
                    fns["jax-scan"] = jax_impl.step_fn(kind, x, y, p)
                t = _timeit(fns, args.reps, args.warmup, getattr(args, "budget", 1.0))
                results[(dt, wname, kind)] = t
                r = t["numpy"]
                m = t["minigrad"]
                row = [f"{wname} {kind.upper()}", _fmt_ms(r), _fmt_ms(m), _ratio(m, r), _fmt_ms(t["eager"]),
                       _ratio(t["eager"], r), _fmt_ms(t["mg-loop"]), _ratio(t["mg-loop"], r)]
                if use_torch:
                    tl = t["torch-layer"]
                    row += [_fmt_ms(tl), _ratio(m, tl), _fmt_ms(t["torch-cell"]), _ratio(m, t["torch-cell"])]
                if use_jax:
                    row += [_fmt_ms(t["jax-scan"]), _ratio(m, t["jax-scan"])]
                rows.append(row)
                print(f"  [{dt}] {' | '.join(row)}", file=sys.stderr, flush=True)
        header = ["workload (I,H,B,T) cell", "NumPy BPTT ms", "minigrad ms", "minigrad / NumPy",
                  "eager ms", "eager / NumPy", "bench loop ms", "loop / NumPy"]
        if use_torch:
            header += ["torch layer ms", "minigrad / torch layer", "torch cell loop ms",
                       "minigrad / torch cells"]
        if use_jax:
            header += ["jax scan ms", "minigrad / jax"]
        rep.add(f"### {dt}: ms per train step (median of {args.reps}; forward over T + full BPTT, MSE)")
        rep.add()
        rep.add("minigrad = `rnn.make_rnn` (PyTorch's layers) with its default compile=None: one generated "
                "recurrence per layer when Numba's JIT is on (this run: "
                f"{'compiled' if mg.compiles_by_default() else 'eager, the JIT is off or MINIGRAD_COMPILE=0'}"
                "); eager = the same layer with compile=False (the graph of every step); bench loop = "
                "bench/mg_loop.py (an eager loop of primitive ops)"
                "; sizes: " + ", ".join(
            w.label() for k, w in problems.WORKLOADS.items() if k in args.workloads.split(",")))
        rep.add()
        rep.add(_table(header, rows))
        rep.add()
    _targets(results, use_torch, rep)
    return results


def _targets(results: dict, use_torch: bool, rep: Report) -> None:
    """The minigrad column (the default layer: compiled when Numba's JIT is on) against the targets:
    issue 12's (``_issue12_targets``; they replaced issue 6's against NumPy and PyTorch's layer) and
    issue 6's "faster than PyTorch's cell loop"."""
    rows = []
    for (dt, wname, kind), t in results.items():
        case = f"{dt} {wname} {kind.upper()}"
        rows += _issue12_targets(case, dt, wname, kind, t)
        if use_torch:
            rc = t["minigrad"] / t["torch-cell"]
            rows.append([case, "faster than torch cell loop", f"{rc:.2f}x", "met" if rc < 1 else "NOT met"])
    met = sum(r[-1] == "met" for r in rows)
    rep.add(f"### Targets (ratios from this run): {met} of {len(rows)} met")
    rep.add()
    rep.add(_table(["case", "target", "ratio", ""], rows))
    rep.add()


def registered_cells(args: argparse.Namespace) -> list[str]:
    """``--cells`` (default: every registered cell), checked against ``rnn.CELLS``."""
    from rnn import CELLS

    cells = list(CELLS) if args.cells is None else [c for c in args.cells.split(",") if c]
    bad = [c for c in cells if c not in CELLS]
    if bad or not cells:
        raise SystemExit(f"bench: --cells must be among {', '.join(CELLS)}, got {args.cells!r}")
    return cells


def reference_cells(args: argparse.Namespace) -> list[str]:
    """The cells of ``--cells`` that have a NumPy reference (default: all of them: rnn, gru, lstm)."""
    if args.cells is None:
        return list(reference.STEPS)
    return [c for c in registered_cells(args) if c in reference.STEPS]


def _issue12_targets(case: str, dt: str, wname: str, kind: str, t: dict) -> list[list[str]]:
    """Issue 12's targets for the minigrad column: <= 0.8x NumPy everywhere; <= 1.0x JAX's scan and
    PyTorch's layer on tiny/small/long; <= 1.2x nn.LSTM (f32) and <= 1.0x nn.RNN/GRU on medium/large."""
    m = t["minigrad"]
    rows = [[case, "<= 0.8x NumPy", f"{m / t['numpy']:.2f}x", "met" if m <= 0.8 * t["numpy"] else "NOT met"]]
    small = wname in ("tiny", "small", "long")
    for peer, name in (("jax-scan", "JAX jit scan"), ("torch-layer", f"torch nn.{kind.upper()}")):
        if peer not in t or (peer == "jax-scan" and not small):
            continue
        lim = 1.2 if (not small and kind == "lstm") else 1.0
        if not small and kind == "lstm" and dt != "float32":
            continue
        r = m / t[peer]
        rows.append([case, f"<= {lim}x {name}", f"{r:.2f}x", "met" if r <= lim else "NOT met"])
    return rows


def bench_cells(args: argparse.Namespace, rep: Report) -> None:
    cells = registered_cells(args)
    for dt in args.dtypes.split(","):
        rows = []
        for wname in args.workloads.split(","):
            w = problems.WORKLOADS[wname]
            fns = {c: mg_loop.cell_step_fn(c, w.I, w.H, w.B, w.T, dt) for c in cells}
            t = _timeit(fns, args.reps, args.warmup, getattr(args, "budget", 1.0))
            rows.append([w.label()] + [_fmt_ms(t[c]) for c in cells])
            print(f"  [{dt}] {' | '.join(rows[-1])}", file=sys.stderr, flush=True)
        rep.add(f"### {dt}: ms per train step of every registered cell (median of {args.reps}; one layer "
                "through `rnn.make_rnn`, forward over T + full BPTT, MSE)")
        rep.add()
        rep.add(_table(["workload (I,H,B,T)", *cells], rows))
        rep.add()


# ------------------------------------------------------------------------------------------ overhead


def bench_overhead(args: argparse.Namespace, rep: Report) -> None:
    import minigrad as mg

    rng = np.random.default_rng(0)
    xd = rng.standard_normal(4).astype(np.float32)
    yd = rng.standard_normal(4).astype(np.float32)
    seed = np.ones(4, np.float32)
    x = mg.tensor(xd, requires_grad=True)
    y = mg.tensor(yd, requires_grad=True)
    n = 2000 if args.quick else 5000

    def per_call(f: Callable[[], object]) -> float:
        f()
        best = []
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            best.append((time.perf_counter() - t0) / n)
        return statistics.median(best)

    def mg_tanh() -> None:
        mg.tanh(x).backward(seed)
        x.grad = None

    def np_tanh() -> None:
        t = np.tanh(xd)
        seed * (1 - t * t)

    def mg_mul() -> None:
        (x * y).backward(seed)
        x.grad = y.grad = None

    def np_mul() -> None:
        xd * yd
        seed * yd
        seed * xd

    def mg_fwd() -> None:
        mg.tanh(x)

    def mg_nograd() -> None:
        with mg.no_grad():
            mg.tanh(x)

    rows = []
    for name, f, g in [("tanh (unary)", mg_tanh, np_tanh), ("mul (binary)", mg_mul, np_mul)]:
        a, b = per_call(f), per_call(g)
        rows.append([name, f"{a * 1e6:.2f}", f"{b * 1e6:.2f}", f"{(a - b) * 1e6:.2f}"])
    rep.add("### Per-op overhead: forward + backward of one tiny (4,) float32 op, us per call")
    rep.add()
    rep.add(_table(["op", "minigrad fwd+bwd us", "raw NumPy us", "overhead us"], rows))
    rep.add()
    rep.add(f"Forward only (records a node): {per_call(mg_fwd) * 1e6:.2f} us; under no_grad: "
            f"{per_call(mg_nograd) * 1e6:.2f} us. Target: overhead <= 4 us.")
    rep.add()


# ------------------------------------------------------------------------------------------ scaling


def bench_scaling(args: argparse.Namespace, rep: Report) -> None:
    import minigrad as mg

    Ts = [250, 500, 1000] if args.quick else [250, 500, 1000, 2000, 4000]
    In, H, B = 16, 32, 4
    kind = "lstm"
    rows = []
    base = None
    for T in Ts:
        x, y, p = problems.make_problem(kind, In, H, B, T, "float32")
        layer = mg_loop.make_rnn_layer(kind, p, compile=False)
        params = list(layer.parameters())

        def fwd(x: np.ndarray = x, layer=layer) -> mg.Tensor:
            return layer(mg.tensor(x))[0]

        def loss_of(out: mg.Tensor, y: np.ndarray = y) -> mg.Tensor:
            d = out - mg.tensor(y)
            return (d * d).mean()

        tf, tb, tr = [], [], []
        for _ in range(max(args.reps, 5)):
            for q in params:
                q.grad = None
            gc.collect()
            t0 = time.perf_counter()
            loss = loss_of(fwd())
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            tf.append(t1 - t0)
            tb.append(t2 - t1)
            del loss
            gc.collect()
            t0 = time.perf_counter()
            reference.train_step(kind, x, y, p)
            tr.append(time.perf_counter() - t0)
        gc.collect()
        tracemalloc.start()
        loss = loss_of(fwd())
        after_fwd, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        loss.backward()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del loss
        f, b, r = statistics.median(tf), statistics.median(tb), statistics.median(tr)
        if base is None:
            base = (T, b, peak)
        lin = (b / base[1]) / (T / base[0])
        rows.append([str(T), _fmt_ms(f), _fmt_ms(b), f"{b / T * 1e6:.1f}", f"{lin:.2f}", _fmt_ms(r),
                     f"{(f + b) / r:.2f}x", f"{after_fwd / 2**20:.1f}", f"{peak / 2**20:.1f}",
                     f"{peak / T / 1024:.1f}"])
    rep.add(f"### T-scaling: LSTM (I, H, B) = ({In}, {H}, {B}), float32, rnn.LSTM(compile=False)")
    rep.add()
    rep.add("Linear in T means constant us/step and KiB/step; 'vs linear' is (backward time / T) relative "
            "to the first row (1.00 = perfectly linear; on a shared machine +-30% is noise, and once the "
            "saved arrays outgrow the caches a step costs more, for the NumPy reference too: compare "
            "the 'minigrad / NumPy' column, a whole train step of each, interleaved). Memory is traced "
            "(tracemalloc) NumPy + Python allocations: held after forward (the graph and saved arrays) and "
            "peak during backward.")
    rep.add()
    rep.add(_table(["T", "forward ms", "backward ms", "backward us/step", "vs linear", "NumPy step ms",
                    "minigrad / NumPy", "graph MiB after fwd", "peak MiB in bwd", "peak KiB/step"], rows))
    rep.add()


def _compiled_step_parts(layer: Any, X: Any, Y: Any, reps: int) -> tuple[float, float, int]:
    """(forward s, backward s, bytes the scan node holds for its backward) of a compiled layer's train
    step: medians over ``reps`` runs after one that compiles."""
    from minigrad.autograd import toposort
    from minigrad.nn import functional as F

    tf, tb, held = [], [], 0
    for _ in range(reps + 1):
        for q in layer.parameters():
            q.grad = None
        t0 = time.perf_counter()
        loss = F.mse_loss(layer(X)[0], Y)
        t1 = time.perf_counter()
        node = next(n for n in toposort(loss.node) if n.name == "compiled scan")
        held = sum(a.nbytes for a in node.saved)
        loss.backward()
        tf.append(t1 - t0)
        tb.append(time.perf_counter() - t1)
    return statistics.median(tf[1:]), statistics.median(tb[1:]), held


def bench_scaling_compiled(args: argparse.Namespace, rep: Report) -> None:
    """The same sweep for the compiled layer (``compile=True``), T up to 8000, and with
    ``recompute=True`` (only the state saved per step; the backward reruns each step's forward). Its
    saved arrays are allocated inside Numba, which tracemalloc does not see, so memory is the bytes the
    scan node holds for its backward (the per-step buffers), against the NumPy BPTT's saved arrays."""
    import minigrad as mg

    Ts = [250, 1000, 4000] if args.quick else [250, 500, 1000, 2000, 4000, 8000]
    In, H, B = 16, 32, 4
    rows, base = [], None
    for T in Ts:
        x, y, p = problems.make_problem("lstm", In, H, B, T, "float32")
        layer = mg_loop.make_rnn_layer("lstm", p, compile=True)
        X, Y = mg.tensor(x), mg.tensor(y)
        f, b, held = _compiled_step_parts(layer, X, Y, max(args.reps, 5))
        layer.recompute = True
        _, b_rc, held_rc = _compiled_step_parts(layer, X, Y, max(args.reps, 5))
        if base is None:
            base = (T, b)
        lin = (b / base[1]) / (T / base[0])
        ref = 7 * B * H * T * 4  # the NumPy BPTT keeps gates (4H), c, tanh c and h per step
        rows.append([str(T), _fmt_ms(f), _fmt_ms(b), f"{b / T * 1e6:.1f}", f"{lin:.2f}",
                     f"{held / 2**20:.2f}", f"{held / T / 1024:.2f}", f"{held / ref:.2f}",
                     _fmt_ms(b_rc), f"{held_rc / 2**20:.2f}"])
    rep.add(f"### T-scaling: LSTM (I, H, B) = ({In}, {H}, {B}), float32, rnn.LSTM(compile=True)")
    rep.add()
    rep.add("recompute: the same layer with `layer.recompute = True` (the state saved per step, each "
            "step's forward run again in the backward).")
    rep.add()
    rep.add(_table(["T", "forward ms", "backward ms", "backward us/step", "vs linear", "saved MiB",
                    "saved KiB/step", "saved / NumPy BPTT's", "recompute: backward ms",
                    "recompute: saved MiB"], rows))
    rep.add()


# ------------------------------------------------------------------------------------------ cold start

_IMPORT = """
import time
t0 = time.perf_counter()
import minigrad
print(time.perf_counter() - t0)
"""

_FIRST_STEP = """
import time
t0 = time.perf_counter()
import numpy as np
import minigrad as mg
t1 = time.perf_counter()
from bench import mg_loop, problems
x, y, p = problems.make_problem("lstm", 32, 64, 16, 64, "float32")
step = mg_loop.step_fn("lstm", x, y, p, "rnn")
t2 = time.perf_counter()
step()
t3 = time.perf_counter()
step()
t4 = time.perf_counter()
print(t1 - t0, t3 - t2, t4 - t3)
"""


def _run_py(code: str, env: dict[str, str]) -> tuple[list[float], float]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=False)
    wall = time.perf_counter() - t0
    if out.returncode:
        raise RuntimeError(f"bench: subprocess failed:\n{out.stderr}")
    return [float(v) for v in out.stdout.split()], wall


def bench_coldstart(args: argparse.Namespace, rep: Report) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    reps = 3
    imports = [_run_py(_IMPORT, env)[0][0] for _ in range(reps)]
    rows = [["import minigrad", f"{statistics.median(imports) * 1e3:.0f}", "-", "< 500 ms"]]
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = env["MINIGRAD_CACHE_DIR"] = cache
        (_, first, second), _ = _run_py(_FIRST_STEP, env)
        rows.append(["first LSTM step, cold caches (compiles)", f"{first * 1e3:.0f}",
                     f"{second * 1e3:.0f}", "-"])
        warm = [_run_py(_FIRST_STEP, env) for _ in range(reps)]
        firsts = sorted(w[0][1] for w in warm)
        rows.append(["first LSTM step, warm caches", f"{statistics.median(firsts) * 1e3:.0f}",
                     f"{statistics.median(w[0][2] for w in warm) * 1e3:.0f}", "< 1000 ms"])
        rows.append(["whole process (start, import, data, 2 steps), warm caches",
                     f"{statistics.median(w[1] for w in warm) * 1e3:.0f}", "-", "-"])
    rep.add("### Cold start (fresh processes; LSTM small workload (32, 64, 16, 64) float32)")
    rep.add()
    rep.add("The step is the default layer's (`rnn.LSTM()`: one compiled recurrence when Numba's JIT is "
            "on). The cold cache is an empty temporary directory as NUMBA_CACHE_DIR and "
            "MINIGRAD_CACHE_DIR (the kernels' and the generated recurrences' compiled code); the warm runs "
            f"reuse it. Medians of {reps} processes.")
    rep.add()
    rep.add(_table(["what", "ms", "second step ms", "target"], rows))
    rep.add()


# ------------------------------------------------------------------------------------------ main


def machine_info(args: argparse.Namespace) -> list[str]:
    import numba

    import minigrad
    from minigrad.kernels import linalg

    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    tv = torch_impl.version() if not args.no_torch else None
    jv = jax_impl.version() if not getattr(args, "no_jax", False) else None
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
        f"- load average at start: {', '.join(f'{v:.2f}' for v in load)} (the machine is shared)",
        f"- Python {platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}, "
        f"minigrad {minigrad.__version__}, PyTorch {tv or 'not installed'}, JAX {jv or 'not installed'}",
        f"- threads: BLAS/OpenMP/torch = {args.threads}",
        f"- minigrad's compiled loops call the gemm `{linalg.BLAS}` (`MINIGRAD_BLAS`; default NumPy's)",
        f"- command: `{' '.join(['python -m bench', *sys.argv[1:]])}`",
    ]


def main(args: argparse.Namespace) -> int:
    rep = Report()
    rep.add("# minigrad benchmark results")
    rep.add()
    for line in machine_info(args):
        rep.add(line)
    rep.add()
    sections = args.sections.split(",")
    if "steps" in sections:
        rep.add("## Train steps")
        rep.add()
        bench_steps(args, rep)
    if "cells" in sections:
        rep.add("## Every registered cell")
        rep.add()
        bench_cells(args, rep)
    if "overhead" in sections:
        rep.add("## Engine overhead")
        rep.add()
        bench_overhead(args, rep)
    if "scaling" in sections:
        rep.add("## Scaling with sequence length")
        rep.add()
        bench_scaling(args, rep)
        bench_scaling_compiled(args, rep)
    if "coldstart" in sections:
        rep.add("## Start-up")
        rep.add()
        bench_coldstart(args, rep)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    rep.add(f"Load average at the end: {', '.join(f'{v:.2f}' for v in load)}.")
    out = args.out or (str(Path(__file__).with_name("RESULTS.md")) if args.write else None)
    if out:
        Path(out).write_text(rep.text())
        print(f"bench: wrote {out}", file=sys.stderr)
    return 0
