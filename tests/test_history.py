"""geo.train.history: one variant's successive runs joined into one training curve."""
import json

import pytest

from geo.train import plateau
from geo.train.history import SERIES, join, join_files

CONFIG = {"variant": "SG", "steps": 0, "batch": 64, "lr": 1e-3, "seed": 0, "log_every": 25, "eval_every": 250,
          "generator": {"width": 16, "line_width": 6.0}}


def _entry(start, stop, iou0, slope, wall=10.0, **config):
    """A run from ``start`` to ``stop`` steps as a generators JSON holds it (continued when start > 0)."""
    steps = list(range(start + 25, stop + 1, 25))
    evals = list(range(start + 250, stop + 1, 250))
    h = {"step": steps, "loss": [100.0 - s / 1000 for s in steps], "l2_ij": [100.0] * len(steps),
         "l2_ji": [None] * len(steps), "lrc": [None] * len(steps), "lr": [1e-3] * len(steps),
         "pairs_per_s": [150.0] * len(steps), "iou_step": evals, "iou": [iou0 + slope * s for s in evals],
         "wall_s": wall}
    if start:
        h.update(continued_from=f"weights/cpu/SG.json ({start} steps)", lr_start=start)
    return {"history": h, "quality": {"iou": iou0 + slope * stop}, "config": {**CONFIG, **config, "steps": stop},
            "steps": stop, "run": "SG-s0-abc"}


def test_runs_join_into_one_curve_with_a_segment_each():
    a, b, c = _entry(0, 4000, 0.3, 5e-5, wall=100.0), _entry(4000, 6000, 0.5, 1e-6, wall=50.0), \
        _entry(6000, 9000, 0.506, 0.0, wall=70.0)
    j = join([a, b, c], ["first.json", "second.json", "third.json"])
    h = j["history"]
    for k in SERIES:
        assert h[k] == a["history"][k] + b["history"][k] + c["history"][k]
    assert h["step"] == sorted(set(h["step"])) and h["iou_step"][-1] == 9000
    assert h["wall_s"] == 220.0 and j["steps"] == 9000 and j["quality"] == c["quality"] and j["config"] == c["config"]
    assert [s["steps"] for s in j["segments"]] == [[0, 4000], [4000, 6000], [6000, 9000]]
    assert [s["from"] for s in j["segments"]] == ["first.json", "second.json", "third.json"]
    assert "continued_from" not in j["segments"][0] and j["segments"][2]["continued_from"].endswith("(6000 steps)")
    # judged as a whole: the last 2,000 steps lie in the flat third run only after joining
    assert plateau(h["iou_step"], h["iou"])["flat"] and not plateau(a["history"]["iou_step"], a["history"]["iou"])["flat"]
    # a joined entry brings its segments when it is joined on
    again = join([join([a, b], ["first.json", "second.json"]), c], ["ab.json", "third.json"])
    assert again["segments"] == j["segments"] and again["history"] == h


def test_a_run_that_does_not_continue_the_previous_one_is_refused():
    a = _entry(0, 4000, 0.3, 5e-5)
    with pytest.raises(ValueError, match=r"late\.json.*stopped at step 4000"):
        join([a, _entry(5000, 6000, 0.5, 0.0)], ["early.json", "late.json"])       # a gap
    with pytest.raises(ValueError, match=r"stopped at step 4000"):
        join([a, _entry(0, 4000, 0.3, 5e-5)])                                      # the same run twice
    with pytest.raises(ValueError, match=r"entry 1.*\['lr'\]"):
        join([a, _entry(4000, 6000, 0.5, 0.0, lr=3e-4)])                           # another configuration
    j = join([a, _entry(4000, 6000, 0.5, 0.0, log_every=50)])                      # not part of a run's identity
    assert j["steps"] == 6000
    with pytest.raises(ValueError, match="one source per entry"):
        join([a], ["x.json", "y.json"])


def _extended(entry, stop, slope, wall):
    """``entry``'s run resumed from its own checkpoint and trained on to ``stop``: its run
    folder logs it from the run's start, its wall time counts on from ``entry``'s."""
    h0 = entry["history"]
    start = h0.get("lr_start", 0)
    more = _entry(entry["steps"], stop, h0["iou"][-1] - slope * entry["steps"], slope)
    h = {k: list(h0[k]) + more["history"][k] for k in SERIES}
    h.update(wall_s=h0["wall_s"] + wall, **({"continued_from": h0["continued_from"], "lr_start": start} if start else {}))
    return {**more, "history": h}


