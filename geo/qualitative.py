"""Qualitative figures: SG vs DG (Figure 3), latent interpolation (Figure 4) and 3D poses
from in-the-wild images (Figures 7 and 8). Computation and drawing; the notebook
``06_qualitative.ipynb`` and ``python -m geo lift`` call these.

Figure 3 (Sec. 3.3): "only applying 'image-skeleton mapping + view synthesis' components
may lead to unrealistic generation on target pose when there are large self-occlusions on
source view ... the representation consistency constraint (DG) is able to refine the
implausible poses". Self-occlusion is measured by :func:`occlusion`: the share of the
input view's skeleton pixels where two or more limbs that share no joint overlap.

Figure 4 (Sec. 3.3): "Pose 1 and Pose 2 are two randomly sampled poses under same camera
viewpoint ... the interpolation results of the latent codes learned without/with
representation constraint": G_t = (1 - t) G_1 + t G_2, each decoded to the skeleton maps
of a target view (G_t rotated by R(i->j), then psi) and regressed to 3D.

Figures 7/8 (Sec. 4, "Cross-Domain Generalization"): image -> 2D estimator
(:mod:`geo.wild`) -> 16 joints -> skeleton maps -> G -> 3D pose (:mod:`geo.lift`).

3D poses are drawn in the camera frame of the input view (x right, y down, z forward),
shown with up = -y.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from geo import precision
from geo.cameras import relative_rotation, world_to_camera
from geo.metrics import mpjpe  # noqa: F401 - per-pose MPJPE, re-exported for the notebook (Q.mpjpe)
from geo.models import rotate
from geo.render import render
from geo.skeleton import H36M17_PARENTS, SH16_BONES
from geo.train.evaluate import synthesise

# Bone pairs of SH16 that share no joint: their overlap in the image is self-occlusion.
_DISJOINT = [(a, b) for a in range(15) for b in range(a + 1, 15) if not set(SH16_BONES[a]) & set(SH16_BONES[b])]
_RIGHT = {1, 2, 3, 14, 15, 16}            # H36M17 joints on the subject's right (drawn red)
_SH_RIGHT = {0, 1, 2, 10, 11, 12}


# ------------------------------------------------------------------------ measurements
def occlusion(x2d) -> np.ndarray:
    """Self-occlusion of 2D poses (N, 16, 2): the fraction of skeleton-map pixels (at
    64 x 64, :func:`geo.render.render`) covered by two or more bones that share no
    joint. 0 for a pose whose limbs never cross; larger when limbs overlap."""
    x = np.asarray(x2d, np.float32)
    a = torch.tensor([p[0] for p in _DISJOINT])
    b = torch.tensor([p[1] for p in _DISJOINT])
    out = []
    for s in range(0, len(x), 256):                 # bounds the (n, pairs, 64, 64) temporaries
        maps = render(x[s:s + 256]) > 0.5
        crossed = (maps[:, a] & maps[:, b]).any(1)               # (n, 64, 64)
        on = maps.any(1)
        out.append((crossed.flatten(1).sum(1) / on.flatten(1).sum(1).clamp_min(1)).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


@dataclass
class Views:
    """Test frames seen from an input camera i and a target camera j: 2D of both views
    (SH detections, px), the ground-truth 3D in camera i's frame (root-relative, mm),
    R(i->j), and what each row is (subject, action, frame, cameras)."""
    x_i: np.ndarray
    x_j: np.ndarray
    y_i: np.ndarray           # (N, 17, 3)
    R_ij: np.ndarray          # (N, 3, 3)
    keys: list


def heldout_views(ds, subjects=None, every: int = 5) -> Views:
    """Every ``every``-th frame of ``subjects`` (default the test subjects), each camera as
    the input view, the next camera (in id order) as the target view."""
    xs_i, xs_j, ys, Rs, keys = [], [], [], [], []
    for s in subjects or ds.test_subjects:
        cams = ds.cameras[s]
        cids = sorted(cams)
        for a, seq in ds.sequences[s].items():
            if seq.poses_3d is None or any(c not in seq.poses_2d for c in cids):
                continue
            n = min([len(seq.poses_3d)] + [len(seq.poses_2d[c]) for c in cids])
            fr = np.arange(0, n, every)
            for k, ci in enumerate(cids):
                cj = cids[(k + 1) % len(cids)]
                xc = world_to_camera(seq.poses_3d[fr].astype(np.float64), cams[ci].R, cams[ci].T)
                xs_i.append(seq.poses_2d[ci][fr])
                xs_j.append(seq.poses_2d[cj][fr])
                ys.append((xc - xc[:, :1]).astype(np.float32))
                Rs.append(np.broadcast_to(relative_rotation(cams[ci].R, cams[cj].R), (len(fr), 3, 3)))
                keys += [(s, a, int(f), ci, cj) for f in fr]
    return Views(np.concatenate(xs_i).astype(np.float32), np.concatenate(xs_j).astype(np.float32),
                 np.concatenate(ys), np.concatenate(Rs).astype(np.float32), keys)


def pick_occluded(views: Views, k: int) -> list[int]:
    """Rows of the ``k`` most self-occluded input views (:func:`occlusion`), at most one
    per (subject, action) so the examples differ."""
    score = occlusion(views.x_i)
    out, seen = [], set()
    for i in np.argsort(-score, kind="stable"):
        key = views.keys[i][:2]
        if key not in seen:
            out.append(int(i))
            seen.add(key)
        if len(out) == k:
            break
    return out


def pick_pair(views: Views, rng_seed: int = 0, candidates: int = 400, target_mm: float = 300.0):
    """Two rows of one sequence and one input camera, for Figure 4 ("two randomly sampled
    poses under same camera viewpoint"): for each of ``candidates`` random rows, the row of
    its (subject, action, camera) whose 3D pose differs from it by the MPJPE (root removed)
    closest to ``target_mm``; of those, the pair closest to ``target_mm`` -- clearly
    different poses, but not the extremes (the largest differences pair standing with
    lying poses, which the generators draw worst). Returns ((i, j), their MPJPE in mm)."""
    rng = np.random.default_rng(rng_seed)
    seq = {}
    for j, kk in enumerate(views.keys):
        seq.setdefault((kk[0], kk[1], kk[3]), []).append(j)
    best, pair = np.inf, None
    for i in rng.choice(len(views.keys), min(candidates, len(views.keys)), replace=False):
        s, a, _, ci, _ = views.keys[i]
        same = [j for j in seq[(s, a, ci)] if j != i]
        if not same:
            continue
        d = np.linalg.norm(views.y_i[same] - views.y_i[i], axis=-1).mean(1)
        k = int(np.argmin(np.abs(d - target_mm)))
        if abs(d[k] - target_mm) < abs(best - target_mm):
            best, pair = float(d[k]), (int(i), same[k])
    if pair is None:
        raise ValueError("no sequence has two frames seen by one camera")
    return pair, best


@torch.no_grad()
def synthesise_poses(generator, x_i, R_ij) -> np.ndarray:
    """The target view's skeleton maps psi(R(i->j) x phi(S_i)) (Eq. 1), (N, 15, 64, 64), of
    2D poses ``x_i`` (N, 16, 2) px: drawn as maps, then :func:`geo.train.evaluate.synthesise`."""
    dev = next(generator.parameters()).device
    maps = render(torch.as_tensor(np.asarray(x_i, np.float32), device=dev), width=generator.cfg.line_width,
                  dtype=precision.map_dtype(dev))
    return synthesise(generator, maps, torch.as_tensor(R_ij, dtype=torch.float32, device=dev)).float().cpu().numpy()


@torch.no_grad()
def decode(generator, g, R) -> np.ndarray:
    """Skeleton maps of G (N, M, 3) rotated by R (N, 3, 3) or (3, 3)."""
    dev = next(generator.parameters()).device
    g = torch.as_tensor(np.asarray(g, np.float32), device=dev)
    R = torch.as_tensor(np.broadcast_to(np.asarray(R, np.float32), (len(g), 3, 3)).copy(), device=dev)
    with precision.autocast(dev):
        out = generator.decoder(rotate(g, R))
    return out.float().cpu().numpy()


def interpolate(g1, g2, steps: int) -> np.ndarray:
    """G_t = (1 - t) G_1 + t G_2 for t = 0 .. 1 in ``steps`` steps: (steps, M, 3)."""
    t = np.linspace(0.0, 1.0, steps)[:, None, None]
    return ((1 - t) * np.asarray(g1)[None] + t * np.asarray(g2)[None]).astype(np.float32)


def yaw(deg: float) -> np.ndarray:
    """Rotation about the camera frame's vertical axis (y, pointing down) by ``deg``."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float32)


# ----------------------------------------------------------------------------- drawing
def maps_rgb(maps) -> np.ndarray:
    """(15, H, W) skeleton maps (0..1) -> (H, W, 3) image: one hue per bone, white paper."""
    import matplotlib

    m = np.clip(np.asarray(maps, np.float32), 0, 1)
    cols = matplotlib.colormaps["tab20"](np.arange(15) % 20)[:, :3]
    ink = np.einsum("chw,ck->hwk", m, 1 - cols)
    return np.clip(1 - ink, 0, 1)


def draw_maps(ax, maps, title: str = ""):
    ax.imshow(maps_rgb(maps), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def _as_plot(p):
    """Camera frame (x right, y down, z forward) -> plot axes (x, z, -y): up is up."""
    p = np.asarray(p)
    return p[..., 0], p[..., 2], -p[..., 1]


def draw_3d(ax, pose17, color=None, title: str = "", lim: float = 900.0, alpha: float = 1.0, label=None):
    """A 17-joint pose (mm, camera frame, root-relative) on a 3D axes; right side red,
    left blue unless ``color``."""
    X, Y, Z = _as_plot(pose17)
    for j, p in enumerate(H36M17_PARENTS):
        if p < 0:
            continue
        c = color or ("tab:red" if j in _RIGHT else "tab:blue")
        ax.plot([X[j], X[p]], [Y[j], Y[p]], [Z[j], Z[p]], color=c, lw=2, alpha=alpha,
                label=label if j == 1 else None)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), zlim=(-lim, lim))
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=12, azim=-70)
    # a few ticks in mm: a reader can tell a 10 cm error from a 50 cm one
    ticks = [-lim / 2, 0.0, lim / 2]
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_ticks(ticks)
        axis.set_ticklabels([f"{t:.0f}" for t in ticks], fontsize=5)
    ax.set_xlabel("mm", fontsize=6, labelpad=-8)
    if title:
        ax.set_title(title, fontsize=8)


