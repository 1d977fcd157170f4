"""Generator shapes, the latent rotation, losses on hand-made cases, regressors."""
import math

import pytest
import torch

from geo import losses
from geo.models import Generator, GeneratorConfig, Regressor, RegressorConfig, rotate

SMALL = GeneratorConfig(width=4, points=16)


def rot_z(a):
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_generator_shapes():
    g = Generator(SMALL)
    maps = torch.rand(3, 15, 64, 64)
    out, G, G_ij = g(maps, rot_z(0.3).expand(3, 3, 3))
    assert out.shape == (3, 15, 64, 64)
    assert G.shape == G_ij.shape == (3, 16, 3)
    assert float(out.detach().min()) >= 0 and float(out.detach().max()) <= 1
    assert not torch.allclose(G, G_ij)


def test_rotation_round_trip():
    G = torch.randn(5, 16, 3)
    R = torch.linalg.qr(torch.randn(5, 3, 3)).Q
    assert torch.allclose(rotate(rotate(G, R), R.transpose(1, 2)), G, atol=1e-5)
    # rotate applies R to every point: g_m -> R g_m
    assert torch.allclose(rotate(G, R)[:, 0], (R @ G[:, 0, :, None])[..., 0], atol=1e-5)


def test_decoder_sees_only_the_rotated_cloud():
    g = Generator(SMALL).eval()
    maps = torch.rand(2, 15, 64, 64)
    R = rot_z(0.7).expand(2, 3, 3)
    out, _, G_ij = g(maps, R)
    assert torch.allclose(out, g.decoder(G_ij), atol=1e-6)


def test_l2_by_hand():
    a = torch.zeros(2, 15, 64, 64)
    b = torch.zeros(2, 15, 64, 64)
    b[0, 0, :2, :2] = 1          # 4 pixels off in sample 0, none in sample 1
    assert losses.l2(a, b).item() == pytest.approx(2.0)


def test_lrc_zero_for_rotated_scaled_copy():
    G = torch.randn(4, 16, 3)
    R = rot_z(1.1).expand(4, 3, 3)
    G_ij = rotate(G, R)
    assert losses.lrc(G_ij, 3.0 * G_ij + 5.0).item() == pytest.approx(0.0, abs=1e-5)
    assert losses.lrc(G_ij, G).item() > 0.1


def test_lrc_by_hand():
    a = torch.tensor([[[1.0, 0, 0], [-1.0, 0, 0]]])   # already centred, RMS radius 1
    b = torch.tensor([[[0.0, 1, 0], [0.0, -1, 0]]])
    # each point is sqrt(2) away: sum of squares = 2 + 2
    assert losses.lrc(a, b).item() == pytest.approx(4.0)


def test_total_is_eq4():
    o = torch.rand(2, 15, 64, 64)
    t = torch.rand(2, 15, 64, 64)
    G = torch.randn(2, 16, 3)
    parts = losses.total(o, t, t, o, G, -G)
    assert parts["loss"].item() == pytest.approx((parts["l2_ij"] + parts["l2_ji"] + parts["lrc"]).item())


def test_regressors():
    fc = Regressor(RegressorConfig(kind="fc", in_2d=32))
    assert fc(torch.randn(4, 16, 2)).shape == (4, 48)
    r1 = Regressor(RegressorConfig(kind="fc", in_g=48))
    assert r1(g=torch.randn(4, 16, 3)).shape == (4, 48)
    r2 = Regressor(RegressorConfig(kind="martinez", in_2d=32, in_g=48))
    assert r2(torch.randn(4, 16, 2), torch.randn(4, 16, 3)).shape == (4, 48)
    with pytest.raises(ValueError):
        Regressor(RegressorConfig(kind="fc"))
