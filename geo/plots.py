"""The quantitative figures, drawn from their result rows: Figure 5 (label efficiency,
Sec. 4 "Results on Human3.6M") and Figure 6 (the ablation ladder). Computation lives in
:mod:`geo.experiments`; this module only draws, so that a figure drawn from a stored JSON
and one drawn from a fresh run are the same figure. The qualitative figures (3, 4, 7, 8)
are in :mod:`geo.qualitative`.
"""
from __future__ import annotations

import textwrap

import numpy as np

from geo.experiments import FIG6_RUNGS, PAPER

FIG5_STYLE = {"sh": ("-", "SH 2D"), "gt": ("--", "GT 2D")}          # line style per 2D input
FIG5_COLOR = {"Baseline#1": "C0", "Regression#1": "C1"}
FIG6_SAME_AS = {"BL": "= Sun et al.", "BL+DG+AUG": "= Ours+R#3"}     # Table 1, Protocol #1 averages


def seed_summary(rows) -> list[dict]:
    """Figure 5's rows aggregated over label seeds: one row per (input, method, k) with the
    number of seeds and the mean, min and max of MPJPE and P-MPJPE (the band drawn)."""
    out = []
    for inp, meth, k in sorted({(x["input"], x["method"], x["k"]) for x in rows}):
        sel = [x for x in rows if (x["input"], x["method"], x["k"]) == (inp, meth, k)]
        out.append({"input": inp, "method": meth, "k": k, "seeds": len(sel),
                    **{f"{m}_{name}": float(f([x[m] for x in sel])) for m in ("mpjpe", "p_mpjpe")
                       for name, f in (("mean", np.mean), ("min", np.min), ("max", np.max))}})
    return out


def figure5(rows, summary, gain, data_name: str, note: str = ""):
    """Figure 5: MPJPE and P-MPJPE against k for Baseline#1 (2D) and Regression#1 (G), per
    2D input, seed mean with a min-max band; the measured gain at k = 500 beside the paper's
    (labelled as a reference). ``summary``: :func:`seed_summary` of ``rows``; ``gain``:
    :func:`geo.experiments.gain_at`; ``note``: what the title says of the generators."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, m, label in zip(axes, ("mpjpe", "p_mpjpe"), ("MPJPE", "P-MPJPE")):
        for inp in (i for i in FIG5_STYLE if i in gain):
            for meth, color in FIG5_COLOR.items():
                s = [x for x in summary if x["input"] == inp and x["method"] == meth]
                k = [x["k"] for x in s]
                ax.plot(k, [x[f"{m}_mean"] for x in s], FIG5_STYLE[inp][0], color=color, marker="o", ms=3,
                        label=f"{meth}{' (G only)' if meth == 'Regression#1' else ''}, {FIG5_STYLE[inp][1]}")
                ax.fill_between(k, [x[f"{m}_min"] for x in s], [x[f"{m}_max"] for x in s], color=color, alpha=0.12)
        g = gain.get("sh", next(iter(gain.values())))
        ax.axvline(g["k"], color="grey", lw=0.8, ls=":")
        ax.text(0.5, -0.2, f"measured gain of Regression#1 at k={g['k']}: " +
                ", ".join(f"{i.upper()} {gain[i][m]:+.1f}%" for i in FIG5_STYLE if i in gain) +
                f"\npaper reports (Human3.6M, k≈500): {PAPER['fig5_gain_pct_at_500'][m]:+.2f}%  [reference, not our data]",
                transform=ax.transAxes, fontsize=8, ha="center", va="top", bbox=dict(fc="white", ec="grey"))
        ax.set(xscale="log", xlabel="labelled 3D training samples k", ylabel=f"{label} (mm)",
               title=f"({'ab'[m == 'p_mpjpe']}) {label}, Protocol #{1 + (m == 'p_mpjpe')}")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8, loc="upper right")
    fig.suptitle(f"Figure 5: Regression#1 on G vs Baseline#1 on 2D, data {data_name}{note}")
    fig.tight_layout()
    k_top, n_rows = max(x["k"] for x in rows), min(x["train_rows"] for x in rows)
    notes = []
    if k_top < n_rows:   # a sweep cut short says where it stops
        notes.append(f"k up to {k_top:,} of {n_rows:,} labelled training rows: the all-frames point is not in this run.")
    seeds_at = {}   # a point from fewer label seeds (e.g. all frames, hours on a CPU) has a narrower band: say so
    for x in summary:
        seeds_at.setdefault(x["seeds"], set()).add(x["k"])
    if len(seeds_at) > 1:
        notes.append("label seeds per point: " + "; ".join(
            f"{n} at k = {', '.join(f'{k:,}' for k in sorted(ks))}" for n, ks in sorted(seeds_at.items(), reverse=True)))
    for i, text in enumerate(notes):
        fig.text(0.5, -0.10 - 0.04 * i, text, ha="center", fontsize=8)
    # the k labels are not the only 3D behind G: +AUG's virtual views project the training subjects' 3D poses
    fig.text(0.5, -0.06, "DG+AUG's generator was trained on views of S1-S8 that include projections of their ground-truth "
             "3D poses (virtual cameras, Sec. 3.1): the k labels are not the only 3D the pipeline sees.",
             ha="center", fontsize=8)
    return fig


def _bars(ax, lad: dict, reg: str, x):
    """One regressor's ladder as bars from zero, each with its value and its difference to BL."""
    rungs = list(FIG6_RUNGS)
    done = [i for i, r in enumerate(rungs) if "mpjpe_mean" in lad.get(r, {})]
    means = [lad[rungs[i]]["mpjpe_mean"] for i in done]
    ax.bar([x[i] for i in done], means, yerr=[lad[rungs[i]]["mpjpe_std"] for i in done], capsize=3,
           color=["grey" if rungs[i] == "BL" else "C0" for i in done])
    bl = lad.get("BL", {}).get("mpjpe_mean")
    for i, m in zip(done, means):   # the value, and its difference to BL: the axis starts at 0, so say it in mm
        delta = "" if bl is None or rungs[i] == "BL" else f"\n{m - bl:+.1f}"
        ax.annotate(f"{m:.1f}{delta}", (x[i], m + lad[rungs[i]]["mpjpe_std"]), textcoords="offset points",
                    xytext=(0, 2), ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.18 * max(means))   # bars from zero: a truncated axis would make 0.2 mm look large
    for i, r in enumerate(rungs):
        if "skipped" in lad.get(r, {"skipped": "not run"}):
            ax.axvspan(i - 0.4, i + 0.4, fill=False, hatch="//", ec="lightgrey")
            ax.text(i, np.mean(ax.get_ylim()), "skipped:\nno video\nframes" if r == "BL+I_SG" else "skipped",
                    ha="center", va="center", fontsize=8, color="dimgrey")
    ax.set_xticks(x, rungs, rotation=35, ha="right")
    rows_used = next((v.get("labelled_rows", v["train_rows"]) for v in lad.values() if v and "train_rows" in v), None)
    ax.set(title=f"ours, {reg}" + (f"\n{rows_used:,} labelled training rows" if rows_used else ""),
           ylabel="MPJPE (mm), Protocol #1")
    ax.grid(axis="y", alpha=0.3)