def draw_2d(ax, x16, color=None, lw: float = 2.0, label=None, marker="o"):
    """SH16 joints (16, 2) px over whatever ``ax`` shows; right side red, left blue."""
    x = np.asarray(x16)
    for b, (j, p) in enumerate(SH16_BONES):
        c = color or ("tab:red" if j in _SH_RIGHT else "tab:blue")
        ax.plot([x[j, 0], x[p, 0]], [x[j, 1], x[p, 1]], color=c, lw=lw, label=label if b == 0 else None)
    ax.scatter(x[:, 0], x[:, 1], s=8, c=color or "k", marker=marker, zorder=3)


# ----------------------------------------------------------------------------- figures
def figure3(rows, variants=("SG+AUG", "DG+AUG")):
    """Figure 3 from ``rows``: dicts with maps_in, maps_true, synth {variant: maps},
    pose {variant: (17, 3)}, gt (17, 3), occlusion, key, error {variant: mm}."""
    import matplotlib.pyplot as plt

    ncol = 4 + len(variants) + 1
    fig = plt.figure(figsize=(2.1 * ncol, 2.3 * len(rows)))
    for r, row in enumerate(rows):
        s, a, f, ci, cj = row["key"]
        ax = fig.add_subplot(len(rows), ncol, r * ncol + 1)
        draw_maps(ax, row["maps_in"], f"input {s} {a}\nframe {f} cam {ci}\nself-occlusion {row['occlusion']:.2f}")
        for k, v in enumerate(variants):
            draw_maps(fig.add_subplot(len(rows), ncol, r * ncol + 2 + k), row["synth"][v], f"{v}: target\ncam {cj}")
        draw_maps(fig.add_subplot(len(rows), ncol, r * ncol + 2 + len(variants)), row["maps_true"],
                  f"true target\ncam {cj}")
        for k, v in enumerate(variants):
            ax = fig.add_subplot(len(rows), ncol, r * ncol + 3 + len(variants) + k, projection="3d")
            draw_3d(ax, row["pose"][v], title=f"{v}: 3D\nMPJPE {row['error'][v]:.0f} mm")
        ax = fig.add_subplot(len(rows), ncol, (r + 1) * ncol, projection="3d")
        draw_3d(ax, row["gt"], title="ground truth 3D")
    fig.tight_layout()
    fig.text(0.5, 0, OCCLUSION_NOTE + "; 3D: root-relative camera frame, mm", ha="center", va="top", fontsize=8)
    return fig


