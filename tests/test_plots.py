"""The quantitative figures drawn from result rows (geo.plots): the seed aggregation, and
that each figure says what it shows."""
import matplotlib

matplotlib.use("Agg")


from geo import plots
from geo.experiments import FIG6_RUNGS, gain_at


def _rows():
    rows = []
    for inp in ("sh", "gt"):
        for meth, base in (("Baseline#1", 100.0), ("Regression#1", 90.0)):
            for k in (50, 500):
                for seed in (0, 1, 2):
                    v = base + seed - k / 100
                    rows.append({"input": inp, "method": meth, "k": k, "seed": seed, "mpjpe": v, "p_mpjpe": v / 2,
                                 "train_rows": 1000})
    return rows


def test_seed_summary_per_group():
    s = plots.seed_summary(_rows())
    assert len(s) == 8 and all(x["seeds"] == 3 for x in s)
    x = next(x for x in s if (x["input"], x["method"], x["k"]) == ("sh", "Regression#1", 500))
    assert (x["mpjpe_mean"], x["mpjpe_min"], x["mpjpe_max"]) == (86.0, 85.0, 87.0) and x["p_mpjpe_mean"] == 43.0


def test_figure5_says_gain_and_cut_sweep():
    rows = _rows()
    fig = plots.figure5(rows, plots.seed_summary(rows), gain_at(rows, 500), "h36m", " (cpu profile)")
    texts = [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]
    assert fig._suptitle.get_text().endswith("data h36m (cpu profile)")
    assert any("SH +10.4%" in t and "paper reports" in t for t in texts), texts   # (96 - 86) / 96, beside the paper
    assert any("k up to 500 of 1,000" in t for t in texts), texts                  # the sweep stops short of all rows
    assert not any("label seeds per point" in t for t in texts), texts             # every point has 3 seeds


def test_figure5_says_which_points_have_fewer_seeds():
    """The all-frames point run on one label seed (a run of its own) is drawn with the rest,
    and the figure says which k have how many seeds; no cut-sweep note when it is there."""
    rows = _rows() + [{"input": inp, "method": meth, "k": 1000, "seed": 0, "mpjpe": v, "p_mpjpe": v / 2,
                       "train_rows": 1000} for inp in ("sh", "gt") for meth, v in (("Baseline#1", 80.0),
                                                                                   ("Regression#1", 75.0))]
    fig = plots.figure5(rows, plots.seed_summary(rows), gain_at(rows, 500), "h36m")
    texts = [t.get_text() for t in fig.texts]
    assert "label seeds per point: 3 at k = 50, 500; 1 at k = 1,000" in texts, texts
    assert not any("k up to" in t for t in texts), texts
    assert list(fig.axes[0].lines[0].get_xdata()) == [50, 500, 1000]


def test_figure6_bars_and_rows_per_seed():
    lad = {r: {"mpjpe_mean": 90.0 - i, "mpjpe_std": 0.5, "mpjpe_seeds": [90.0 - i] * 2, "train_rows": 2000,
               "labelled_rows": 500} for i, r in enumerate(FIG6_RUNGS)}
    lad["BL+I_SG"] = {"skipped": "no video frames"}
    fig = plots.figure6({"Regression#1": lad, "Regression#2": lad}, n_seeds=2, note="")
    assert len(fig.axes) == 3
    title = fig._suptitle.get_text()
    assert "500 labelled training rows per seed" in title and "sd over 2 regressor seed(s)" in title
    notes = [t.get_text() for t in fig.axes[0].texts]
    assert "skipped:\nno video\nframes" in notes and any(t.endswith("\n-4.0") for t in notes), notes
    assert fig.axes[0].get_ylim()[0] == 0


def test_figure6_wraps_a_long_note_to_its_width():
    lad = {r: {"mpjpe_mean": 90.0, "mpjpe_std": 0.5, "mpjpe_seeds": [90.0] * 2, "train_rows": 2000}
           for r in FIG6_RUNGS}
    note = " (cpu profile: " + "; ".join(f"{v} width 16, 982,528 training pairs" for v in ("AE", "SG", "SG+AUG", "DG+AUG")) + ")"
    fig = plots.figure6({"Regression#1": lad, "Regression#2": lad}, n_seeds=2, note=note)
    lines = fig._suptitle.get_text().split("\n")
    assert len(lines) > 1 and max(map(len, lines)) <= fig.get_figwidth() * 14
    assert " ".join(lines).endswith(note.strip())   # wrapped, not cut
