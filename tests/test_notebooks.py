"""The notebooks: committed without outputs, and each runs top to bottom in a real kernel."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_is_a_notebook_per_lab():
    names = {path.stem.split("_", 1)[1] for path in NOTEBOOKS}
    assert names >= {
        "backprop_by_hand",
        "softmax_only",
        "hidden_layer",
        "hyperparams",
        "multiclass",
        "binary",
    }
    assert "mlp_vs_cnn" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    book = json.loads(path.read_text(encoding="utf-8"))
    for cell in book["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, (
                f"{path.name}: clear its outputs"
            )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_in_quick_mode(path, tmp_path, monkeypatch, fashion_mnist_dir):
    nbformat = pytest.importorskip("nbformat", reason="the notebooks extra is not installed")
    nbclient = pytest.importorskip("nbclient", reason="the notebooks extra is not installed")
    shutil.copy(path, tmp_path / path.name)  # its runs/ folder goes to tmp_path, not the checkout
    monkeypatch.setenv("MINIDL_QUICK", "1")
    book = nbformat.read(tmp_path / path.name, as_version=4)
    client = nbclient.NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the failing cell and its traceback, on any error
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    if "MINIDL_KEEP_NOTEBOOKS" in os.environ:  # to look at what a student sees
        nbformat.write(book, Path(os.environ["MINIDL_KEEP_NOTEBOOKS"]) / path.name)
