"""L_rc's normalisations (geo.losses) and the latent diagnostics (geo.diagnostics): a
template meets the per-cloud form but not the two others; a perfect equivariant encoder
meets all three."""
import numpy as np
import pytest
import torch

from geo import diagnostics, losses
from geo.data import load
from geo.models import rotate
from geo.pairs import PairSource


def random_rotations(n, gen):
    q, _ = torch.linalg.qr(torch.randn(n, 3, 3, generator=gen))
    return q * torch.linalg.det(q).sign()[:, None, None]


@pytest.fixture
def clouds():
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(32, 16, 3, generator=gen)
    return g, random_rotations(32, gen), gen


def test_a_perfect_equivariant_pair_scores_zero_in_every_form(clouds):
    g, R, _ = clouds
    g_ij = rotate(g, R)
    for norm in losses.LRC_NORMS:
        assert float(losses.lrc(g_ij, g_ij.clone() * 3.0, norm)) < 1e-8, norm   # scale is normalised away


def test_a_template_meets_the_per_cloud_form_only(clouds):
    _, R, gen = clouds
    axis = torch.tensor([0.0, 1.0, 0.0])                          # the axis every R below keeps
    t = torch.linspace(-1, 1, 16)[:, None] * axis                 # a line: the template
    Ry = torch.eye(3).repeat(32, 1, 1)
    a = torch.rand(32, generator=gen) * 6.28
    Ry[:, 0, 0], Ry[:, 0, 2], Ry[:, 2, 0], Ry[:, 2, 2] = a.cos(), a.sin(), -a.sin(), a.cos()
    noise = lambda: 1e-3 * torch.randn(32, 16, 3, generator=gen)  # noqa: E731
    g_ij = rotate(t.expand(32, 16, 3) + noise(), Ry)              # every pose: the same line
    g_j = t.expand(32, 16, 3) + noise()
    assert float(losses.lrc(g_ij, g_j, "rms")) < 1e-3              # the paper's form is met by the template
    assert float(losses.lrc(g_ij, g_j, "residual")) > 0.5 * 16     # only noise is left, at unit energy
    assert float(losses.lrc(g_ij, g_j, "ratio")) > 0.5             # matched ~ other frames
    with pytest.raises(ValueError, match="expected one of"):
        losses.lrc(g_ij, g_j, "cosine")


def test_template_share():
    gen = torch.Generator().manual_seed(1)
    same = torch.randn(1, 16, 3, generator=gen).repeat(50, 1, 1)
    assert diagnostics.template_share(same)["share"] == pytest.approx(1.0, abs=1e-5)
    rnd = torch.randn(500, 16, 3, generator=gen)
    assert diagnostics.template_share(rnd)["share"] < 0.05
    line = (torch.linspace(-1, 1, 16)[:, None] * torch.tensor([0.0, 0.97, 0.23])).repeat(20, 1, 1)
    assert diagnostics.template_share(line)["axis_share"] == pytest.approx(1.0, abs=1e-5)


def test_consistency_runs_on_held_out_pairs_and_leaves_the_sampler_alone():
    from geo.train import build, config_for

    ds = load("embedded")
    cfg = config_for("DG+AUG", "quick", generator=dict(width=4, points=8))
    models = build(cfg, "cpu")
    src = PairSource(ds, ds.test_subjects, seed=5)
    state = src.gen.get_state()
    r = diagnostics.consistency(models, src, n=40)
    assert torch.equal(src.gen.get_state(), state)
    assert r["pairs"] == 40 and all(np.isfinite(v) for v in r.values())
    assert r["other_over_matched"] == pytest.approx(r["lrc_other_frames"] / r["lrc_matched"])
    assert r == diagnostics.consistency(models, src, n=40)        # the same pairs every call