def _paper_panel(ax, x):
    """The paper's two reported rungs (Regression#3), drawn as a labelled reference."""
    rungs, ref = list(FIG6_RUNGS), PAPER["fig6_mpjpe"]
    for r, v in ref.items():
        ax.plot(rungs.index(r), v, "D", color="C3", ms=8)
        ax.annotate(f"{v}\n{FIG6_SAME_AS.get(r, '')}", (rungs.index(r), v), textcoords="offset points", xytext=(0, 8),
                    va="bottom", ha="center", fontsize=8)
    ax.set_xticks(x, rungs, rotation=35, ha="right")
    ax.set_xlim(-0.9, len(rungs) - 0.1)
    ax.set_ylim(min(ref.values()) - 3, max(ref.values()) + 3)
    ax.set(title="paper (Regression#3)\nreference, not reproduced", ylabel="MPJPE (mm), as reported")
    ax.grid(axis="y", alpha=0.3)


def figure6(ladder: dict, n_seeds: int, note: str = ""):
    """Figure 6: one bar panel per regressor of ``ladder`` ({regressor: {rung: result}},
    :func:`geo.experiments.fig6`) and the paper's reference panel; the title says how many
    labelled rows (per seed when fewer than all) and ``n_seeds`` regressor seeds."""
    import matplotlib.pyplot as plt

    regs = list(ladder)
    fig, axes = plt.subplots(1, len(regs) + 1, figsize=(5.2 * len(regs) + 3.6, 4.8),
                             gridspec_kw={"width_ratios": [1] * len(regs) + [0.7]})
    x = np.arange(len(FIG6_RUNGS))
    for ax, reg in zip(axes, regs):
        _bars(ax, ladder[reg], reg, x)
    _paper_panel(axes[-1], x)
    results = [v for lad in ladder.values() for v in lad.values() if v and "train_rows" in v]
    n_lab = {v.get("labelled_rows", v["train_rows"]) for v in results}
    rows = ((f"{min(n_lab):,} labelled training rows" + (" per seed" if min(n_lab) < max(v["train_rows"] for v in results)
                                                         else "")) if n_lab else "all labelled frames")
    title = ("Figure 6: ablation ladder, SH 2D input, " + rows
             + f"; error bars: sd over {n_seeds} regressor seed(s) of one generator seed; under each value its "
             "difference to BL (mm)" + note)
    # wrapped to the figure's width: a long note (each generator's pairs) would widen the figure instead
    fig.suptitle(textwrap.fill(title, width=int(fig.get_figwidth() * 14)), fontsize=9)
    fig.tight_layout()
    return fig
