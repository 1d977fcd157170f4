"""Diagnostics of a trained generator's latent clouds G: does L_rc ask for pose-level
equivariance, or can a template meet it? (Sec. 3.3, Eq. 3: "the normalized G^{i->j} should
be consistent with G~^j").

* :func:`template_share`: the share of each normalised cloud's energy that is the batch's
  mean cloud (the same for every pose), and how much of that mean lies along one axis.
  1.0: every pose gives the same cloud; the ground-truth 3D poses themselves score 0.69
  on S9 (root-centred, RMS-normalised 17 joints).
* :func:`consistency`: L_rc (``geo.losses.lrc``) of matched pairs (one frame, two real
  cameras, G_i rotated by R(i->j) against G~_j) against the same clouds paired with other
  frames, and against no rotation. A geometry-aware G has matched << other frames and
  matched << unrotated; a template has matched ~ other frames.

Both run on held-out real camera pairs (:class:`geo.pairs.PairSource` of the test
subjects), in the precision :mod:`geo.precision` picks.
"""
from __future__ import annotations

import numpy as np
import torch

from geo import losses, precision
from geo.models import rotate
from geo.pairs import PairSource


def template_share(g) -> dict:
    """{"share", "axis_share"} of clouds ``g`` (N, M, 3): the mean over frames of
    ||mean normalised cloud||^2 / ||normalised cloud||^2, and the share of the mean
    cloud's energy along its first principal axis."""
    n = losses.normalise(torch.as_tensor(np.asarray(g, np.float32)))
    t = n.mean(0)
    share = float(t.pow(2).sum() / n.pow(2).sum((1, 2)).mean())
    s = torch.linalg.svdvals(t - t.mean(0))
    return {"share": share, "axis_share": float(s[0] ** 2 / s.pow(2).sum().clamp_min(1e-12))}


@torch.no_grad()
def _clouds(models: dict, source: PairSource, n: int, seed: int, chunk: int = 256):
    """(G_i, R_ij, G~_j) of ``n`` held-out real pairs: phi encodes view i, mu (or phi for
    one-generator variants) view j."""
    saved = source.gen.get_state()
    source.gen.manual_seed(seed)
    phi = models["phi_psi"].encoder.eval()
    mu = models["mu_nu"].encoder.eval() if "mu_nu" in models else phi
    dev = source.device
    gi, gj, rs = [], [], []
    try:
        for s in range(0, n, chunk):
            b = source.sample(min(chunk, n - s), dtype=precision.map_dtype(dev), width=models["phi_psi"].cfg.line_width)
            with precision.autocast(dev):
                gi.append(phi(precision.to_layout(b.maps_i)).float())
                gj.append(mu(precision.to_layout(b.maps_j)).float())
            rs.append(b.R_ij.float())
    finally:
        source.gen.set_state(saved)
    return torch.cat(gi), torch.cat(rs), torch.cat(gj)


def consistency(models: dict, source: PairSource, n: int = 600, seed: int = 20190601) -> dict:
    """Matched vs other-frame vs unrotated L_rc of ``n`` held-out pairs, their ratios, and
    the template share of G_i (module docstring)."""
    g_i, R, g_j = _clouds(models, source, n, seed)
    g_ij = rotate(g_i, R)
    matched = float(losses.lrc(g_ij, g_j))
    other = float(losses.lrc(g_ij, g_j.roll(1, 0)))
    unrotated = float(losses.lrc(g_i, g_j))
    return {"pairs": n, "lrc_matched": matched, "lrc_other_frames": other, "lrc_unrotated": unrotated,
            "other_over_matched": other / max(matched, 1e-12), "unrotated_over_matched": unrotated / max(matched, 1e-12),
            **{f"template_{k}": v for k, v in template_share(g_i.numpy()).items()}}
