"""Tables 1 and 2 (geo.tables): one function computes every row of ours; the paper's rows
only stand beside them, labelled; Regression#3 never gets a number without video frames;
the CPU full path's caches resume."""
import json

import numpy as np
import pytest
import torch

from geo import regress, tables
from geo.data import load
from geo.models import Encoder, GeneratorConfig


@pytest.fixture(scope="module")
def embedded():
    return load("embedded")


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return Encoder(GeneratorConfig(width=4, points=8)).eval()


@pytest.fixture(scope="module")
def threedhp(shared_data):
    from geo.data.mpi_inf_3dhp import load_3dhp_mmpose

    p = shared_data / "fixtures" / "mpi_inf_3dhp" / "test_3dhp_test.npz"
    if not p.is_file():
        pytest.skip(f"{p} is absent")
    return load_3dhp_mmpose(p)


@pytest.fixture(scope="module")
def result(embedded, encoder, threedhp, tmp_path_factory):
    cache = tmp_path_factory.mktemp("tables-cache")
    r = tables.compute(embedded, encoder, "embedded", "quick", threedhp=threedhp, cache=cache, progress=False,
                       steps=3, device="cpu")
    return r, cache


def test_table1_has_every_row_and_only_ours(result, embedded):
    r, _ = result
    t1 = r["table1"]
    want = {(p, i, m) for p in ("#1", "#2", "#3") for i in ("sh", "gt") for m in tables.METHODS}
    want |= {(p, "image", m) for p in ("#1", "#2", "#3") for m in tables.IMAGE_METHODS}
    assert {(x["protocol"], x["input"], x["method"]) for x in t1} == want and len(t1) == len(want)
    assert all(x["source"] == "ours" for x in t1)
    actions = sorted({a for s in embedded.test_subjects for a in embedded.sequences[s]})
    for x in t1:
        if x["input"] == "image":   # Regression#3: never a number without video frames
            assert x["status"] == tables.NEEDS_FRAMES
            assert all(x.get(c) is None for c in (*tables.COLUMNS, *actions)), x
            continue
        vals = [x[a] for a in actions]
        assert np.isfinite(vals).all() and x["Avg."] == pytest.approx(np.mean(vals))   # H36M: mean over actions
        assert x["Avg."] == pytest.approx(np.mean(x["avg_per_seed"]))


def test_protocols_use_their_splits(result, embedded):
    r, _ = result
    assert r["protocol3"] == {"train_cameras": ["E-cam1", "E-cam2", "E-cam3"], "test_camera": "E-cam4"}
    full_tr = regress.make_split(embedded, embedded.train_subjects, "sh")
    full_te = regress.make_split(embedded, embedded.test_subjects, "sh")
    runs = {(x["input"], x["split"], x["method"]): x for x in r["runs"]}
    std, cam = runs[("sh", "standard", "Baseline#1")], runs[("sh", "camera", "Baseline#1")]
    assert std["train_rows"] == len(full_tr) and std["test_rows"] == len(full_te)
    assert cam["train_rows"] == sum(c != "E-cam4" for c in full_tr.cameras)
    assert cam["test_rows"] == sum(c == "E-cam4" for c in full_te.cameras)
    rows = {(x["protocol"], x["input"], x["method"]): x for x in r["table1"]}
    # #1 and #2 come from the same fits (MPJPE vs P-MPJPE), #3 from other fits
    for m in tables.METHODS:
        assert rows[("#2", "sh", m)]["Avg."] < rows[("#1", "sh", m)]["Avg."]
        assert rows[("#3", "sh", m)]["test_rows"] == cam["test_rows"]


