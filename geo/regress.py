"""3D pose regression on the frozen representation, and the experiments of Figures 5/6.

Paper Sec. 3.4: F(I) = F_regression(F_G(F_2D(I))) = F_regression(G); "we implement the
regression part by simply constructing a two-layers fully-connected neural network".
Sec. 4: "OursShallow" = Regression#1 on G alone; Baseline#1 = the same regressor on the
2D detections; Regression#2 = Martinez et al. (2017) on 2D + G.

Data: every (frame, camera) of the chosen subjects with 3D ground truth. Inputs: SH16 2D
(stacked-hourglass detections, or the projected ground truth with ``input2d="gt"``) and G
from a frozen encoder. Targets: the 16 non-root joints, root-relative, in the camera frame
(mm), as in Martinez et al. 2017. Normalisation (Martinez et al.): inputs are z-scored
with the mean/std of all training frames of the fit (2D and G need no 3D labels), targets
with those of the fit's k labelled frames.
Evaluation: Protocol #1 MPJPE and Protocol #2 P-MPJPE on all test frames (all cameras),
averaged per action, then over actions (H36M convention).

Training: :func:`fit_many` trains F regressors of one architecture as ONE batched model
(:class:`geo.models.BatchedRegressor`, weights with a leading fit dimension, ``baddbmm``),
each with its own labelled rows, seed (init, shuffling, dropout) and normalisation; its
schedule (epochs, batch, lr decay) comes from :func:`schedule`, chosen on a validation
split of the training subjects only (S1 S5 S6 S7 -> S8; ``benchmarks/regressors.py
--validate``), never on S9/S11.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from geo import metrics, precision
from geo.cameras import world_to_camera
from geo.data import Dataset, aligned_length
from geo.models import BatchedRegressor, Regressor, RegressorConfig
from geo.profiles import SCHEDULES
from geo.render import LINE_WIDTH, render
from geo.skeleton import h36m17_to_sh16

VALIDATION = (("S1", "S5", "S6", "S7"), ("S8",))   # the schedule study: train, validate


@dataclass
class Split:
    x2d: np.ndarray        # (N, 16, 2) px
    y: np.ndarray          # (N, 16, 3) mm, root-relative camera frame, non-root joints
    actions: list
    cameras: list
    subjects: list = field(default_factory=list)   # per row
    frames: np.ndarray | None = None               # per row: frame index in its sequence (10 Hz)
    note: str = "all frames"

    def __len__(self):
        return len(self.y)

    def take(self, idx, note: str | None = None) -> "Split":
        idx = np.asarray(idx)
        pick = lambda lst: [lst[i] for i in idx]   # noqa: E731
        return Split(self.x2d[idx], self.y[idx], pick(self.actions), pick(self.cameras), pick(self.subjects),
                     None if self.frames is None else self.frames[idx], note or self.note)


def views(ds: Dataset, subjects, cameras=None):
    """(subject, action, sequence, camera id, camera) of every sequence of ``subjects``
    with 3D ground truth, seen by each camera (``cameras``: only these ids; None: all)."""
    for s in subjects:
        for a, seq in ds.sequences[s].items():
            if seq.poses_3d is None:
                continue
            for cid, cam in ds.cameras[s].items():
                if cameras is None or cid in cameras:
                    yield s, a, seq, cid, cam


def make_split(ds: Dataset, subjects, input2d: str = "sh", cameras=None) -> Split:
    """All (frame, camera) samples of ``subjects`` with 3D ground truth; ``cameras``: only
    these camera ids (Protocol #3's camera split, :func:`protocol3_cameras`), None: all."""
    xs, ys, acts, cams, subs, frames = [], [], [], [], [], []
    for s, a, seq, cid, cam in views(ds, subjects, cameras):
        if input2d == "sh" and cid not in seq.poses_2d:
            continue
        n = len(seq.poses_3d) if input2d == "gt" else aligned_length(
            len(seq.poses_3d), len(seq.poses_2d[cid]), f"{ds.source}[{s}/{a}] 3D poses",
            f"{ds.source}[{s}/{a}/{cid}] 2D detections", ds.fps)
        p3 = seq.poses_3d[:n].astype(np.float64)
        xc = world_to_camera(p3, cam.R, cam.T)
        ys.append((xc[:, 1:] - xc[:, :1]).astype(np.float32))
        if input2d == "gt":
            xs.append(h36m17_to_sh16(cam.project(p3)).astype(np.float32))
        else:
            xs.append(seq.poses_2d[cid][:n])
        acts += [a] * n
        cams += [cid] * n
        subs += [s] * n
        frames.append(np.arange(n))
    if not xs:
        raise ValueError(f"no frames with 3D for subjects {list(subjects)}"
                         + ("" if cameras is None else f" and cameras {list(cameras)}"))
    return Split(np.concatenate(xs), np.concatenate(ys), acts, cams, subs, np.concatenate(frames))


def protocol3_cameras(ds: Dataset) -> tuple[tuple[str, ...], str]:
    """Protocol #3 (paper Sec. 4, after Fang et al. 2018): "subjects 1, 5, 6, 7 and 8 in 3
    camera views for training, while 9 and 11 in the other camera view for testing".
    Returns (training cameras, test camera): the test camera is the dataset's fourth camera
    in its own order (Human3.6M: 60457274, "camera 4"), the three others train. Not the
    first camera: its stacked-hourglass detections of S11 Directions are missing (damaged
    video), so it could not be tested on every test sequence. Fang et al. do not name the
    camera in the paper's text; every choice of one is a choice, and this one is stated."""
    cams = list(ds.cameras[ds.train_subjects[0]])
    for s in (*ds.train_subjects, *ds.test_subjects):
        if list(ds.cameras[s]) != cams:
            raise ValueError(f"{ds.source}: {s} has cameras {list(ds.cameras[s])}, {ds.train_subjects[0]} has "
                             f"{cams}; Protocol #3 needs the same four cameras for every subject")
    if len(cams) != 4:
        raise ValueError(f"{ds.source}: {len(cams)} cameras {cams}; Protocol #3 needs four")
    return tuple(cams[:3]), cams[3]


def subsample(split: Split, n: int | None) -> Split:
    """At most ``n`` rows, evenly spaced over the rows (which run subject / action / camera
    / frame), so every subject, action and camera keeps its share; deterministic. ``None``
    or ``n >= len``: the split itself."""
    if n is None or n >= len(split):
        return split
    idx = np.unique(np.linspace(0, len(split) - 1, n).round().astype(np.int64))
    return split.take(idx, note=f"every {len(split) / len(idx):.2f}-th row: {len(idx)} of {len(split)} rows")


@torch.no_grad()
def encode(encoder, x2d: np.ndarray, device="cpu", batch: int | None = None, progress: bool | None = None) -> np.ndarray:
    """G (N, M, 3) of the frozen encoder for 2D poses (N, 16, 2): render, then encode, in
    batches of ``batch`` (default 4096 on CUDA, 1024 on the CPU, where 4096 64x64 map
    stacks no longer fit the caches: 1024 measured faster). ``progress``: a tqdm bar with
    its ETA on stderr (None: shown when there are more than 8 batches -- on 2 CPU cores
    the width-32 encoder does about 150 poses/s, so a whole Human3.6M copy takes minutes
    to an hour)."""
    from tqdm import tqdm

    encoder.eval()
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    batch = batch or (4096 if cuda else 1024)
    show = len(x2d) > 8 * batch if progress is None else progress
    width = getattr(encoder, "line_width", LINE_WIDTH)   # the maps drawn as the encoder was trained on them
    out = []
    for s in tqdm(range(0, len(x2d), batch), desc=f"encode G ({len(x2d)} poses, batch {batch})", unit="batch",
                  disable=not show):
        x = torch.as_tensor(x2d[s:s + batch], device=dev)
        maps = precision.to_layout(render(x, width=width, dtype=precision.map_dtype(dev)))
        with precision.autocast(dev):   # bf16 where the device has bf16 units (geo.precision)
            out.append(encoder(maps).float().cpu())
    return torch.cat(out).numpy()


# ----------------------------------------------------------------------------- schedule
@dataclass(frozen=True)
class Schedule:
    """How one fit trains: ``steps`` Adam updates of ``batch`` rows (each epoch a fresh
    permutation of the k labelled rows, the last partial batch dropped), lr decaying
    exponentially from ``lr`` to ``lr_final`` over the steps. ``epochs`` = steps * batch / k."""
    epochs: float
    batch: int
    lr: float
    lr_final: float
    steps: int


def schedule(kind: str, k: int, profile: str = "full") -> Schedule:
    """The training schedule of a regressor of ``kind`` on ``k`` labelled rows.

    Rule: batch = min(256, k); steps = max(min_steps, epochs * floor(k / batch)), i.e. at
    all frames ``epochs`` (40) passes, at small k at least ``min_steps`` (4000) updates
    -- many passes (k = 50: 4000 epochs of one full batch; k = 500: 2048; k = 5000: 205).
    Adam, lr decaying exponentially from 1e-3 to 1e-4 over the run.

    Martinez et al.'s schedule (Adam 1e-3, decay 0.96 per 100k steps, batch 64, 200 epochs of
    the 50 Hz frames) adapted to the 10 Hz rows: batch 256, the decay per run (lr / lr_final
    = 10), 40 epochs; ``fc`` (the paper's 2-layer FC, dropout 0.25) uses the same rule.
    Chosen on S8 with S1 S5 S6 S7 for training (S9/S11 never loaded): the numbers are in
    ``benchmarks/results/regressors_validation.json`` and ``benchmarks/results/README.md``.

    ``quick``: a CPU smoke profile, a few epochs (not validated)."""
    if profile not in SCHEDULES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(SCHEDULES)}")
    if kind not in SCHEDULES[profile]:
        raise ValueError(f"unknown regressor kind {kind!r}; expected one of {sorted(SCHEDULES[profile])}")
    if k < 2:
        raise ValueError(f"k = {k}: a regressor needs at least 2 labelled rows")
    p = SCHEDULES[profile][kind]
    batch = int(min(p["batch"], k))
    steps = int(max(p["min_steps"], math.ceil(p["epochs"] * (k // batch))))
    return Schedule(epochs=steps * batch / k, batch=batch, lr=p["lr"], lr_final=p["lr_final"], steps=steps)


# ---------------------------------------------------------------------------------- fits
@dataclass
class FitConfig:
    kind: str = "fc"          # "fc" or "martinez"
    use_2d: bool = True
    use_g: bool = False
    steps: int | None = None  # None: from schedule(kind, k, profile); else a fixed count
    batch: int | None = None  # None: from the schedule
    lr: float | None = None   # None: from the schedule
    seed: int = 0
    epochs: float | None = None     # None: from the schedule (sets steps when steps is None)
    lr_final: float | None = None   # None: from the schedule
    profile: str = "full"
    hidden: int = 1024
    dropout: float | None = None    # None: the kind's default (RegressorConfig)
    weight_decay: float = 0.0       # Adam's L2 term (torch.optim.Adam weight_decay); 0: none, as in every figure

    def schedule(self, k: int) -> Schedule:
        s = schedule(self.kind, k, self.profile)
        batch = int(min(self.batch or s.batch, k))
        steps = self.steps
        if steps is None and self.epochs is not None:
            steps = max(1, math.ceil(self.epochs * (k // batch)))
        steps = steps or (s.steps if batch == s.batch else max(1, round(s.steps * s.batch / batch)))
        lr = self.lr or s.lr
        lr_final = self.lr_final or (s.lr_final * lr / s.lr)
        return Schedule(steps * batch / k, batch, lr, lr_final, int(steps))


def _flat(d: dict, key: str) -> np.ndarray:
    return d[key].reshape(len(d[key]), -1).astype(np.float32)


def _keys(cfg: FitConfig) -> list[str]:
    ins = (["x2d"] if cfg.use_2d else []) + (["g"] if cfg.use_g else [])
    if not ins:
        raise ValueError("a fit needs 2D joints, G, or both as input")
    return ins


@dataclass
class FitResult:
    """What :func:`fit_many` returns, one entry per config in order: the test
    predictions ``preds`` ((N_test, 16, 3) mm), ``info`` (schedule, group size, wall time,
    dtype) and ``fitted`` (the trained regressor and its normalisation, :class:`Fitted`,
    to keep or save). Indexing and iterating give the predictions."""
    preds: list
    info: list
    fitted: list

    def __getitem__(self, i):
        return self.preds[i]

    def __iter__(self):
        return iter(self.preds)

    def __len__(self):
        return len(self.preds)


def fit_many(cfgs, train, test, labelled, device="cpu", progress: bool = False, bf16: bool | None = None) -> FitResult:
    """Train one regressor per ``cfgs[i]`` on rows ``labelled[i]`` of the training data and
    predict the test rows. ``train`` / ``test``: a dict with "x2d" (N, 16, 2), "g" (N, M, 3)
    (when a config uses G) and "y" (N, 16, 3) mm shared by all fits, or a list of such
    dicts, one per fit (e.g. each ablation rung's G). Fits of equal (kind, inputs and their
    sizes, k, schedule, hidden) train together as one batched model; each keeps its own
    seed (init, shuffling, dropout), labelled rows and normalisation, so a fit gives the
    same predictions alone or batched. No host sync inside the training loop.
    ``bf16``: the training forward and backward under bf16 autocast (float32 master
    weights, Adam state, loss and normalisation); None: :func:`use_bf16` of the kind on
    ``device``."""
    cfgs = list(cfgs)
    n = len(cfgs)
    trains = train if isinstance(train, (list, tuple)) else [train] * n
    tests = test if isinstance(test, (list, tuple)) else [test] * n
    labs = [np.asarray(lab, np.int64) for lab in labelled]
    if not (len(trains) == len(tests) == len(labs) == n):
        raise ValueError(f"{n} configs but {len(trains)} train, {len(tests)} test, {len(labs)} labelled sets")
    groups: dict = {}
    for i, c in enumerate(cfgs):
        dims = tuple(_flat(trains[i], key).shape[1] for key in _keys(c))
        key = (c.kind, tuple(_keys(c)), dims, len(labs[i]), c.schedule(len(labs[i])), c.hidden, c.dropout,
               c.weight_decay)   # one optimiser per group: fits of another weight decay train apart
        groups.setdefault(key, []).append(i)
    res = FitResult([None] * n, [None] * n, [None] * n)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    for key, idx in groups.items():
        t0 = time.time()
        try:
            torch.backends.cuda.matmul.allow_tf32 = True     # TF32 matmuls on CUDA: fine for these nets
            dev = torch.device(device)
            half = use_bf16(key[0], dev) if bf16 is None else bool(bf16) and precision.bf16(dev)
            preds, sched, group_fits = _fit_group([cfgs[i] for i in idx], [trains[i] for i in idx],
                                                  [tests[i] for i in idx], [labs[i] for i in idx], dev, half,
                                                  progress)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32
        wall = time.time() - t0
        if progress:
            print(f"  fits {idx}: {key[0]} on {'+'.join(key[1])}, k={key[3]}: {sched.steps} steps, "
                  f"{sched.epochs:.1f} epochs, batch {sched.batch}, {wall:.1f} s", flush=True)
        for i, p, f in zip(idx, preds, group_fits):
            res.preds[i], res.fitted[i] = p, f
            res.info[i] = {"epochs": sched.epochs, "steps": sched.steps, "batch": sched.batch, "lr": sched.lr,
                           "lr_final": sched.lr_final, "group_size": len(idx), "group_wall_s": wall,
                           "dtype": "bf16" if half else "float32"}
    return res


# Kinds whose training runs under bf16 autocast where the device has bf16 units: only
# where it was measured to keep the S9/S11 MPJPE within 0.3 mm of float32 on the same fit
# (benchmarks/results/bench_precision.json, "regressor" rows). On CUDA TF32 is used instead.
BF16_KINDS: tuple = ()

# A fit this long shows a step bar when asked (all frames: tens of minutes on a CPU);
# shorter ones say only their summary line.
BAR_FROM_STEPS = 2000


def use_bf16(kind: str, device) -> bool:
    """Whether fits of ``kind`` train under bf16 autocast on ``device`` (:data:`BF16_KINDS`)."""
    dev = torch.device(device)
    return dev.type == "cpu" and kind in BF16_KINDS and precision.bf16(dev)


def _stack_sources(dicts, key):
    """Unique source arrays (by identity) concatenated, and each fit's row offset."""
    uniq, offs, size = {}, [], 0
    parts = []
    for d in dicts:
        if id(d) not in uniq:
            uniq[id(d)] = size
            a = _flat(d, key)
            parts.append(a)
            size += len(a)
        offs.append(uniq[id(d)])
    return np.concatenate(parts), offs


@dataclass
class _Group:
    """The inputs of a group of fits on one device: stacked sources (``X``, ``Xt``: train and
    test inputs by key; ``Y``: train targets), each fit's input and target normalisation
    (``stats``; ``ym``, ``ys`` on the host) and its labelled rows as indices into the stack."""
    ins: list
    X: dict
    Xt: dict
    stats: dict
    Y: torch.Tensor
    ym: np.ndarray
    ys: np.ndarray
    rows: torch.Tensor

    def inputs(self, idx, test: bool = False) -> dict:
        src = self.Xt if test else self.X
        return {key: (src[key][idx] - self.stats[key][0]) / self.stats[key][1] for key in self.ins}


def _stack_group(cfgs, trains, tests, labs, dev) -> _Group:
    """Each fit's sources stacked once (fits sharing a source dict share its rows), with
    every fit's own normalisation: inputs over its training source, targets over its
    labelled rows."""
    ins = _keys(cfgs[0])
    tensor = lambda a: torch.as_tensor(a, device=dev)   # noqa: E731
    X, Xt, stats = {}, {}, {}
    for key in ins:
        a, off = _stack_sources(trains, key)
        at, _ = _stack_sources(tests, key)
        X[key], Xt[key] = tensor(a), tensor(at)
        m = np.stack([a[o:o + len(trains[f][key])].mean(0) for f, o in enumerate(off)])
        s = np.stack([a[o:o + len(trains[f][key])].std(0) + 1e-6 for f, o in enumerate(off)])
        stats[key] = (tensor(m[:, None]), tensor(s[:, None]))
    ya, yoff = _stack_sources(trains, "y")
    ylab = [ya[o + lab] for o, lab in zip(yoff, labs)]
    ym = np.stack([v.mean(0) for v in ylab])[:, None]
    ys = np.stack([v.std(0) + 1e-6 for v in ylab])[:, None]
    # labelled rows per fit as indices into the stacked sources (the same offsets for
    # every key: each source dict contributes its rows to every stacked array)
    rows = tensor(np.stack([o + lab for o, lab in zip(yoff, labs)]))
    _, xoff = _stack_sources(trains, ins[0])
    if xoff != yoff:
        raise AssertionError("sources stacked inconsistently")
    return _Group(ins, X, Xt, stats, tensor(ya), ym, ys, rows)


def _train_group(model, grp: _Group, cfgs, sched: Schedule, k: int, dev, half: bool, progress: bool):
    """Adam on every fit's loss at once, lr decaying exponentially; each fit draws its own
    batches and dropout masks from its own generator."""
    from tqdm import tqdm   # a bar with its ETA for long fits (all frames: tens of minutes on a CPU)

    c0 = cfgs[0]
    opt = torch.optim.Adam(model.parameters(), lr=sched.lr, weight_decay=c0.weight_decay,
                           fused=True)   # fused kernels on CUDA and CPU alike
    gamma = (sched.lr_final / sched.lr) ** (1.0 / max(sched.steps, 1))
    gens = [torch.Generator(device=dev).manual_seed(10_007 * (c.seed + 1)) for c in cfgs]
    b, per_epoch = sched.batch, max(1, k // sched.batch)
    ym_t, ys_t = (torch.as_tensor(v, device=dev) for v in (grp.ym, grp.ys))
    model.train()
    order = None
    bar = tqdm(total=sched.steps, desc=f"fit {c0.kind} x{len(cfgs)} k={k}", unit="step", mininterval=30,
               disable=not (progress and sched.steps >= BAR_FROM_STEPS))
    for t in range(sched.steps):
        j = t % per_epoch
        if j == 0:
            perm = torch.stack([torch.randperm(k, generator=g, device=dev) for g in gens])
            order = grp.rows.gather(1, perm)
        idx = order[:, j * b:(j + 1) * b]                      # (F, b)
        xb = grp.inputs(idx)
        yb = (grp.Y[idx] - ym_t) / ys_t
        noise = torch.stack([torch.rand((model.n_dropout, len(idx[0]), c0.hidden), generator=g, device=dev)
                             for g in gens])
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=half):
            pred = model(xb.get("x2d"), xb.get("g"), noise)
        loss = (pred.float() - yb).pow(2).mean((1, 2)).sum()   # each fit's own mean loss, in float32
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for pg in opt.param_groups:
            pg["lr"] = sched.lr * gamma ** (t + 1)
        bar.update(1)
    bar.close()
    model.eval()


@torch.no_grad()
def _predict_group(model, grp: _Group, tests, dev) -> list:
    """Each fit's test predictions (N_test, 16, 3) mm, in chunks."""
    _, toff = _stack_sources(tests, "y")
    nt = [len(d["y"]) for d in tests]   # test sets may differ in size (SH and GT 2D rows of one k)
    ym_t, ys_t = (torch.as_tensor(v, device=dev) for v in (grp.ym, grp.ys))
    out, chunk = [], 16384
    for s in range(0, max(nt), chunk):
        e = min(s + chunk, max(nt))
        # a shorter test set repeats its last row past its end; those rows are cut below
        idx = torch.stack([torch.arange(s, e, device=dev).clamp_max(n - 1) + o for n, o in zip(nt, toff)])
        xb = grp.inputs(idx, test=True)
        out.append((model(xb.get("x2d"), xb.get("g")) * ys_t + ym_t).cpu().numpy())
    return [p[:n].reshape(-1, 16, 3) for p, n in zip(np.concatenate(out, 1), nt)]


def _split_fits(model, grp: _Group, cfg: RegressorConfig, cfgs) -> list:
    """Each fit of the batched model as its own one-fit :class:`Fitted` on the CPU."""
    fits = []
    for f, c in enumerate(cfgs):
        one = Regressor(cfg, c.seed)
        one.net.load_state_dict({k: v[f:f + 1].cpu() for k, v in model.state_dict().items()})
        x_stats = {key: (grp.stats[key][0][f, 0].cpu().numpy(), grp.stats[key][1][f, 0].cpu().numpy())
                   for key in grp.ins}
        fits.append(Fitted(one.eval(), x_stats, (grp.ym[f, 0].astype(np.float32), grp.ys[f, 0].astype(np.float32)), c))
    return fits


def _fit_group(cfgs, trains, tests, labs, dev, half: bool = False, progress: bool = False):
    """One batched model for fits of equal shape (:func:`fit_many`): (test predictions,
    schedule, :class:`Fitted` per fit)."""
    c0, k = cfgs[0], len(labs[0])
    sched = c0.schedule(k)
    grp = _stack_group(cfgs, trains, tests, labs, dev)
    cfg = RegressorConfig(kind=c0.kind, in_2d=grp.X["x2d"].shape[1] if "x2d" in grp.X else 0,
                          in_g=grp.X["g"].shape[1] if "g" in grp.X else 0, hidden=c0.hidden, dropout=c0.dropout)
    model = BatchedRegressor(cfg, [c.seed for c in cfgs]).to(dev)
    _train_group(model, grp, cfgs, sched, k, dev, half, progress)
    return _predict_group(model, grp, tests, dev), sched, _split_fits(model, grp, cfg, cfgs)


@dataclass
class Fitted:
    """One trained regressor of :func:`fit_many` (its ``fitted``) and the normalisation it was
    trained with: :meth:`predict` maps raw inputs (2D joints in px, G) to the 16 non-root
    joints (N, 16, 3) in mm, root-relative, camera frame."""
    regressor: Regressor          # one fit, eval mode
    x_stats: dict                 # input key ("x2d", "g") -> (mean (D,), std (D,)) float32
    y_stats: tuple                # (mean (48,), std (48,)) float32
    config: FitConfig

    @torch.no_grad()
    def predict(self, x2d=None, g=None) -> np.ndarray:
        given = {"x2d": x2d, "g": g}
        x = {}
        for key, (m, s) in self.x_stats.items():
            if given[key] is None:
                raise ValueError(f"this regressor was trained on {sorted(self.x_stats)}; {key!r} is missing")
            a = np.asarray(given[key], np.float32).reshape(len(given[key]), -1)
            x[key] = torch.as_tensor((a - m) / s, device=next(self.regressor.parameters()).device)
        y = self.regressor.eval()(x.get("x2d"), x.get("g")).cpu().numpy()
        return (y * self.y_stats[1] + self.y_stats[0]).reshape(-1, 16, 3)


def evaluate(pred: np.ndarray, y: np.ndarray, actions) -> dict:
    """Protocol #1 and #2, per action then averaged. Root (zero) joint included, as usual
    for 17-joint H36M evaluation."""
    z = np.zeros((len(y), 1, 3), np.float32)
    p17, y17 = np.concatenate([z, pred], 1), np.concatenate([z, y], 1)
    p1, t1 = metrics.per_action(metrics.mpjpe(p17, y17), actions)
    p2, t2 = metrics.per_action(metrics.p_mpjpe(p17, y17), actions)
    return {"mpjpe": p1, "p_mpjpe": p2, "mpjpe_per_action": t1, "p_mpjpe_per_action": t2}


def label_subsets(n: int, ks, seeds) -> dict:
    """The k labelled training rows per (k, seed): drawn without replacement, nested
    across k for one seed (the first k of one permutation)."""
    out = {}
    for seed in seeds:
        perm = np.random.default_rng(1000 + seed).permutation(n)
        for k in ks:
            out[(int(min(k, n)), seed)] = np.sort(perm[:min(k, n)])
    return out


def log_ks(n: int, start: int = 50, per_decade: int = 3) -> list[int]:
    """k on a log scale from ``start`` to ``n`` (all frames)."""
    ks = [int(round(v)) for v in np.logspace(np.log10(start), np.log10(n), max(2, int(np.log10(n / start) * per_decade) + 1))]
    return sorted(set(min(k, n) for k in ks) | {500 if n >= 500 else n})