def test_a_run_resumed_from_its_own_checkpoint_adds_only_its_new_steps():
    a, b = _entry(0, 4000, 0.3, 5e-5, wall=100.0), _entry(4000, 6000, 0.5, 1e-6, wall=50.0)
    c = _extended(b, 8000, 0.0, wall=30.0)                 # logs 4000..8000, wall 80 s in all
    assert c["history"]["step"][0] == 4025 and c["history"]["lr_start"] == 4000
    j = join([join([a, b], ["a.json", "b.json"]), c], ["ab.json", "c.json"])
    step_by_step = join([a, b, _entry(6000, 8000, 0.5 + 1e-6 * 6000, 0.0, wall=30.0)])
    assert j["history"]["step"] == list(range(25, 8001, 25)) and j["history"]["iou_step"] == list(range(250, 8001, 250))
    assert all(j["history"][k] == step_by_step["history"][k] for k in SERIES)   # as if it had been a run of its own
    assert j["history"]["wall_s"] == 180.0 and j["steps"] == 8000
    assert [s["steps"] for s in j["segments"]] == [[0, 4000], [4000, 6000], [6000, 8000]]
    assert j["segments"][-1]["wall_s"] == 30.0 and j["segments"][-1]["from"] == "c.json" and "resumed" in j["segments"][-1]
    # resumed once more, it logs from 4000 again: only 8000..9000 is new, with its own wall time
    d = _extended(c, 9000, 0.0, wall=12.0)
    j3 = join([j, d], ["abc.json", "d.json"])
    assert j3["history"]["step"] == list(range(25, 9001, 25)) and j3["history"]["wall_s"] == 192.0
    assert [s["steps"] for s in j3["segments"]][-2:] == [[6000, 8000], [8000, 9000]] and j3["segments"][-1]["wall_s"] == 12.0
    # what it logs again must be what the joined curve holds
    bad = json.loads(json.dumps(c))
    bad["history"]["loss"][3] += 1.0
    with pytest.raises(ValueError, match=r"c\.json: resumes run SG-s0-abc .* loss up to step 6000 differs"):
        join([join([a, b]), bad], ["ab.json", "c.json"])
    with pytest.raises(ValueError, match=r"config differs.*\['lr'\]"):
        join([join([a, b]), {**c, "config": {**c["config"], "lr": 3e-4}}])
    # another run's folder is not a resumption: refused as a non-continuation
    with pytest.raises(ValueError, match="stopped at step 6000"):
        join([join([a, b]), {**c, "run": "SG-s1-def"}])


def test_files_join_per_variant_and_write_one_file(tmp_path):
    meta = {"data": "/data/h36m", "profile": "cpu", "seeds": [0], "device": {"device": "cpu"}}
    p1, p2, out = tmp_path / "one.json", tmp_path / "two.json", tmp_path / "out" / "generators.json"
    out.parent.mkdir()
    p1.write_text(json.dumps({"generators": {"SG": _entry(0, 4000, 0.3, 5e-5), "AE": _entry(0, 4000, 0.7, 1e-5)},
                              "meta": {**meta, "commit": "aaa", "wall_time_s": 100.0}}))
    p2.write_text(json.dumps({"generators": {"SG": _entry(4000, 6000, 0.5, 0.0)},
                              "meta": {**meta, "commit": "bbb", "wall_time_s": 50.0}}))
    blob = join_files([p1, p2], out, labels=["one.json at aaa", "two.json"])
    assert json.loads(out.read_text()) == json.loads(json.dumps(blob))
    assert list(blob["generators"]) == ["SG", "AE"]
    assert blob["generators"]["SG"]["steps"] == 6000 and blob["generators"]["AE"]["steps"] == 4000
    assert [s["from"] for s in blob["generators"]["SG"]["segments"]] == ["one.json at aaa", "two.json"]
    m = blob["meta"]
    assert (m["data"], m["profile"], m["commit"], m["wall_time_s"]) == ("/data/h36m", "cpu", "bbb", 150.0)
    assert [x["file"] for x in m["joined_from"]] == ["one.json at aaa", "two.json"]
    assert sorted(x.name for x in out.parent.iterdir()) == ["generators.json"]   # no temp file left
    p2.write_text(json.dumps({"generators": {"SG": _entry(4000, 6000, 0.5, 0.0)}, "meta": {**meta, "profile": "full"}}))
    with pytest.raises(ValueError, match=r"two\.json: meta\.profile 'full'.*'cpu'"):
        join_files([p1, p2], tmp_path / "x.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match=r"bad\.json: not a generators JSON"):
        join_files([tmp_path / "bad.json"], tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_the_script_joins_files_and_says_what_is_wrong(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "join_generators", Path(__file__).resolve().parents[1] / "scripts" / "join_generators.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    meta = {"data": "/data/h36m", "profile": "cpu"}
    p1, p2, out = tmp_path / "one.json", tmp_path / "two.json", tmp_path / "joined.json"
    p1.write_text(json.dumps({"generators": {"SG": _entry(0, 4000, 0.3, 5e-5)}, "meta": meta}))
    p2.write_text(json.dumps({"generators": {"SG": _entry(4000, 6000, 0.5, 0.0)}, "meta": meta}))
    assert mod.main([str(out), str(p1), str(p2), "--label", f"{p1}=one at aaa"]) == 0
    assert "SG: 6000 steps in 2 segments" in capsys.readouterr().out
    assert json.loads(out.read_text())["generators"]["SG"]["segments"][0]["from"] == "one at aaa"
    assert mod.main([str(tmp_path / "again.json"), str(p2), str(p1)]) == 2      # in the wrong order
    assert "stopped at step 6000" in capsys.readouterr().err and not (tmp_path / "again.json").exists()
    with pytest.raises(SystemExit):
        mod.main([str(out), str(p1), "--label", "elsewhere.json=x"])              # labels name an input
