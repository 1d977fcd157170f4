"""Every profile in one place: what ``quick``, ``cpu``, ``full`` (and the rehearsal ``tiny``)
mean for each stage of the work. Plain data, no code: the modules that use a table read it
from here, and a new profile is added here alone.

- :data:`TRAIN`: generator training, as :class:`geo.train.TrainConfig` fields
  (:func:`geo.train.config_for`);
- :data:`EXPERIMENTS`: Figures 5 and 6 and the tables: seeds, rows, regressor width
  (:mod:`geo.experiments`, :mod:`geo.tables`);
- :data:`SCHEDULES`: regressor training per kind, fc or martinez (:func:`geo.regress.schedule`);
- :data:`LIFT`: the lifter's Regression#1 head, its rows and width (:mod:`geo.lift`);
- :data:`RUNS`: ``python -m geo full-gpu``: which of the above a run combines, its time
  budget, what it saves (:mod:`geo.pipeline`);
- :data:`PUBLISHED`: the profiles whose results on Human3.6M are committed, and where
  (:func:`geo.results.figures_dir`).

``quick`` runs in minutes on 2 CPU cores (CI, notebooks under nbval); ``full`` is the
paper's setting on a GPU; ``cpu`` trains smaller generators on a CPU's bf16 units and
evaluates them with the full profile's regressors.
"""
from __future__ import annotations

# TRAIN: ``quick`` runs each variant in about a minute on 2 CPU cores (CI);
# ``full`` is for a GPU: steps are meant to be sized from measured throughput
# (:func:`geo.train.throughput.steps_for_budget`) and passed as an override. Every variant gets steps, not a
# wall-time cap: a cap would give DG, which runs two generators per step, half the steps.
# ``cpu`` trains on a CPU's bf16 units (geo.precision) what 2 cores can afford: width 16
# (2.2x the pairs/s of width 32 in bf16, benchmarks/results/bench_precision.json), batch 64
# (larger batches gain nothing there), a constant learning rate after warm-up so that a
# later run continues the same curve, a checkpoint every 5 minutes of wall time. Its steps
# are sized from the throughput measured on the machine (geo.pipeline, profile "cpu").
#
# ADOPTED: what the matched-budget generator study (figures/study_generators.md: DG+AUG,
# 96,000 pairs, width 16, Figure 5 at k = 500 with each arm's tuned recipe, Regression#1 vs
# Baseline#1 with SH / GT 2D; base -19.6% / -28.8%) showed, adopted by the profiles that
# make committed results (cpu, full); quick and the TrainConfig defaults stay as they were,
# so that the tests' runs and the generators committed before keep their identity.
# - line_width 6 map pixels (24 px at a 256 crop): -12.0% / -17.2%; 2.5% of the map
#   pixels on instead of 0.9% (S9/S11 pairs), so its held-out IoU (0.44 against 0.14) is
#   not comparable with thin maps';
# - lrc_norm "ratio" (L_rc over the batch's mismatched-pair L_rc, geo.losses): -17.6% /
#   -26.0%, and the template's share of the normalised clouds 0.39 instead of 0.94;
# - torus "train": virtual cameras fitted on the training subjects only (geo.cameras.TORI),
#   so that the test subjects shape no training pair;
# the detector-fitted virtual joints (virtual_joints "detector": -19.4% / -35.9%) are not.
ADOPTED = dict(lrc_norm="ratio", torus="train", generator=dict(line_width=6.0))

TRAIN = {
    "cpu": dict(steps=2000, batch=64, lr=1e-3, warmup=100, lr_min=None, checkpoint_every=10**9,
                checkpoint_seconds=300.0, log_every=25, eval_every=250,
                **{**ADOPTED, "generator": dict(width=16, **ADOPTED["generator"])}),
    "quick": dict(steps=60, batch=32, lr=2e-3, checkpoint_every=30, eval_every=30, generator=dict(width=8)),
    "full": dict(steps=2000, batch=512, lr=1e-3, warmup=100, lr_min=1e-5, checkpoint_every=500, log_every=25,
                 eval_every=250, compile=False, **{**ADOPTED, "generator": dict(width=32, **ADOPTED["generator"])}),
}


