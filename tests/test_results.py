"""Results helper: where files go, what the sidecar holds, atomic writes."""
import json
import os

import numpy as np
import pytest

from geo import results

SIDECAR_KEYS = {"data", "profile", "seeds", "commit", "device", "wall_time_s"}


@pytest.fixture
def figs(tmp_path, monkeypatch):
    d = tmp_path / "figs"
    monkeypatch.setenv("GEO_FIGURES", str(d))
    return d


def _prov():
    return results.Provenance(data="embedded", profile="quick", seeds=[0, 1], note="test")


def test_save_table(figs):
    out = results.save_table({"mpjpe": np.float32(51.5), "per_joint": np.arange(3)}, "tbl", _prov(),
                             rows=[{"method": "ours", "mpjpe": 51.5}], extra_key=7)
    assert sorted(p.name for p in out) == ["tbl.json", "tbl.md"]
    assert all(p.parent == figs for p in out)
    data = json.loads((figs / "tbl.json").read_text())
    assert data["mpjpe"] == 51.5 and data["per_joint"] == [0, 1, 2]
    side = data["meta"]
    assert SIDECAR_KEYS <= set(side)
    assert side["data"] == "embedded" and side["profile"] == "quick" and side["seeds"] == [0, 1]
    assert side["note"] == "test" and side["extra_key"] == 7 and side["files"] == ["tbl.json", "tbl.md"]
    assert isinstance(side["device"], dict) and side["device"]["device"] in ("cpu", "cuda")
    assert side["wall_time_s"] >= 0 and "dirty" in side
    md = (figs / "tbl.md").read_text()
    assert md.splitlines()[0] == "*tbl: data `embedded`, profile `quick`; provenance in `tbl.json`.*"
    assert md.splitlines()[2] == "| method | mpjpe |" and "| ours | 51.50 |" in md


