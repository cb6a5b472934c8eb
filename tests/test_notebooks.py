"""The teaching notebooks (notebooks/*.ipynb) run top to bottom without an error, and match their sources.

Each notebook is executed by nbclient in a fresh Jupyter kernel started from THIS interpreter (a kernelspec
written to a temporary JUPYTER_PATH, so a user's own "python3" kernel cannot be picked by mistake), in a
temporary working directory. Lane 1 only (``jit_only``): the notebooks train small models, which without
Numba's JIT would take minutes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ["01_unfolding", "02_bptt", "03_truncated_bptt", "04_vanishing_exploding", "05_applications"]
NEEDED = ("nbclient", "nbformat", "ipykernel", "matplotlib")

pytestmark = pytest.mark.jit_only

missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
if missing and not os.environ.get("CI"):
    pytest.skip(f"notebook tests need {', '.join(missing)} (pip install -e '.[dev]')",
                allow_module_level=True)


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """A kernelspec that runs ipykernel with this very interpreter."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "minigrad-tests"
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "minigrad tests", "language": "python"}))
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "MPLBACKEND")}
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(root), *([saved["JUPYTER_PATH"]] * bool(
        saved["JUPYTER_PATH"]))])
    os.environ.pop("MPLBACKEND", None)    # the kernel's inline backend captures the figures
    yield "minigrad-tests"
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_every_notebook_is_listed_and_built_from_its_source():
    import nbformat

    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES
    for name in NAMES:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        src = build.cells_of((NOTEBOOKS / f"nb_{name}.py").read_text())
        assert [c.source for c in nb.cells] == [c.source for c in src], \
            f"{name}.ipynb is out of date: run python notebooks/build.py"
        for cell in nb.cells:                      # outputs are never committed
            assert cell.cell_type != "code" or (cell.outputs == [] and cell.execution_count is None), name


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, kernel_name, tmp_path):
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=kernel_name, timeout=300,
                                     resources={"metadata": {"path": str(tmp_path)}})
    t0 = time.perf_counter()
    client.execute()                               # raises CellExecutionError on the first failing cell
    seconds = time.perf_counter() - t0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    figures = sum("image/png" in o.get("data", {})
                  for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert figures >= 1, f"{name} made no matplotlib figure"
    print(f"{name}: {seconds:.1f} s, {figures} figures")