# Figures 5/6 and the tables, per profile: quick for CPU/CI, full for a GPU. Regressor schedules
# (epochs, batch, lr decay) come from geo.regress.schedule(kind, k, profile) (SCHEDULES). ``train_frames``
# / ``test_frames``: at most this many rows, evenly spaced over subjects/actions/cameras
# (geo.regress.subsample; None: all). Quick: 6,000 / 3,000 rows, because encoding G with a
# width-8 encoder costs 1.5-3 ms per frame on 2 CPU cores and fig5 + fig6 encode their rows
# 6 times (2 inputs, 4 variants). ``hidden``: regressor width (quick: 256, so that
# Martinez's network trains in seconds on 2 CPU cores; the paper's/Martinez's 1024 in full).
EXPERIMENTS = {
    "quick": dict(seeds=[0], per_decade=1, max_ks=3, fig6_seeds=[0], train_frames=6_000, test_frames=3_000,
                  hidden=256),
    "full": dict(seeds=[0, 1, 2], per_decade=2, max_ks=5, fig6_seeds=[0, 1], train_frames=None, test_frames=None,
                 hidden=1024),
}
EXPERIMENTS["cpu"] = EXPERIMENTS["full"]   # the cpu profile trains smaller generators; its regressors are the paper's


# Per profile and kind: batch, lr, lr_final, epochs (over all k labelled rows) and the
# fewest updates any fit gets (``min_steps``; small k). See :func:`schedule`.
SCHEDULES = {
    "full": {"fc": dict(batch=256, lr=1e-3, lr_final=1e-4, epochs=40, min_steps=4000),
             "martinez": dict(batch=256, lr=1e-3, lr_final=1e-4, epochs=40, min_steps=4000)},
    "quick": {"fc": dict(batch=256, lr=1e-3, lr_final=1e-4, epochs=4, min_steps=600),
              "martinez": dict(batch=256, lr=1e-3, lr_final=1e-4, epochs=2, min_steps=300)},
}
SCHEDULES["cpu"] = SCHEDULES["full"]   # as EXPERIMENTS: smaller generators, the paper's regressors


# Training / test rows of the regressor (evenly spaced over subjects, actions, cameras;
# geo.regress.subsample) and its width, per profile. Encoding G with the width-32 encoder
# costs ~15 ms per pose on one CPU core, which bounds the rows.
LIFT = {"quick": dict(train=600, test=200, hidden=256), "full": dict(train=16000, test=3000, hidden=1024)}
LIFT["cpu"] = LIFT["full"]


# Figures 3 and 4 (notebook 06, geo.qualitative): ``fig3`` self-occluded views shown, drawn
# from every ``every``-th test frame, the ``pool`` most occluded of which give the mean MPJPE;
# ``steps`` interpolation steps of Figure 4.
QUALITATIVE = {"quick": dict(fig3=3, every=10, steps=7, pool=50), "full": dict(fig3=4, every=4, steps=8, pool=200)}
QUALITATIVE["cpu"] = QUALITATIVE["full"]


RUNS = {
    # train_s: training time for the four generators together (<= 6 min: one GPU command's share of a 10-minute limit);
    # reserve_s: what the stage after training in the same command needs on an H100
    # (Figure 5: encoding + its regressor sweep), kept free inside the budget. Figure 6
    # and the regressor benchmark run as a second command (scripts/gpu_run.sh, GEO_STAGES).
    "full": dict(train_profile="full", exp_profile="full", train_s=270.0, reserve_s=120.0, bench=True,
                 train_over={}, regressors="martinez_gt,martinez_sh", regressors_args=[], tables_steps=None),
    # A CPU with bf16 units (geo.precision): the generators stage in the ``cpu`` training
    # profile (width 16), all of --budget-s spent training (train_s None), 10% of it kept
    # for the held-out evaluations and checkpoints; every variant's weights are saved, and
    # a later run continues those committed in weights/cpu/ (weights_from).
    "cpu": dict(train_profile="cpu", exp_profile="full", train_s=None, reserve_s=0.0, overhead=0.10, bench=False,
                train_over={}, regressors="martinez_gt,martinez_sh", regressors_args=[], tables_steps=None,
                weights_from="cpu", order=("DG+AUG", "SG+AUG", "SG", "AE"),   # a run cut short keeps Figure 5's encoder
                persist={"DG+AUG": ("phi", "psi", "mu", "nu"), "SG+AUG": ("phi", "psi"),
                                             "SG": ("phi", "psi"), "AE": ("phi", "psi")}),
    # CPU rehearsal: the same stages on tiny models and few frames.
    "tiny": dict(train_profile="quick", exp_profile="quick", train_s=8.0, reserve_s=0.0, bench=False,
                 train_over=dict(generator=dict(width=4, points=8), batch=4, checkpoint_every=10**9),
                 regressors="martinez_gt", regressors_args=["--quick", "--frames", "500", "--max-epochs", "1"],
                 tables_steps=20),
}


# Profiles whose runs on a Human3.6M copy are committed results, and where they go
# (geo.results.figures_dir): the GPU's full profile in figures/, the CPU's in
# figures/cpu/, so that a figure never mixes generators of the two.
PUBLISHED = {"full": "", "cpu": "cpu"}
