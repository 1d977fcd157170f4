"""Skeleton maps: 2D poses -> stacks of binary limb maps (paper Sec. 3.1).

"the corresponding 2D skeleton maps ... are constructed from the heatmaps with 8 pixels
width ... S in {0, 1}^{(K-1) x W x H}" and, Sec. 4, "modify the input and output to
15-channel 64x64". One channel per bone of :data:`geo.skeleton.SH16_BONES`.

Crop convention (``crop_boxes``): each pose gets a square box centred on the centre of
its 2D bounding box, of side ``margin`` x the longer bounding-box side; the box maps to
the ``size`` x ``size`` map, pixel (row i, column j) covering [j, j+1) x [i, i+1) in map
coordinates. Line width: limbs are 8 px wide in the 256 x 256 crop that a stacked
hourglass sees, i.e. ``width = 8 * size / 256 = 2`` map pixels at 64 x 64. ``width`` has
the meaning of OpenCV's line ``thickness``: a pixel is on when its centre lies within
``(width + 1) / 2`` of the bone segment (a capsule); ``cv2.line`` with thickness t covers
the same pixels up to rasterisation details (``tests/test_render.py`` checks IoU >= 0.9
per channel against anti-aliased ``cv2.line`` at the 256 x 256 image scale).

``render`` is one batched tensor expression: the same code on CPU and CUDA, no
per-sample Python loop.
"""
from __future__ import annotations

import numpy as np
import torch

from geo.skeleton import SH16_BONES

MAP_SIZE = 64
LINE_WIDTH = 8.0 * MAP_SIZE / 256.0  # 2 map pixels
MARGIN = 1.2
_CHILD = [b[0] for b in SH16_BONES]
_PARENT = [b[1] for b in SH16_BONES]


def crop_boxes(x2d: torch.Tensor, margin: float = MARGIN):
    """(N, J, 2) -> centres (N, 2) and sides (N,) of the square crops (module docstring)."""
    lo = x2d.amin(dim=-2)
    hi = x2d.amax(dim=-2)
    centre = (lo + hi) / 2
    side = (hi - lo).amax(dim=-1).clamp_min(1e-6) * margin
    return centre, side


def to_map_coords(x2d: torch.Tensor, size: int = MAP_SIZE, margin: float = MARGIN, boxes=None):
    """Pixel poses (N, J, 2) -> map coordinates in [0, size) (N, J, 2). ``boxes``
    (centre, side) overrides the per-pose crops."""
    centre, side = boxes if boxes is not None else crop_boxes(x2d, margin)
    return (x2d - centre[:, None, :]) / side[:, None, None] * size + size / 2


def _capsules(xs: torch.Tensor, size: int, r2: float) -> torch.Tensor:
    """(n, 16, 2) map-coordinate poses -> (n, 15, size, size) bool: pixel centres within
    sqrt(r2) of each bone segment. Pure elementwise code, so torch.compile fuses it."""
    g = torch.arange(size, device=xs.device, dtype=xs.dtype) + 0.5
    a = xs[:, _PARENT]                      # (n, 15, 2) bone start
    d = xs[:, _CHILD] - a                   # (n, 15, 2) bone vector
    inv = 1.0 / (d * d).sum(-1).clamp_min(1e-12)
    px = g.view(1, 1, 1, size) - a[..., 0, None, None]   # (n, 15, 1, W)
    py = g.view(1, 1, size, 1) - a[..., 1, None, None]   # (n, 15, H, 1)
    dx, dy = d[..., 0, None, None], d[..., 1, None, None]
    t = ((px * dx + py * dy) * inv[..., None, None]).clamp(0, 1)
    ex, ey = px - t * dx, py - t * dy
    return ex * ex + ey * ey <= r2


