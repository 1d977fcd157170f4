"""Regression#3 (geo.integral): Sun et al.'s integral regression with G summed into its
features. Forward, backward and a few training steps on the Human3.6M image fixtures
(../shared/data/fixtures/h36m, skipped when absent); the backbone is torchvision's ResNet
layout (parameter names and counts pinned here without torchvision)."""
import numpy as np
import pytest
import torch

from geo import integral
from geo.integral import IntegralConfig, IntegralRegressor, ResNet, soft_argmax

TINY = dict(depth=18, width=8, size=64, deconv=16, depth_bins=8)


def test_soft_argmax_of_a_peak_is_its_voxel_centre():
    # a sharp peak at (d, h, w) = (1, 4, 2) in a (D, H, W) = (3, 5, 7) volume, and another
    # joint at (2, 0, 6): x = (w + 0.5) / W - 0.5, y = (h + 0.5) / H - 0.5, z = (d + 0.5) / D - 0.5
    heat = torch.full((1, 2, 3, 5, 7), -1e4)
    heat[0, 0, 1, 4, 2] = 0.0
    heat[0, 1, 2, 0, 6] = 0.0
    out = soft_argmax(heat)[0]
    assert torch.allclose(out[0], torch.tensor([2.5 / 7 - 0.5, 4.5 / 5 - 0.5, 1.5 / 3 - 0.5]), atol=1e-6)
    assert torch.allclose(out[1], torch.tensor([6.5 / 7 - 0.5, 0.5 / 5 - 0.5, 2.5 / 3 - 0.5]), atol=1e-6)
    # a flat heatmap integrates to the volume's centre
    assert torch.allclose(soft_argmax(torch.zeros(1, 1, 3, 5, 7)), torch.zeros(1, 1, 3), atol=1e-6)


def test_two_peaks_average():
    heat = torch.full((1, 1, 2, 2, 4), -1e4)
    heat[0, 0, 0, 0, 0] = 0.0
    heat[0, 0, 1, 1, 3] = 0.0   # equal mass: the mean of the two voxel centres
    x, y, z = soft_argmax(heat)[0, 0].tolist()
    assert x == pytest.approx(((0.5 / 4 - 0.5) + (3.5 / 4 - 0.5)) / 2)
    assert y == pytest.approx(0.0, abs=1e-6) and z == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("depth,params", [(18, 11_689_512 - 513_000), (50, 25_557_032 - 2_049_000)])
def test_backbone_is_torchvisions_resnet(depth, params):
    # torchvision's resnet18 / resnet50 have 11,689,512 / 25,557,032 parameters, of which
    # the 1000-way classifier holds 513,000 / 2,049,000; names as torchvision's
    net = ResNet(depth)
    assert sum(p.numel() for p in net.parameters()) == params
    names = set(net.state_dict())
    want = {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
            "layer2.0.downsample.1.weight", "layer4.1.bn2.weight"}
    if depth == 50:
        want |= {"layer1.0.downsample.0.weight", "layer3.5.conv3.weight", "layer4.2.bn3.running_var"}
    assert want <= names, want - names
    out = net(torch.zeros(1, 3, 64, 96))
    assert out.shape == (1, 512 if depth == 18 else 2048, 2, 3)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="depth = 19"):
        IntegralConfig(depth=19)
    with pytest.raises(ValueError, match="size = 100"):
        IntegralConfig(size=100)