# Figure 3's footnote: what its "self-occlusion" number is (:func:`occlusion`).
OCCLUSION_NOTE = ("self-occlusion: share of the input's limb-map pixels covered by two bones that share no joint "
                  "(0: no limbs cross)")


def training_subject(path, subjects) -> str | None:
    """The Human3.6M subject of an image ``path`` when it is one of ``subjects`` (a folder
    or file name starting ``S<n>``, as the fixtures and the original layout name them),
    else None: an "in the wild" figure must not show frames the regressor was trained on."""
    from pathlib import Path

    for part in reversed(Path(path).parts):
        head = part.split("_")[0].split(".")[0]
        if head in set(subjects):
            return head
    return None


def figure4(rows: dict, ts):
    """Figure 4 from ``rows``: {variant: {"maps": (S, 15, 64, 64), "pose": (S, 17, 3)}}, and
    the interpolation weights ``ts`` (S,). Two rows per variant: maps, then 3D."""
    import matplotlib.pyplot as plt

    S = len(ts)
    fig = plt.figure(figsize=(1.9 * S, 4.0 * len(rows)))
    for v_i, (v, d) in enumerate(rows.items()):
        for s in range(S):
            lab = "pose 1" if s == 0 else "pose 2" if s == S - 1 else f"t = {ts[s]:.2f}"
            draw_maps(fig.add_subplot(2 * len(rows), S, 2 * v_i * S + s + 1), d["maps"][s], f"{v}\n{lab}")
            ax = fig.add_subplot(2 * len(rows), S, (2 * v_i + 1) * S + s + 1, projection="3d")
            draw_3d(ax, d["pose"][s])
    fig.tight_layout()
    return fig


