"""viz's place in the house: it imports minigrad only (never rnn, not even lazily) and no private name
of minigrad."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "viz").glob("*.py"))


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import statement, at any depth (lazy imports too)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            out.append((node.module or "", [a.name for a in node.names]))
    return out


def test_viz_sources_import_neither_rnn_nor_private_minigrad_names():
    assert SOURCES
    for path in SOURCES:
        for module, names in _imports(path):
            top = module.split(".")[0]
            assert top != "rnn", f"{path.name} imports {module}"
            if top == "minigrad":
                assert not any(part.startswith("_") for part in module.split(".")), (path.name, module)
                assert not any(n.startswith("_") for n in names), (path.name, module, names)


def test_importing_viz_does_not_import_rnn():
    code = "import sys, viz; print('rnn' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
