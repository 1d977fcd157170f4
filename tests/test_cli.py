"""`python -m geo`: bad arguments are refused (exit 2, the argument named on stderr)
before any notebook, pipeline or training starts; paths resolve against the caller's cwd."""
import os
from pathlib import Path

import pytest

import geo.__main__ as cli


@pytest.fixture(autouse=True)
def no_heavy_work(monkeypatch):
    """Were an argument let through, fail at once instead of running notebooks or stages."""
    import geo.pipeline

    def refuse(*a, **k):
        raise AssertionError(f"heavy work started with {a} {k}")

    monkeypatch.setattr(cli, "reproduce", refuse)
    monkeypatch.setattr(geo.pipeline, "run", refuse)


def _fails(capsys, argv, *words):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("geo: error:") and all(w in err for w in words), err
    return err


def test_unknown_stage(capsys, tmp_path):
    _fails(capsys, ["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--stages", "bogus"],
           "--stages", "bogus")
    _fails(capsys, ["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--stages", ","], "--stages")
    assert not (tmp_path / "o").exists()


def test_non_positive_budget(capsys, tmp_path):
    _fails(capsys, ["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--budget-s", "0"],
           "--budget-s")


def test_missing_precomputed_folder(capsys):
    _fails(capsys, ["reproduce", "--precomputed", "/nonexistent"], "--precomputed", "/nonexistent")


def test_precomputed_folder_without_results(capsys, tmp_path):
    _fails(capsys, ["reproduce", "--precomputed", str(tmp_path)], "--precomputed", "fig5.json")


@pytest.mark.parametrize("cmd", [["reproduce"], ["full-gpu", "--out", "/tmp/geo-cli-test-never-written"]])
def test_missing_data_folder(capsys, cmd):
    _fails(capsys, cmd + ["--data", "/nonexistent"], "/nonexistent", "folder not found")
    assert not Path("/tmp/geo-cli-test-never-written").exists()


def test_unknown_profile_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["reproduce", "--profile", "bogus"])
    assert e.value.code == 2 and "--profile" in capsys.readouterr().err


def test_relative_data_path_resolves_against_cwd(h36m_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rel = os.path.relpath(h36m_dir, tmp_path)
    assert not os.path.isabs(rel)
    got = cli.check_data(rel)
    assert os.path.isabs(got) and Path(got) == h36m_dir.resolve()
    assert cli.check_data("embedded") == "embedded"