def test_rows_match_an_independent_evaluation(result, embedded, encoder, threedhp):
    # Protocols #1/#2 of Martinez+G on GT 2D and its Table 2 row recomputed by hand from
    # geo.regress (the same seed and steps give the same fit alone or batched)
    from geo import metrics
    from geo.data.mpi_inf_3dhp import SCENES, as_h36m

    r, cache = result
    tr = regress.make_split(embedded, embedded.train_subjects, "gt")
    te = regress.make_split(embedded, embedded.test_subjects, "gt")
    g_tr, g_te = (tables.encode_cached(encoder, s.x2d, cache, progress=False) for s in (tr, te))   # cached G
    assert np.allclose(g_te[:64], regress.encode(encoder, te.x2d[:64]), atol=1e-5)
    cams = [c for s in embedded.train_subjects for c in embedded.cameras[s].values()]
    hd = as_h36m(threedhp, np.mean([c.f for c in cams], 0), np.mean([c.c for c in cams], 0))
    g_hd = regress.encode(encoder, hd["x2d"])
    train = {"x2d": tr.x2d, "y": tr.y, "g": g_tr}
    test = {"x2d": np.concatenate([te.x2d, hd["x2d"]]), "y": np.concatenate([te.y, hd["y"]]),
            "g": np.concatenate([g_te, g_hd])}
    cfg = regress.FitConfig("martinez", True, True, seed=0, profile="quick", hidden=256, steps=3)
    pred = regress.fit_many([cfg], train, test, [np.arange(len(tr))]).preds[0]
    ev = regress.evaluate(pred[:len(te)], te.y, te.actions)
    row = next(x for x in r["table1"] if (x["protocol"], x["input"], x["method"]) == ("#1", "gt", "Ours+Regression#2"))
    assert row["Avg."] == pytest.approx(ev["mpjpe"], rel=1e-4)
    row2 = next(x for x in r["table1"] if (x["protocol"], x["input"], x["method"]) == ("#2", "gt", "Ours+Regression#2"))
    assert row2["Avg."] == pytest.approx(ev["p_mpjpe"], rel=1e-4)
    z = np.zeros((len(hd["y"]), 1, 3), np.float32)
    want = metrics.pck_auc_by_group(np.concatenate([z, pred[len(te):]], 1), np.concatenate([z, hd["y"]], 1),
                                    hd["sequences"], SCENES)
    row3 = next(x for x in r["table2"] if x["method"] == "Ours+Regression#2")
    assert row3["overall_pck"] == pytest.approx(want["overall"]["pck"]) and row3["input"] == "gt"
    assert row3["overall_auc"] == pytest.approx(want["overall"]["auc"])
    mm = metrics.mpjpe(np.concatenate([z, pred[len(te):]], 1), np.concatenate([z, hd["y"]], 1)).mean()
    assert row3["overall_mpjpe"] == pytest.approx(mm, rel=1e-5)


def test_table2_rows(result):
    r, _ = result
    t2 = {x["method"]: x for x in r["table2"]}
    assert set(t2) == set(tables.METHODS) | set(tables.IMAGE_METHODS)
    for m in tables.METHODS:
        x = t2[m]
        assert 0 <= x["overall_pck"] <= 100 and 0 <= x["overall_auc"] <= x["overall_pck"]
        assert x["overall_frames"] == 2 and x["studio_gs_frames"] == 2 and "outdoor_pck" not in x
    for m in tables.IMAGE_METHODS:
        assert t2[m]["status"] == tables.NEEDS_FRAMES and "overall_pck" not in t2[m]
    assert r["threedhp"]["frames"] == 2 and r["threedhp"]["universal"] is False


def test_table2_without_the_test_set_says_so(embedded, encoder, result):
    r = tables.compute(embedded, encoder, "embedded", "quick", inputs=("gt",), protocols=("#1",), progress=False,
                       steps=2, device="cpu", cache=result[1])   # G from the cache
    for x in r["table2"]:
        assert "overall_pck" not in x and x["status"] in (tables.NEEDS_3DHP, tables.NEEDS_FRAMES)
    assert {x["protocol"] for x in r["table1"]} == {"#1"}


def test_unknown_protocol_is_named(embedded, encoder):
    with pytest.raises(ValueError, match="protocols \\['#4'\\]"):
        tables.compute(embedded, encoder, "embedded", "quick", protocols=("#1", "#4"), progress=False)