def _row_spans(xs: torch.Tensor, size: int, r: float):
    """The same capsules, row by row: a capsule is convex, so each pixel row meets it in
    one interval [x0, x1]. Returns x0, x1 of shape (n, 15, size, 1): the union of the
    row's intervals through the two end discs and through the rectangle between them."""
    big = 1e6
    g = torch.arange(size, device=xs.device, dtype=xs.dtype).view(1, 1, size) + 0.5
    a = xs[:, _PARENT, None, :]                              # (n, 15, 1, 2)
    b = xs[:, _CHILD, None, :]
    x0 = torch.full(g.shape[:2] + (size,), big, device=xs.device).expand(xs.shape[0], 15, size)
    x1 = -x0
    for e in (a, b):                                           # end discs
        h2 = r * r - (g - e[..., 1]) ** 2
        h = h2.clamp_min(0).sqrt()
        x0 = torch.where(h2 >= 0, torch.minimum(x0, e[..., 0] - h), x0)
        x1 = torch.where(h2 >= 0, torch.maximum(x1, e[..., 0] + h), x1)
    d = b - a
    dx, dy = d[..., 0], d[..., 1]
    L2 = dx * dx + dy * dy
    L = L2.sqrt()
    qy = g - a[..., 1]
    lo, hi = torch.full_like(qy, -big), torch.full_like(qy, big)
    # 0 <= qx*dx + qy*dy <= L2 and -rL <= qx*dy - qy*dx <= rL, with qx = x - ax.
    for coef, c_lo, c_hi in ((dx, -qy * dy, L2 - qy * dy), (dy, qy * dx - r * L, qy * dx + r * L)):
        safe = torch.where(coef.abs() > 1e-9, coef, torch.ones_like(coef))
        u, v = c_lo / safe, c_hi / safe
        lo_c = torch.where(coef > 1e-9, u, torch.where(coef < -1e-9, v, torch.where((c_lo <= 0) & (c_hi >= 0), -big, big)))
        hi_c = torch.where(coef > 1e-9, v, torch.where(coef < -1e-9, u, torch.where((c_lo <= 0) & (c_hi >= 0), big, -big)))
        lo, hi = torch.maximum(lo, lo_c), torch.minimum(hi, hi_c)
    ok = (lo <= hi) & (L2 > 1e-12)
    x0 = torch.where(ok, torch.minimum(x0, lo + a[..., 0]), x0)
    x1 = torch.where(ok, torch.maximum(x1, hi + a[..., 0]), x1)
    return x0[..., None], x1[..., None]


_TABLES: dict = {}


def _row_table(size: int, dtype, device) -> torch.Tensor:
    """All possible rows: entry j0 * (size + 1) + (j1 + 1) is a row with pixels j0..j1 on."""
    key = (size, dtype, str(device))
    if key not in _TABLES:
        j = torch.arange(size, device=device)
        j0 = torch.arange(size + 1, device=device).view(-1, 1, 1)
        j1 = torch.arange(-1, size, device=device).view(1, -1, 1)
        _TABLES[key] = ((j >= j0) & (j <= j1)).to(dtype).reshape(-1, size)
    return _TABLES[key]


def _row_index(xs: torch.Tensor, size: int, r: float) -> torch.Tensor:
    """(n, 16, 2) map-coordinate poses -> (n, 15, size) row-table indices: pixel j is on
    when its centre j + 0.5 lies in [x0, x1]."""
    x0, x1 = _row_spans(xs, size, r)
    j0 = torch.ceil(x0[..., 0] - 0.5).clamp(0, size)
    j1 = torch.floor(x1[..., 0] - 0.5).clamp(-1, size - 1)
    return (j0 * (size + 1) + j1 + 1).long()


_COMPILED: dict = {}


def _maybe_compiled(fn, compile: bool):
    """``fn``, or its torch.compile'd version (made once) when ``compile``."""
    if not compile:
        return fn
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=True)
    return _COMPILED[fn]