def test_forward_backward_and_g_is_used():
    torch.manual_seed(0)
    m = IntegralRegressor(IntegralConfig(**TINY, in_g=12))
    x, g = torch.randn(3, 3, 64, 64), torch.randn(3, 4, 3)
    out = m(x, g)
    assert out.shape == (3, 17, 3) and out.abs().max() <= 0.5
    m.eval()
    with torch.no_grad():   # Sun et al.'s init (std 0.001) starts near a flat heatmap: make it peaky
        for mod in (*m.deconv, m.final):
            if hasattr(mod, "weight") and mod.weight.dim() == 4:
                mod.weight.normal_(0, 0.2)
    a, b = m(x, g), m(x, g + 1.0)
    assert (a - b).abs().max() > 1e-6, "G does not reach the output"
    with pytest.raises(ValueError, match="g is missing"):
        m(x)
    m.train()
    integral.loss(m(x, g), torch.zeros(3, 17, 3)).backward()
    for name in ("embed_g.weight", "backbone.conv1.weight", "backbone.layer4.1.conv2.weight", "final.weight"):
        grad = dict(m.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    plain = IntegralRegressor(IntegralConfig(**TINY))
    assert plain.embed_g is None and plain(x).shape == (3, 17, 3)


def test_targets_and_to_camera_invert_each_other_on_a_pinhole():
    rng = np.random.default_rng(0)
    p3 = rng.normal(0, 300, (5, 17, 3)) + np.array([100.0, -50.0, 4500.0])
    f, c = np.array([1145.0, 1143.0]), np.array([512.0, 515.0])
    p2 = p3[..., :2] / p3[..., 2:] * f + c
    centre, side = integral.boxes(p2)
    t = integral.targets(p2, p3, centre, side)
    assert np.abs(t[..., :2]).max() <= 0.5 / 1.2 + 1e-6        # joints inside the 1.2x margin crop
    assert np.allclose(t[:, 0, 2], 0) and np.allclose(t[..., 2] * 2000, p3[..., 2] - p3[:, :1, 2], atol=1e-3)
    back = integral.to_camera(t, centre, side, p3[:, 0, 2], f, c)
    assert np.abs(back - (p3 - p3[:, :1])).max() < 1e-2        # mm (float32 targets)
    # a wrong focal length is caught: X, Y scale with Z / f
    off = integral.to_camera(t, centre, side, p3[:, 0, 2], f * 1.1, c)
    assert np.abs(off - (p3 - p3[:, :1])).max() > 10


def test_crop_puts_the_centre_in_the_middle():
    im = np.zeros((100, 200, 3), np.uint8)
    im[30, 150] = 255                                           # row 30, column 150
    out = integral.crop(im, (150.5, 30.5), 10.0, 20)            # pixel centre (150.5, 30.5) -> crop middle
    assert out.shape == (20, 20, 3)
    r, c = np.unravel_index(out[..., 0].argmax(), (20, 20))
    assert abs(r - 9.5) <= 1 and abs(c - 9.5) <= 1


# ----------------------------------------------------------------------- image fixtures
@pytest.fixture(scope="module")
def fixture(shared_data):
    d = shared_data / "fixtures" / "h36m"
    if not (d / "test_h36m_body3d.npz").is_file():
        pytest.skip(f"{d} holds no Human3.6M image fixtures")
    z = np.load(d / "test_h36m_body3d.npz")
    return d, [d / n for n in z["imgname"].astype(str)], z["part"][..., :2], z["S"][..., :3] * 1000.0


def test_frame_path_names_the_fixture_frames(fixture):
    # the fixture frames lie on the 10 Hz grid: S1 Directions 1 idx 0, S5 SittingDown idx 412,
    # S7 Greeting idx 79, S8 WalkDog 1 idx 5 (../shared/data/README.md)
    d, paths, _, _ = fixture
    got = [integral.frame_path(d, "S1", "Directions 1", "54138969", 0),
           integral.frame_path(d, "S5", "SittingDown", "54138969", 412),
           integral.frame_path(d, "S7", "Greeting", "55011271", 79),
           integral.frame_path(d, "S8", "WalkDog 1", "55011271", 5)]
    assert all(p.is_file() for p in got), [p for p in got if not p.is_file()]
    assert sorted(map(str, got)) == sorted(map(str, paths))


def test_read_crops_names_a_missing_frame(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        integral.read_crops([tmp_path / "nope.jpg"], np.zeros((1, 2)), np.ones(1), 32)


def test_fixture_targets_back_to_camera(fixture):
    # the fixture's 3D (camera frame) and 2D (distorted projection): the pinhole round trip
    # stays within the lens distortion (a few mm), a swapped axis would not
    _, _, part, S = fixture
    f, c = np.array([1145.05, 1143.78]), np.array([512.54, 515.45])   # S1 camera 54138969 (cameras.h5)
    centre, side = integral.boxes(part[:1])
    t = integral.targets(part[:1], S[:1], centre, side)
    back = integral.to_camera(t, centre, side, S[:1, 0, 2], f, c)
    err = np.linalg.norm(back - (S[:1] - S[:1, :1]), axis=-1)
    assert err.max() < 25, err


def test_a_few_training_steps_on_the_fixtures(fixture):
    from geo.models import Encoder, GeneratorConfig
    from geo.regress import encode
    from geo.skeleton import h36m17_to_sh16

    _, paths, part, S = fixture
    cfg = IntegralConfig(**TINY, in_g=8 * 3)
    centre, side = integral.boxes(part)
    images = integral.read_crops(paths, centre, side, cfg.size)
    assert images.shape == (4, 3, 64, 64) and images.std() > 0.3      # real pixels, normalised
    torch.manual_seed(0)
    g = torch.as_tensor(encode(Encoder(GeneratorConfig(width=4, points=8)), h36m17_to_sh16(part).astype(np.float32)))
    target = torch.as_tensor(integral.targets(part, S, centre, side))
    torch.manual_seed(0)
    model = IntegralRegressor(cfg)
    losses = integral.train_steps(model, images, g, target, steps=40, lr=1e-2)
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.6 * losses[0], losses   # it learns the four crops
    model.eval()
    with torch.no_grad():
        pred = model(images, g).numpy()
    f = np.array([1145.0, 1144.0])
    mm = integral.to_camera(pred, centre, side, S[:, 0, 2], f, centre)
    assert mm.shape == (4, 17, 3) and np.isfinite(mm).all()


def test_samples_link_the_pack_to_the_fixture_frames(fixture, h36m_pack):
    # the four fixture frames found through the pack; their 3D (camera frame) and 2D agree
    # with mmpose's fixture npz (S in metres, part = distorted projection), so crops,
    # targets and G of Regression#3 come from the right rows
    d, paths, part, S = fixture
    got = integral.samples(h36m_pack, d, ("S1", "S5", "S7", "S8"))
    assert sorted(map(str, got["paths"])) == sorted(map(str, paths))
    order = [list(map(str, got["paths"])).index(str(p)) for p in paths]
    assert np.abs(got["p3d"][order] - S).max() < 0.5                     # mm
    assert np.abs(got["x2d"][order] - part).max() < 0.05                 # px
    assert got["box"][0].shape == (4, 2) and got["f"].shape == (4, 2)
    with pytest.raises(FileNotFoundError, match="no Human3.6M frames"):
        integral.samples(h36m_pack, d, ("S9",))