def test_save_figure_matplotlib_and_plotly(figs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    out = results.save_figure(fig, "fig_mpl", _prov())
    plt.close(fig)
    assert [p.name for p in out] == ["fig_mpl.png", "fig_mpl.json"]
    assert (figs / "fig_mpl.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = results.save_figure(go.Figure(go.Scatter(x=[0, 1], y=[1, 0])), "fig_plotly", _prov())
    assert [p.name for p in out] == ["fig_plotly.html", "fig_plotly.json", "plotly.min.js"]
    assert "<html" in (figs / "fig_plotly.html").read_text()
    side = json.loads((figs / "fig_plotly.json").read_text())["meta"]
    assert SIDECAR_KEYS <= set(side) and side["files"] == ["fig_plotly.html", "fig_plotly.json", "plotly.min.js"]


def test_figure_and_table_of_one_name_share_the_sidecar(figs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prov = _prov()
    results.save_table({"rows": [1, 2]}, "fig9", prov, rows=[{"a": 1}])
    fig, _ = plt.subplots()
    results.save_figure(fig, "fig9", prov)
    plt.close(fig)
    data = json.loads((figs / "fig9.json").read_text())
    assert data["rows"] == [1, 2]                                   # the table survives the figure
    assert data["meta"]["files"] == ["fig9.json", "fig9.md", "fig9.png"]
    # another piece of work of the same name replaces it
    fig, _ = plt.subplots()
    results.save_figure(fig, "fig9", _prov())
    plt.close(fig)
    data = json.loads((figs / "fig9.json").read_text())
    assert "rows" not in data and data["meta"]["files"] == ["fig9.json", "fig9.png"]


def test_out_dir_overrides_env(figs, tmp_path):
    other = tmp_path / "bench"
    out = results.save_table({"x": 1}, "b", _prov(), out_dir=other)
    assert {p.parent for p in out} == {other}
    assert not figs.exists() or not any(figs.iterdir())


def test_atomic_write_replaces(tmp_path):
    p = tmp_path / "a" / "f.txt"
    results.atomic_write(p, "one")
    results.atomic_write(p, b"two")
    assert p.read_text() == "two"
    assert os.listdir(p.parent) == ["f.txt"]


def test_atomic_write_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    p = tmp_path / "f.json"
    p.write_text("old")
    with pytest.raises(TypeError):
        results.atomic_write(p, 12345)  # not bytes/str: the write itself fails
    assert os.listdir(tmp_path) == ["f.json"] and p.read_text() == "old"

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        results.atomic_write(p, "new")  # the rename fails
    assert os.listdir(tmp_path) == ["f.json"] and p.read_text() == "old"
    with pytest.raises(OSError):
        results.atomic_write(tmp_path / "g.json", "new")
    assert os.listdir(tmp_path) == ["f.json"]


def test_git_commit_in_repo_without_commits(tmp_path, monkeypatch):
    """A repository with no commits (or a partial .git copy) records no commit, not 'HEAD'."""
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.setattr(results, "REPO", tmp_path)
    assert results.git_commit() == {"commit": None, "dirty": None}


def test_git_commit_here(monkeypatch):
    """In this git checkout, with $GEO_COMMIT unset (it would win), the recorded commit is
    HEAD's."""
    import shutil
    import subprocess

    monkeypatch.delenv("GEO_COMMIT", raising=False)
    info = results.git_commit()
    assert info["commit"] is None or (len(info["commit"]) == 40 and int(info["commit"], 16) >= 0)
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    head = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD"], cwd=results.REPO,
                          capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout with commits")
    assert info["commit"] == head.stdout.strip()
    assert isinstance(info["dirty"], bool) and "commit_from" not in info


def test_git_commit_dirty_ignores_results(tmp_path, monkeypatch):
    """dirty: a changed tracked source file makes the tree dirty; rewritten results under
    figures/ do not; untracked files do not."""
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    monkeypatch.delenv("GEO_COMMIT", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t",  # noqa: E731
                                     *a], check=True, capture_output=True, text=True).stdout.strip()
    git("init", "-q")
    (tmp_path / "figures").mkdir()
    (tmp_path / "code.py").write_text("a = 1\n")
    (tmp_path / "figures" / "fig.json").write_text("{}\n")
    git("add", "code.py", "figures/fig.json")
    git("commit", "-q", "-m", "first")
    monkeypatch.setattr(results, "REPO", tmp_path)
    assert results.git_commit() == {"commit": git("rev-parse", "HEAD"), "dirty": False}
    (tmp_path / "figures" / "fig.json").write_text('{"x": 1}\n')
    (tmp_path / "new.py").write_text("untracked\n")
    assert results.git_commit()["dirty"] is False
    (tmp_path / "code.py").write_text("a = 2\n")
    assert results.git_commit()["dirty"] is True


def test_where_results_go(monkeypatch):
    """Only a full-profile run on a Human3.6M copy writes the committed figures/; a quick or
    embedded run writes under runs/figures/, never over a tracked result."""
    monkeypatch.delenv("GEO_FIGURES", raising=False)
    runs = results.runs_dir().resolve()
    for data, profile in (("embedded", "quick"), ("embedded", "full"), ("/x/h36m", "quick")):
        d = results.figures_dir(prov=results.Provenance(data=data, profile=profile)).resolve()
        assert d != (results.REPO / "figures").resolve() and runs in d.parents, (data, profile, d)
    d = results.figures_dir(prov=results.Provenance(data="/x/h36m", profile="full"))
    assert d.resolve() == (results.REPO / "figures").resolve()
    q = results.figures_dir(prov=results.Provenance(data="/data/copyA/h36m", profile="quick"))
    assert q.name == "h36m-quick"
    c = results.figures_dir(prov=results.Provenance(data="/x/h36m", profile="cpu"))   # the CPU's committed results
    assert c.resolve() == (results.REPO / "figures" / "cpu").resolve()
    e = results.figures_dir(prov=results.Provenance(data="embedded", profile="cpu"))
    assert runs in e.resolve().parents


def test_commit_passed_in_wins(monkeypatch, tmp_path):
    """The GPU machine's copy may carry stale or no git metadata (a GPU run once recorded the
    previous commit, dirty): the commit passed in as $GEO_COMMIT is what a result records."""
    monkeypatch.setenv("GEO_COMMIT", "abc123")
    assert results.git_commit()["commit"] == "abc123"          # in this git checkout too
    monkeypatch.setattr(results, "REPO", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert results.git_commit()["commit"] == "abc123"
    monkeypatch.delenv("GEO_COMMIT")
    assert results.git_commit()["commit"] is None


@pytest.mark.parametrize("bad", ["", "a/b", "../x", "ABS", "..", ".hidden", "sub\\..\\x", "a\x00b", None, 3])
def test_result_names_are_one_plain_file_name(figs, tmp_path, bad):
    """A result name is one plain file name: a path, '..', an absolute path, an empty name
    or a leading dot is refused (naming it) before anything is written."""
    if bad == "ABS":
        bad = str(tmp_path / "abs")   # absolute, but inside the test's folder
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with pytest.raises(ValueError, match="name") as e:
        results.save_table({"x": 1}, bad, _prov())
    assert repr(bad) in str(e.value)
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="name"):
        results.save_figure(fig, bad, _prov())
    plt.close(fig)
    assert not figs.exists() or not any(figs.iterdir())
    assert sorted(os.listdir(tmp_path)) in (["figs"], [])


def test_non_finite_values_are_json_null(figs):
    """NaN/inf in a table are written as null: the file is valid (strict) JSON."""
    results.save_table({"a": float("nan"), "b": np.float32("inf"), "c": np.array([1.0, np.nan, -np.inf]),
                        "d": [{"e": np.float64("nan")}], "f": 1.5}, "nan_tbl", _prov())
    text = (figs / "nan_tbl.json").read_text()

    def strict(c):
        raise ValueError(f"non-standard JSON constant {c}")

    data = json.loads(text, parse_constant=strict)
    assert data["a"] is None and data["b"] is None and data["c"] == [1.0, None, None]
    assert data["d"] == [{"e": None}] and data["f"] == 1.5


def test_figure_never_left_without_its_sidecar(figs):
    """When the meta cannot be serialised nothing is written: no PNG without its sidecar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    with pytest.raises(TypeError):
        results.save_figure(fig, "orphan", _prov(), bad=object())
    plt.close(fig)
    with pytest.raises(TypeError):
        results.save_table({"x": 1}, "orphan_tbl", _prov(), rows=[{"a": 1}], bad=object())
    assert not figs.exists() or sorted(os.listdir(figs)) == []


def test_plotly_html_opens_offline(figs):
    """No CDN: the HTML loads plotly.js by a relative path from a file
    written beside it, once, holding the installed plotly's library."""
    import re

    import plotly
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    results.save_figure(go.Figure(go.Scatter(x=[0, 1], y=[1, 0])), "fig_a", _prov())
    out = results.save_figure(go.Figure(go.Bar(x=[0, 1], y=[1, 0])), "fig_b", _prov())
    assert figs / "plotly.min.js" in out
    for name in ("fig_a", "fig_b"):
        html = (figs / f"{name}.html").read_text()
        srcs = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
        assert srcs == ["plotly.min.js"], srcs                        # nothing fetched from the network
        assert "cdn.plot.ly" not in html and "https://" not in "".join(srcs)
        side = json.loads((figs / f"{name}.json").read_text())["meta"]
        assert "plotly.min.js" in side["files"]
    js = (figs / "plotly.min.js").read_text()
    assert js == get_plotlyjs() and len(js) > 1_000_000
    assert f"v{plotly.__version__}" in js[:2000] or "plotly" in js[:5000].lower()
    before = (figs / "plotly.min.js").stat().st_mtime_ns
    results.save_figure(go.Figure(), "fig_c", _prov())
    assert (figs / "plotly.min.js").stat().st_mtime_ns == before       # written once, not per figure


def test_wall_time_is_the_work_not_the_save(figs):
    """The sidecar's wall_time_s is the time of the work the result
    comes from -- since the Provenance was made (before the work) -- and for a result drawn
    from an earlier run, that run's work time, not the seconds the drawing took."""
    import time

    prov = _prov()
    time.sleep(0.3)                                                    # "the work"
    results.save_table({"x": 1}, "worked", prov)
    side = json.loads((figs / "worked.json").read_text())["meta"]
    assert side["wall_time_s"] >= 0.3
    earlier = {"data": "/h36m", "profile": "full", "stage_wall_s": 173.0, "wall_time_s": 0.0}
    results.save_table({"x": 1}, "drawn", _prov(), computed_by=earlier)
    side = json.loads((figs / "drawn.json").read_text())["meta"]
    assert side["wall_time_s"] == 173.0 and 0 <= side["drawn_in_s"] < 173.0
    results.save_table({"x": 1}, "drawn2", _prov(), computed_by={"wall_time_s": 42.5})
    assert json.loads((figs / "drawn2.json").read_text())["meta"]["wall_time_s"] == 42.5


def test_device_record_names_the_processor_and_its_compute_dtype(monkeypatch):
    """A wall time is read with the processor and dtype it was measured in: the record says
    both, and the dtype follows what geo.precision decides (here forced by GEO_CPU_DTYPE)."""
    from geo import precision

    monkeypatch.setattr(results, "has_cuda", lambda: False)
    for want, line in (("float32", "cpu float32"), ("bfloat16", "cpu bf16 channels_last")):
        monkeypatch.setenv(precision.ENV, want)
        info = results.device_info()
        assert info["device"] == "cpu" and info["compute"] == line
    assert info["cpu"] == results.cpu_model()
    assert info["cpu"] is None or (isinstance(info["cpu"], str) and info["cpu"].strip() == info["cpu"] != "")