def test_lrc_norm_enters_the_identity_only_when_changed():
    from dataclasses import replace

    from geo.train import config_for, identity, train_step, build, make_optimizer, sample

    cfg = config_for("DG+AUG", "full", lrc_norm="rms")
    assert "lrc_norm" not in identity(cfg)                      # weights trained before the field keep their identity
    assert identity(replace(cfg, lrc_norm="ratio"))["lrc_norm"] == "ratio"
    with pytest.raises(ValueError, match="lrc_norm 'x'"):
        config_for("DG+AUG", "quick", lrc_norm="x")
    ds = load("embedded")
    for norm in ("residual", "ratio"):
        c = config_for("DG+AUG", "quick", batch=8, lrc_norm=norm, generator=dict(width=4, points=8))
        models = build(c, "cpu")
        part = train_step(models, make_optimizer(c, models, "cpu"), sample(PairSource(ds, ds.train_subjects), c), c)
        assert torch.isfinite(part["lrc"]) and part["loss"] > part["l2_ij"]


def test_line_width_travels_with_the_generator():
    """Maps drawn 6 px wide where the generator says so: in training pairs, held-out
    batches and encoding G; the default width leaves identities as they were."""
    from dataclasses import replace

    from geo import regress
    from geo.models import Encoder, GeneratorConfig
    from geo.render import LINE_WIDTH
    from geo.train import build, config_for, heldout_batches, identity, sample

    cfg = config_for("SG", "quick", batch=8, generator=dict(width=4, points=8))
    assert "line_width" not in identity(cfg)["generator"]
    wide = replace(cfg, generator=replace(cfg.generator, line_width=6.0))
    assert identity(wide)["generator"]["line_width"] == 6.0
    ds = load("embedded")
    thin = sample(PairSource(ds, ds.train_subjects, seed=0), cfg).maps_i.float().mean()
    thick = sample(PairSource(ds, ds.train_subjects, seed=0), wide).maps_i.float().mean()
    assert 2.0 < float(thick / thin) < 4.0, (thin, thick)                # about 3x the pixels on
    hb = heldout_batches(PairSource(ds, ds.test_subjects), "SG", n=8, width=6.0)[0]
    assert hb.maps_i.float().mean() > 2 * thin
    seen = []

    class Probe(torch.nn.Module):
        line_width = 6.0

        def forward(self, maps):
            seen.append(float(maps.float().mean()))
            return torch.zeros(len(maps), 8, 3)

    x = regress.make_split(ds, ds.test_subjects, "gt").x2d[:16]
    regress.encode(Probe(), x)
    seen_thick = seen.pop()
    Probe.line_width = LINE_WIDTH
    regress.encode(Probe(), x)
    assert seen_thick > 2 * seen[-1]
    assert Encoder(GeneratorConfig(width=4, points=8, line_width=6.0)).line_width == 6.0
    m = build(wide, "cpu")["phi_psi"]
    assert m.encoder.line_width == 6.0 and m.cfg.line_width == 6.0


def test_virtual_joints_enter_the_identity_only_when_changed_and_reach_the_pairs():
    """``virtual_joints="detector"`` changes the virtual views a training step sees, not
    the real ones; the default leaves identities as they were; unknown values are refused."""
    from dataclasses import replace

    from geo.train import config_for, identity, sample

    cfg = config_for("SG+AUG", "quick", batch=16, generator=dict(width=4, points=8), aug=1.0)
    assert "virtual_joints" not in identity(cfg)
    det = replace(cfg, virtual_joints="detector")
    assert identity(det)["virtual_joints"] == "detector"
    with pytest.raises(ValueError, match="virtual_joints 'thorax'"):
        replace(cfg, virtual_joints="thorax")
    ds = load("embedded")
    calls = []

    class Spy(PairSource):
        def joint_map(self, frames=4096):
            calls.append(frames)
            return super().joint_map(frames)

    sample(Spy(ds, ds.train_subjects, seed=0), cfg)
    assert calls == []
    b = sample(Spy(ds, ds.train_subjects, seed=0), det)
    assert calls and bool(b.virtual.all())