def render(x2d, size: int = MAP_SIZE, width: float = LINE_WIDTH, margin: float = MARGIN,
           dtype=torch.float32, normalized: bool = False, chunk: int = 65536,
           compile: bool = False, check: bool | None = None) -> torch.Tensor:
    """Skeleton maps of a batch of SH16 poses.

    x2d: (N, 16, 2) pixels (numpy or tensor; the output is on the tensor's device), or,
    with ``normalized=True``, already in map coordinates. Returns (N, 15, size, size) of
    0/1 values in ``dtype``.

    How: a capsule is convex, so each pixel row meets it in one run of pixels; we compute
    the run's ends for every (pose, bone, row) in closed form (``_row_spans``). On the CPU
    one gather copies the matching rows from a table of all (size+1)^2 possible runs; on a
    GPU, where that gather hammers one hot address, the runs are expanded by comparison
    instead (``_expand_runs``, same pixels). ``compile=True`` fuses each part with
    torch.compile.

    Checks: ``size``, ``width``, ``margin`` and ``chunk`` must be positive (``size`` and
    ``chunk`` integers), else ValueError naming the argument. ``check`` says whether poses
    with a NaN/Inf joint (after the float32 cast) raise ValueError naming the samples:
    ``None`` (default) checks CPU input only, since on a GPU the check is a host sync
    (``geo.pairs`` renders on the device every training step); ``True`` always checks,
    ``False`` never.
    """
    _check_args(size=size, width=width, margin=margin, chunk=chunk)
    x = torch.as_tensor(x2d)
    if x.ndim != 3 or x.shape[1:] != (16, 2):
        raise ValueError(f"render expects (N, 16, 2) SH16 poses, got {tuple(x.shape)}")
    x = x.float()
    if check or (check is None and x.device.type == "cpu"):
        _check_finite(x)
    if not normalized:
        x = to_map_coords(x, size, margin)
    table = _row_table(size, dtype, x.device)
    index = _maybe_compiled(_row_index, compile)
    r = (width + 1) / 2
    out = torch.empty((x.shape[0], len(SH16_BONES), size, size), dtype=dtype, device=x.device)
    for s in range(0, x.shape[0], chunk):  # bounds the temporaries, not a per-sample loop
        idx = index(x[s:s + chunk], size, r)
        if x.is_cuda:   # on a GPU, expanding the runs directly beats the gather (one address hot)
            out[s:s + chunk] = _maybe_compiled(_expand_runs, compile)(idx, size, dtype)
        else:
            torch.index_select(table, 0, idx.view(-1), out=out[s:s + chunk].view(-1, size))
    return out


def _check_args(size, width, margin, chunk):
    """ValueError naming the first argument of ``render`` that makes no sense."""
    for name, v in (("size", size), ("chunk", chunk)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"render: {name} must be a positive integer, got {v!r}")
    for name, v in (("width", width), ("margin", margin)):
        try:
            ok = float(v) > 0 and np.isfinite(float(v))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"render: {name} must be a positive finite number, got {v!r}")


def _check_finite(x: torch.Tensor, shown: int = 10):
    """ValueError naming the samples of ``x`` (N, J, 2) with a NaN/Inf coordinate."""
    bad = ~torch.isfinite(x).flatten(1).all(1)
    if bad.any():
        idx = bad.nonzero().flatten().tolist()
        more = f" and {len(idx) - shown} more" if len(idx) > shown else ""
        raise ValueError(f"render: {len(idx)} of {len(x)} poses have non-finite (NaN/Inf) joints: "
                         f"samples {idx[:shown]}{more}")


def _expand_runs(idx: torch.Tensor, size: int, dtype) -> torch.Tensor:
    """Row-table indices (n, 15, size) -> maps: the same runs as ``_row_table`` rows."""
    j = torch.arange(size, device=idx.device)
    j0 = (idx // (size + 1))[..., None]
    j1 = (idx % (size + 1) - 1)[..., None]
    return ((j >= j0) & (j <= j1)).to(dtype)



def render_cv2(x2d: np.ndarray, size: int = MAP_SIZE, width: float = LINE_WIDTH, margin: float = MARGIN) -> np.ndarray:
    """Reference renderer: a per-sample, per-bone ``cv2.line`` loop (anti-aliased, then
    thresholded at half coverage; for tests and the benchmark). Same crop convention;
    cv2 pixel centres sit at integer coordinates, hence the half-pixel shift."""
    import cv2

    x = to_map_coords(torch.as_tensor(np.asarray(x2d, np.float32)), size, margin).numpy() - 0.5
    out = np.zeros((len(x), len(SH16_BONES), size, size), np.uint8)
    shift = 4
    xi = np.round(x * (1 << shift)).astype(np.int64)
    th = max(1, int(round(width)))
    for n in range(len(x)):
        for b, (c, p) in enumerate(SH16_BONES):
            cv2.line(out[n, b], (int(xi[n, p, 0]), int(xi[n, p, 1])), (int(xi[n, c, 0]), int(xi[n, c, 1])),
                     255, thickness=th, lineType=cv2.LINE_AA, shift=shift)
    return (out >= 128).astype(np.uint8)  # on where the anti-aliased line covers half the pixel
