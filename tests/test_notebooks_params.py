"""Every notebook in notebooks/ is papermill-ready and committed clean: exactly one cell
tagged ``parameters``, which is its first code cell and defines data, profile and seed;
no outputs or execution counts. (nbval runs the notebooks themselves: pytest's testpaths
include notebooks/.)"""
import ast
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def nb(request):
    return nbformat.read(request.param, as_version=4)


def _tagged(nb):
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def test_one_parameters_cell_first(nb):
    tagged = _tagged(nb)
    assert len(tagged) == 1, f"{len(tagged)} cells tagged 'parameters'; expected exactly one"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code is tagged[0], "the 'parameters' cell is not the first code cell"


def test_parameters_define_data_profile_seed(nb):
    (cell,) = _tagged(nb)
    names = {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    missing = {"data", "profile", "seed"} - names
    assert not missing, f"parameters cell does not define {sorted(missing)}"


def test_no_outputs_committed(nb):
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"cells {dirty} have outputs or execution counts committed; clear them before committing"


def test_long_steps_show_progress(nb):
    """The notebooks' long steps (training, encoding, sweeps) print
    progress to papermill's log and the terminal; none turns it off."""
    quiet = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "progress=False" in c.source.replace(" ", "")]
    assert not quiet, f"cells {quiet} call geo with progress=False: long steps must show progress"


def test_encoding_shows_a_progress_bar(capfd):
    """``regress.encode`` (minutes to an hour on a CPU for a whole Human3.6M copy) draws a
    tqdm bar with its ETA on stderr."""
    import numpy as np
    import torch

    from geo import regress

    class Flat(torch.nn.Module):
        def forward(self, maps):
            return maps.flatten(1)[:, :6].reshape(-1, 2, 3)

    x = np.random.default_rng(0).uniform(0, 1000, (40, 16, 2)).astype(np.float32)
    g = regress.encode(Flat(), x, batch=8, progress=True)
    err = capfd.readouterr().err
    assert g.shape == (40, 2, 3)
    assert "encode G" in err and "5/5" in err, err[-500:]
    regress.encode(Flat(), x, batch=8, progress=False)
    assert "encode G" not in capfd.readouterr().err


def test_every_cell_has_an_id():
    """nbformat 4.5 cell ids (a missing one is a warning today and 'a hard error in future
    nbformat versions'); read the raw JSON, since nbformat.read fills them in silently."""
    import json

    for p in NOTEBOOKS:
        nb = json.loads(p.read_text())
        missing = [i for i, c in enumerate(nb["cells"]) if "id" not in c]
        assert not missing, f"{p.name}: cells {missing} have no id; run nbformat.validator.normalize"
