"""rnn/ contains no hand-written backward pass: BPTT is the engine's backward over the unrolled graph.

Every Python file under rnn/ is parsed. It fails on a custom op (a ``Function`` subclass, which
would carry its own derivative), on a ``backward``/``vjp`` with the op signature (``ctx`` first, or a
staticmethod), and on hand-rolled gradient variables over time (``dh_next``, ``dW_hh``, ``delta_t``...)
used in code. (Methods that merely call ``loss.backward()`` are fine.)"""

import ast
import re
from pathlib import Path

import rnn

ROOT = Path(rnn.__file__).parent
DERIVATIVES = {"backward", "vjp", "jvp", "grad_fn", "backward_step", "bptt_backward"}
GRAD_NAMES = re.compile(r"^(d[hcx]_?(next|prev|t)|dW_?(hh|ih)|db_?(hh|ih)|grad_[hc]|delta_t|dh|dc)$")


def _sources():
    files = sorted(ROOT.rglob("*.py"))
    assert len(files) >= 6
    return files


def offenders_in(src: str, where: str = "<src>") -> list[str]:
    out = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                if name == "Function":
                    out.append(f"{where}:{node.lineno} class {node.name}({name})")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in DERIVATIVES:
            args = [a.arg for a in node.args.args]
            static = any(getattr(d, "id", None) == "staticmethod" for d in node.decorator_list)
            if static or (args and args[0] == "ctx"):
                out.append(f"{where}:{node.lineno} def {node.name}({', '.join(args)})")
        names = []
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, ast.arg):
            names.append(node.arg)
        out += [f"{where}:{node.lineno} gradient variable {n}" for n in names if GRAD_NAMES.match(n)]
    return out


def test_no_custom_ops_backward_definitions_or_gradient_bookkeeping():
    found = [o for p in _sources() for o in offenders_in(p.read_text(), str(p.relative_to(ROOT)))]
    assert not found, "hand-written backward in rnn/:\n" + "\n".join(found)


def test_the_scan_catches_each_kind():
    assert offenders_in("class MyCell(mg.Function):\n    pass\n")
    assert offenders_in("class Op:\n    @staticmethod\n    def backward(ctx, g):\n        return g\n")
    assert offenders_in("def backward(ctx, g):\n    return g\n")
    assert offenders_in("for t in range(T):\n    dh_next = dh_next @ W\n")
    assert offenders_in("dW_hh += np.outer(a, b)\n")
    # calling the engine is what rnn/ is supposed to do
    assert not offenders_in("class Task:\n    def backward(self, model):\n        loss.backward()\n")
