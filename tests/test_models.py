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


@torch.no_grad()
def test_generator_uses_the_rotation_it_is_given():
    """phi gives an M x 3 cloud from the maps alone; psi draws from R G (the rotation
    given, not its transpose, not none), so the output depends on R. Training mode: batch
    statistics in the norms (an untrained net in eval mode barely reacts to its input)."""
    cfg = GeneratorConfig(width=4, points=8)
    g = Generator(cfg).train()
    torch.manual_seed(0)
    maps = (torch.rand(2, 15, 64, 64) < 0.05).float()
    R1 = torch.stack([rot_z(0.3), rot_z(-1.2)])
    R2 = torch.stack([rot_z(2.0), rot_z(0.9)])
    out1, G1, G1_ij = g(maps, R1)
    out2, G2, G2_ij = g(maps, R2)
    assert G1.shape == (2, cfg.points, 3) and G1.dtype == torch.float32
    assert torch.equal(G1, G2) and torch.equal(G1, g.encoder(maps))   # the encoder does not see R
    for G_ij, R in ((G1_ij, R1), (G2_ij, R2)):
        assert torch.allclose(G_ij, torch.einsum("bkl,bml->bmk", R, G1), atol=1e-5)   # g_m -> R g_m
    assert (out1 - out2).abs().max() > 1e-2                           # the decoder sees R
    assert (out1 - g(maps, R1.transpose(1, 2))[0]).abs().max() > 1e-2
    out_id, _, G_id = g(maps, torch.eye(3).expand(2, 3, 3))
    out_none, _, G_none = g(maps, None)
    assert torch.allclose(G_id, G1) and torch.equal(G_none, G1)
    assert torch.allclose(out_id, out_none, atol=1e-6)
    # different maps, different cloud
    assert (g.encoder(maps.flip(-1)) - G1).abs().max() > 1e-2


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
    """Eq. (4) on inputs where every part is known by hand and swapping any two arguments
    changes the value: L = L_l2(out_ij, S_j) + L_l2(out_ji, S_i) + w L_rc(G_ij, G~_j)."""
    out_ij = torch.zeros(2, 1, 2, 2)
    maps_j = torch.zeros(2, 1, 2, 2)
    maps_j[0, 0, 0, :] = 1
    maps_j[0, 0, 1, 0] = 1          # sample 0: 3 pixels off by 1 -> 3
    maps_j[1, 0, 1, 1] = 0.5        # sample 1: 1 pixel off by 0.5 -> 0.25; mean 1.625
    out_ji = torch.zeros(2, 1, 2, 2)
    out_ji[0, 0, 0, 1] = 2.0        # sample 0: 4, sample 1: 0; mean 2
    maps_i = torch.zeros(2, 1, 2, 2)
    g_ij = torch.tensor([[[1.0, 0, 0], [-1.0, 0, 0]], [[0, 0, 2.0], [0, 0, -2.0]]])
    g_j = torch.tensor([[[0, 1.0, 0], [0, -1.0, 0]], [[1, 1, 6.0], [1, 1, -4.0]]])
    # lrc: sample 0 is test_lrc_by_hand's 4, sample 1 the same cloud once normalised: mean 2
    parts = losses.total(out_ij, maps_j, out_ji, maps_i, g_ij, g_j, weight=0.5)
    assert parts["l2_ij"].item() == pytest.approx(1.625)
    assert parts["l2_ji"].item() == pytest.approx(2.0)
    assert parts["lrc"].item() == pytest.approx(2.0)
    assert parts["loss"].item() == pytest.approx(1.625 + 2.0 + 0.5 * 2.0)
    assert losses.total(out_ij, maps_j, out_ji, maps_i, g_ij, g_j)["loss"].item() == pytest.approx(5.625)


def test_regressors():
    fc = Regressor(RegressorConfig(kind="fc", in_2d=32))
    assert fc(torch.randn(4, 16, 2)).shape == (4, 48)
    r1 = Regressor(RegressorConfig(kind="fc", in_g=48))
    assert r1(g=torch.randn(4, 16, 3)).shape == (4, 48)
    r2 = Regressor(RegressorConfig(kind="martinez", in_2d=32, in_g=48))
    assert r2(torch.randn(4, 16, 2), torch.randn(4, 16, 3)).shape == (4, 48)
    with pytest.raises(ValueError):
        Regressor(RegressorConfig(kind="fc"))


@torch.no_grad()
def test_regressors_use_their_inputs():
    """Beyond shapes: Baseline#1 is a function of the 2D joints, Regression#1 of G,
    Regression#2 of both (its output changes when G changes with the 2D fixed); the
    first layer is the element-wise sum of the two embeddings (Sec. 4)."""
    torch.manual_seed(0)
    x, G = torch.randn(4, 16, 2), torch.randn(4, 16, 3)
    x2, G2 = torch.randn(4, 16, 2), torch.randn(4, 16, 3)
    b1 = Regressor(RegressorConfig(kind="fc", in_2d=32)).eval()
    assert (b1(x) - b1(x2)).abs().max() > 1e-3
    r1 = Regressor(RegressorConfig(kind="fc", in_g=48)).eval()
    assert (r1(g=G) - r1(g=G2)).abs().max() > 1e-3
    r2 = Regressor(RegressorConfig(kind="martinez", in_2d=32, in_g=48)).eval()
    y = r2(x, G)
    assert (y - r2(x, G2)).abs().max() > 1e-3                   # G matters
    assert (y - r2(x2, G)).abs().max() > 1e-3                   # so do the 2D joints
    assert torch.equal(y, r2(x, G))                             # eval: deterministic
    # the fc kind on both inputs, by hand: head(relu(W2d x + b2d + Wg g + bg))
    fc = Regressor(RegressorConfig(kind="fc", in_2d=32, in_g=48)).eval()
    n = fc.net
    lin = lambda m, v: v @ m.weight[0] + m.bias[0]              # noqa: E731
    want = lin(n.head, torch.relu(lin(n.embed_2d, x.flatten(1)) + lin(n.embed_g, G.flatten(1))))
    assert torch.allclose(fc(x, G), want, atol=1e-5)
    # same seed, same regressor; another seed, another one
    assert torch.equal(Regressor(RegressorConfig(kind="fc", in_2d=32)).eval()(x), b1(x))
    assert not torch.equal(Regressor(RegressorConfig(kind="fc", in_2d=32), seed=1).eval()(x), b1(x))