def figure4_plotly(clouds: dict, poses: dict, ts, angles):
    """Interactive Figure 4: per variant, the point cloud G_t (3D) beside the pose
    regressed from it; a slider over t restyles the data, a slider over the target-view
    rotation (yaw, degrees) turns every scene's camera, i.e. shows G and the pose as the
    rotated view sees them. ``clouds[v]`` (S, M, 3), ``poses[v]`` (S, 17, 3)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    vs = list(clouds)
    fig = make_subplots(rows=len(vs), cols=2, specs=[[{"type": "scene"}, {"type": "scene"}]] * len(vs),
                        subplot_titles=[t for v in vs for t in (f"{v}: latent G (M points)", f"{v}: 3D pose")])

    def bones(p):
        X, Y, Z = _as_plot(p)
        xs, ys, zs = [], [], []
        for j, par in enumerate(H36M17_PARENTS):
            if par >= 0:
                xs += [X[j], X[par], None]
                ys += [Y[j], Y[par], None]
                zs += [Z[j], Z[par], None]
        return xs, ys, zs

    def data_at(s):
        xs, ys, zs = [], [], []
        for v in vs:
            X, Y, Z = _as_plot(clouds[v][s])
            xs.append(list(X))
            ys.append(list(Y))
            zs.append(list(Z))
            b = bones(poses[v][s])
            xs.append(b[0])
            ys.append(b[1])
            zs.append(b[2])
        return xs, ys, zs

    xs, ys, zs = data_at(0)
    for k, v in enumerate(vs):
        fig.add_trace(go.Scatter3d(x=xs[2 * k], y=ys[2 * k], z=zs[2 * k], mode="markers", name=f"{v} G",
                                   marker=dict(size=3, color=np.arange(len(xs[2 * k])), colorscale="Viridis")),
                      row=k + 1, col=1)
        fig.add_trace(go.Scatter3d(x=xs[2 * k + 1], y=ys[2 * k + 1], z=zs[2 * k + 1], mode="lines+markers",
                                   name=f"{v} pose", line=dict(width=6), marker=dict(size=2)), row=k + 1, col=2)
    steps_t = []
    for s, t in enumerate(ts):
        x, y, z = data_at(s)
        steps_t.append(dict(method="restyle", label=f"{t:.2f}", args=[{"x": x, "y": y, "z": z}]))
    scenes = ["scene"] + [f"scene{i}" for i in range(2, 2 * len(vs) + 1)]
    steps_r = []
    for a in angles:
        r = np.deg2rad(a)
        eye = dict(x=1.8 * np.sin(r), y=-1.8 * np.cos(r), z=0.4)
        steps_r.append(dict(method="relayout", label=f"{a:g}°",
                            args=[{f"{sc}.camera.eye": eye for sc in scenes}]))
    fig.update_layout(
        sliders=[dict(active=0, steps=steps_t, currentvalue=dict(prefix="interpolation t = "), y=0, len=0.45, x=0),
                 dict(active=0, steps=steps_r, currentvalue=dict(prefix="target-view rotation (yaw) = "),
                      y=0, len=0.45, x=0.55)],
        height=420 * len(vs), title="Figure 4 (interactive): linear interpolation of G between two poses",
        showlegend=False)
    for sc in scenes:
        fig.layout[sc].update(aspectmode="data")
    return fig


def crop_to(image, joints, margin: float = 0.3):
    """The part of ``image`` around ``joints`` (N, 2) px, ``margin`` x the joints' extent
    on every side (clipped to the image), and its top-left corner (x, y) to subtract."""
    h, w = image.shape[:2]
    lo, hi = np.min(joints, 0), np.max(joints, 0)
    pad = margin * (hi - lo).max()
    x0, y0 = (int(max(0, v)) for v in lo - pad)
    x1, y1 = int(min(w, hi[0] + pad)), int(min(h, hi[1] + pad))
    if x1 <= x0 or y1 <= y0:              # joints outside the image: show it whole
        return image, np.zeros(2, np.float32)
    return image[y0:y1, x0:x1], np.array([x0, y0], np.float32)


def figure_wild(items, title: str, per_row: int = 3):
    """Figures 7/8: per item (dict: image (H, W, 3) BGR, name, paths {label: (x16, pose17,
    color)}, note) the image around the person with the 2D joints drawn over it, and the
    3D poses; ``per_row`` items per row. One path is drawn right red / left blue, several
    in their colours."""
    import matplotlib.pyplot as plt

    n = len(items)
    rows, cols = -(-n // per_row), 2 * min(per_row, n)
    fig = plt.figure(figsize=(2.6 * cols, 3.0 * rows))
    for r, it in enumerate(items):
        one = len(it["paths"]) == 1
        ax = fig.add_subplot(rows, cols, 2 * r + 1)
        img, off = crop_to(it["image"], np.concatenate([x for x, _, _ in it["paths"].values()]))
        ax.imshow(img[..., ::-1])
        for lab, (x16, _, col) in it["paths"].items():
            draw_2d(ax, np.asarray(x16) - off, color=None if one else col, label=lab, lw=1.5)
        ax.set_title(f"{it['name']}\n{it.get('note', '')}", fontsize=7)
        ax.axis("off")
        if not one:
            ax.legend(fontsize=6, loc="lower right")
        ax3 = fig.add_subplot(rows, cols, 2 * r + 2, projection="3d")
        for lab, (_, pose, col) in it["paths"].items():
            draw_3d(ax3, pose, color=None if one else col, label=lab, alpha=0.9)
        ax3.set_title("3D (camera frame, mm)", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def pck_error(est16, ann16, visible) -> dict:
    """2D error of estimated vs annotated SH16 joints on the annotated joints: mean pixel
    distance, and PCKh@0.5 (share within half the head segment, upper neck to head top)."""
    d = np.linalg.norm(np.asarray(est16) - np.asarray(ann16), axis=-1)[np.asarray(visible, bool)]
    head = float(np.linalg.norm(np.asarray(ann16)[9] - np.asarray(ann16)[8]))
    return {"mean_px": float(d.mean()), "pckh_0.5": float((d <= 0.5 * head).mean()), "head_px": head,
            "joints": int(len(d))}


__all__ = ["occlusion", "training_subject", "OCCLUSION_NOTE", "heldout_views", "pick_occluded", "pick_pair", "synthesise_poses", "decode", "interpolate", "yaw",
           "mpjpe", "figure3", "figure4", "figure4_plotly", "figure_wild", "crop_to", "pck_error", "maps_rgb", "draw_2d",
           "draw_3d", "Views"]
