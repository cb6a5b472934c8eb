"""Writes the notebooks of this directory from the cell lists in ``nb_*.py`` (run: python notebooks/build.py).

Each ``nb_XX_name.py`` holds the notebook as plain Python: cells are separated by lines ``# %%`` (code) or
``# %% [markdown]`` (markdown, every line starting with ``# ``), the "percent" format of Jupytext and
VS Code. The .ipynb files are written without outputs; ``tests/test_notebooks.py`` executes them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent


def cells_of(source: str) -> list:
    cells, kind, buf = [], None, []

    def flush() -> None:
        text = "\n".join(buf).strip("\n")
        if kind is None or not text:
            return
        if kind == "markdown":
            text = "\n".join(ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cells.append(nbformat.v4.new_code_cell(text))

    for line in source.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, buf = ("markdown" if "[markdown]" in line else "code"), []
        else:
            buf.append(line)
    flush()
    return cells


def build(src: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells_of(src.read_text())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    out = HERE / (src.stem[len("nb_"):] + ".ipynb")
    nbformat.validate(nb)
    out.write_text(nbformat.writes(nb) + "\n")
    return out


def main(argv: list[str]) -> int:
    srcs = [Path(a) for a in argv] or sorted(HERE.glob("nb_*.py"))
    for src in srcs:
        print("wrote", build(src))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