def test_paper_rows_are_labelled_and_beside_ours(result):
    r, _ = result
    md = tables.with_paper(r["table1"])
    paper = [x for x in md if x["source"] == "paper"]
    ours = [x for x in md if x["source"] == "ours"]
    assert len(ours) == len(r["table1"]) and paper
    assert all(x["method"].endswith("(paper)") and x["input"] == "paper" for x in paper)
    p1 = next(x for x in paper if x["protocol"] == "#1" and x["method"].startswith("Ours+Regression#2"))
    assert p1["Avg."] == 56.9 and p1["Direction"] == 45.9
    # our Regression#3 row stays empty: the paper's 46.3 is only in the paper's row
    r3 = next(x for x in ours if x["protocol"] == "#1" and x["method"] == "Ours+Regression#3")
    assert r3["Avg."] == "" and r3["status"] == tables.NEEDS_FRAMES
    assert len({tuple(x) for x in md}) == 1, "every markdown row has the same columns"
    avg = tables.averages(r["table1"])
    a = next(x for x in avg if (x["protocol"], x["input"], x["method"]) == ("#1", "sh", "Martinez et al. (no G)"))
    assert a["paper_avg"] == 62.9 and isinstance(a["ours_avg"], float)
    t2 = tables.with_paper(r["table2"], "table2")
    assert any(x["source"] == "paper" and x["overall_pck"] == 68.7 for x in t2)


def test_g_gain_is_without_minus_with(result):
    r, _ = result
    rows = {(x["protocol"], x["input"], x["method"]): x["Avg."] for x in r["table1"]}
    for g in tables.g_gain(r["table1"]):
        assert g["gain_mm"] == pytest.approx(rows[(g["protocol"], g["input"], g["without_G"])]
                                             - rows[(g["protocol"], g["input"], g["with_G"])])
    assert len(tables.g_gain(r["table1"])) == 3 * 2 * 2


def test_fits_are_cached_and_reused(result, embedded, encoder, monkeypatch):
    r, cache = result
    assert len(list(cache.glob("fit-*.npz"))) >= 2 and len(list(cache.glob("g-*.npy"))) == 5
    monkeypatch.setattr(regress, "fit_many", lambda *a, **k: pytest.fail("a cached fit was recomputed"))
    monkeypatch.setattr(regress, "encode", lambda *a, **k: pytest.fail("a cached G was re-encoded"))
    from geo.data.mpi_inf_3dhp import load_3dhp_mmpose

    again = tables.compute(embedded, encoder, "embedded", "quick", threedhp=load_3dhp_mmpose(r["threedhp"]["source"]),
                           cache=cache, progress=False, steps=3, device="cpu")
    assert json.dumps(again["table1"]) == json.dumps(r["table1"])


def test_encode_cached_resumes_after_a_cut(encoder, tmp_path, monkeypatch):
    x2d = np.random.default_rng(0).uniform(100, 900, (250, 16, 2)).astype(np.float32)
    want = regress.encode(encoder, x2d)
    real, calls = regress.encode, []

    class Cut(Exception):
        pass

    def cut(enc, x, device="cpu", batch=None):
        calls.append(len(x))
        if len(calls) == 3:
            raise Cut
        return real(enc, x, device, batch)

    monkeypatch.setattr(regress, "encode", cut)
    with pytest.raises(Cut):
        tables.encode_cached(encoder, x2d, tmp_path, chunk=100, progress=False)
    assert [p.name.endswith(".done") for p in tmp_path.glob("*.done")] == [True]
    assert (next(tmp_path.glob("*.done"))).read_text() == "200"
    calls.clear()
    got = tables.encode_cached(encoder, x2d, tmp_path, chunk=100, progress=False)
    assert calls == [50], calls                       # only the last chunk was encoded again
    assert np.allclose(got, want, atol=1e-5)
    assert not list(tmp_path.glob("*.done")) and not list(tmp_path.glob("*.part.npy"))
    calls.clear()
    assert np.array_equal(tables.encode_cached(encoder, x2d, tmp_path, chunk=100, progress=False), got)
    assert calls == []


def test_regression3_status_with_a_frames_folder(h36m_pack, shared_data):
    # frames for some rows: the status says how many test rows have one, and still no number
    from dataclasses import replace

    frames = shared_data / "fixtures" / "h36m"
    assert tables._frames_status(h36m_pack, frames) == tables.NEEDS_FRAMES        # none of S9/S11
    ds = replace(h36m_pack, test_subjects=("S1", "S5", "S7", "S8"))
    assert tables._frames_status(ds, frames).startswith("4 test frames found")
