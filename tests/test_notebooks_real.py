"""Notebooks 03-06 on the real Human3.6M pack in the quick profile (frames subsampled,
see geo.profiles.EXPERIMENTS), so that their visible checks -- subjects disjoint, every
result finite, the expected k values and seeds present, a sidecar for each figure -- run
on real data too, not only on the embedded default that nbval uses. Skips when
../shared/data is absent. A few minutes on 2 cores."""
import pytest

from geo.results import REPO

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


@pytest.mark.parametrize("name", ["03_fig5_label_efficiency", "04_fig6_ablations", "05_tables", "06_qualitative"])
def test_notebook_on_real_pack(name, h36m_dir, tmp_path_factory, monkeypatch):
    import papermill as pm

    runs = tmp_path_factory.getbasetemp() / "real-pack-runs"      # shared by the notebooks
    monkeypatch.setenv("GEO_RUNS", str(runs))
    monkeypatch.setenv("GEO_FIGURES", str(tmp_path_factory.getbasetemp() / "real-pack-figures"))
    out = tmp_path_factory.mktemp("executed") / f"{name}.ipynb"
    nb = pm.execute_notebook(str(REPO / "notebooks" / f"{name}.ipynb"), str(out),
                             parameters={"data": str(h36m_dir), "profile": "quick"},
                             cwd=str(REPO / "notebooks"), progress_bar=False)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "checks passed" in printed
