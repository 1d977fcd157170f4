"""Losses of the generators (paper Sec. 3.2-3.3).

* ``l2``, Eq. (1): L_l2 = 1/N_T sum_t || psi(R_{i->j} x phi(S_t^i)) - S_t^j ||^2, the
  squared error summed over the 15 x 64 x 64 map pixels, averaged over the batch.
* ``lrc``, Eq. (3): L_rc = sum_m || g^{ij}_m - g~^j_m ||_2^2 between the normalised rotated
  cloud G^{ij} = G^i R_{i->j}^T of generator (phi, psi) and the normalised cloud G~^j that
  generator (mu, nu) encodes from view j; averaged over the batch.
  Normalisation (the paper says only "normalized"): each cloud is centred on its mean
  point and divided by its RMS radius, sqrt(1/M sum_m ||g_m - mean||^2). Both commute with
  rotation, so a perfect pair (G~^j = G^i R^T up to scale) has L_rc = 0, and neither
  generator can shrink its cloud to zero to cheat.
* ``total``, Eq. (4): L = L_l2(phi.psi) + L_l2(mu.nu) + L_rc(phi, mu).

The per-cloud normalisation can be met by a template: a cloud that is the same for every
pose (on S9 the committed DG+AUG clouds are 93% their batch mean, a line along the world
vertical that R(i->j) maps onto itself), so ``lrc_norm`` offers two forms a template
cannot satisfy, for the reproduction study (``geo.diagnostics`` measures the template):

* ``"rms"`` (default): as above.
* ``"residual"``: after the per-cloud normalisation, the batch-mean cloud of each side is
  removed and both sides are scaled to unit mean energy over the batch; only what varies
  from pose to pose is compared (a template leaves noise, scaled up to unit energy).
* ``"ratio"``: L_rc of the matched pairs divided by L_rc of the same batch paired with a
  shifted copy of itself (each cloud against another frame's), so that matching a
  template, which makes both small, does not lower it.
"""
from __future__ import annotations

import torch


def l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. (1): per-sample squared error summed over channels and pixels, batch mean."""
    return (pred.float() - target.float()).pow(2).flatten(1).sum(1).mean()


def normalise(g: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Centre a cloud (B, M, 3) and scale it to unit RMS radius."""
    g = g - g.mean(dim=1, keepdim=True)
    rms = g.pow(2).sum(-1).mean(-1).clamp_min(eps).sqrt()
    return g / rms[:, None, None]


LRC_NORMS = ("rms", "residual", "ratio")


def residual(g: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Normalised clouds (B, M, 3) less their batch mean, scaled to unit mean energy per
    point over the batch: what varies from pose to pose."""
    r = normalise(g) - normalise(g).mean(0, keepdim=True)
    return r / r.pow(2).sum(-1).mean().clamp_min(eps).sqrt()


def lrc(g_ij: torch.Tensor, g_j: torch.Tensor, norm: str = "rms") -> torch.Tensor:
    """Eq. (3): sum over points of squared distances between normalised clouds, batch mean
    (``norm``: the module docstring)."""
    a, b = g_ij.float(), g_j.float()
    if norm == "rms":
        return (normalise(a) - normalise(b)).pow(2).sum((1, 2)).mean()
    if norm == "residual":
        return (residual(a) - residual(b)).pow(2).sum((1, 2)).mean()
    if norm == "ratio":
        na, nb = normalise(a), normalise(b)
        matched = (na - nb).pow(2).sum((1, 2)).mean()
        other = (na - nb.roll(1, 0)).pow(2).sum((1, 2)).mean()   # each cloud against another frame's
        return matched / other.clamp_min(1e-6)
    raise ValueError(f"lrc norm {norm!r}: expected one of {LRC_NORMS}")


def total(out_ij, maps_j, out_ji, maps_i, g_ij, g_j, weight: float = 1.0, norm: str = "rms") -> dict[str, torch.Tensor]:
    """Eq. (4). Returns the parts and their sum under ``"loss"``."""
    parts = {"l2_ij": l2(out_ij, maps_j), "l2_ji": l2(out_ji, maps_i), "lrc": lrc(g_ij, g_j, norm)}
    parts["loss"] = parts["l2_ij"] + parts["l2_ji"] + weight * parts["lrc"]
    return parts
