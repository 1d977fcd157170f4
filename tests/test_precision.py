"""bf16 on the CPU (geo.precision): the switch, the same G as float32 within a stated
tolerance, training that learns as float32 does, and the cpu profile's checkpoints,
resume and Ctrl-C."""
import os
import signal

import numpy as np
import pytest
import torch

from geo import precision, regress
from geo.data import load
from geo.models import Generator, GeneratorConfig
from geo.pairs import PairSource
from geo.train import Interrupted, config_for, load_checkpoint, train


@pytest.fixture(scope="module")
def ds():
    return load("embedded")


def poses(ds, n=256):
    """``n`` evenly spaced projected ground-truth 2D poses of the test subjects (px)."""
    return regress.subsample(regress.make_split(ds, ds.test_subjects, "gt"), n).x2d.astype(np.float32)


def test_switch(monkeypatch):
    monkeypatch.setenv(precision.ENV, "float32")
    assert not precision.bf16("cpu") and precision.map_dtype("cpu") == torch.float32
    assert not precision.channels_last("cpu")
    assert isinstance(precision.autocast("cpu"), type(precision.autocast("cpu")))
    with precision.autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setenv(precision.ENV, "bfloat16")
    assert precision.bf16("cpu") and precision.map_dtype("cpu") == torch.bfloat16 and precision.channels_last("cpu")
    with precision.autocast("cpu"):
        assert torch.is_autocast_enabled("cpu")
    monkeypatch.setenv(precision.ENV, "fp8")
    with pytest.raises(ValueError, match="GEO_CPU_DTYPE='fp8'"):
        precision.bf16("cpu")
    monkeypatch.delenv(precision.ENV)
    assert precision.bf16("cpu") == precision.cpu_has_bf16()   # decided by the processor's units
    assert precision.bf16("cuda")                               # CUDA always (no device needed to ask)


def test_bf16_encoder_gives_the_same_g(ds, monkeypatch):
    """The committed width-32 encoder on real poses: G in bf16 within 2% (relative RMS) of
    float32, and each pose's G closer to its own float32 G than to any other pose's."""
    from geo.weights import load_parts

    enc = load_parts("DG+AUG", parts=("phi",))["phi"]
    x = poses(ds, 128)
    monkeypatch.setenv(precision.ENV, "float32")
    g32 = regress.encode(enc, x)
    monkeypatch.setenv(precision.ENV, "bfloat16")
    g16 = regress.encode(enc, x)
    rel = np.sqrt(((g16 - g32) ** 2).mean() / ((g32 - g32.mean(0)) ** 2).mean())
    print(f"bf16 vs float32 G: relative RMS {rel:.4f}")
    assert rel < 0.02, rel
    d = ((g16.reshape(len(x), 1, -1) - g32.reshape(1, len(x), -1)) ** 2).sum(-1)
    assert (d.argmin(1) == np.arange(len(x))).all()


def overfit(ds, dt, monkeypatch, variant="DG+AUG", steps=60):
    """Losses of ``steps`` updates on one fixed batch (same init and pairs for every dtype)."""
    from geo.train import build, make_optimizer, sample, train_step

    monkeypatch.setenv(precision.ENV, dt)
    cfg = config_for(variant, "quick", batch=8, lr=5e-3, generator=dict(width=8, points=16))
    models = build(cfg, "cpu")
    opt = make_optimizer(cfg, models, "cpu")
    b = sample(PairSource(ds, ds.train_subjects, seed=3), cfg)
    return np.array([float(train_step(models, opt, b, cfg)["loss"].detach()) for _ in range(steps)])


def test_bf16_training_lowers_the_loss_like_float32(ds, monkeypatch):
    l32 = overfit(ds, "float32", monkeypatch)
    l16 = overfit(ds, "bfloat16", monkeypatch)
    print("loss float32", l32[::10].round(1), "\nloss bf16   ", l16[::10].round(1))
    end32, end16 = l32[-5:].mean(), l16[-5:].mean()
    assert end16 < 0.85 * l16[0]                        # bf16 learns
    assert abs(end16 - end32) < 0.1 * (l32[0] - end32)  # as far as float32 does (within 10% of its drop)
    assert not np.array_equal(l16, l32)                 # and it did run in bf16


def test_bf16_models_and_maps_use_channels_last(ds, monkeypatch):
    from geo.train import build, sample

    monkeypatch.setenv(precision.ENV, "bfloat16")
    cfg = config_for("SG", "cpu", batch=2, generator=dict(width=4, points=8))
    m = build(cfg, "cpu")["phi_psi"]
    w = m.encoder.stem[0].weight
    assert w.is_contiguous(memory_format=torch.channels_last) and w.dtype == torch.float32   # float32 master weights
    b = sample(PairSource(ds, ds.train_subjects, seed=0), cfg)
    assert b.maps_i.dtype == torch.bfloat16 and b.maps_i.is_contiguous(memory_format=torch.channels_last)


def tiny_cpu(**kw):
    return config_for("DG+AUG", "cpu", **{"batch": 4, "eval_every": 0, "log_every": 2,
                                          "generator": dict(width=4, points=8), **kw})


def test_cpu_profile_checkpoints_by_wall_time_and_resumes(ds, tmp_path):
    cfg = tiny_cpu(steps=8, checkpoint_seconds=1e-9)    # every step: the wall-time rule, not the step count
    assert cfg.checkpoint_every >= 10**9 and cfg.lr_min is None and cfg.generator.width == 4
    assert config_for("DG+AUG", "cpu").generator.width == 16
    straight, _ = train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path / "a", progress=False)
    real = torch.save
    saves = []

    def counting(obj, f, *a, **k):
        saves.append(obj.get("step") if isinstance(obj, dict) else None)
        return real(obj, f, *a, **k)

    import geo.train.checkpoint as T   # where checkpoints are written

    T.torch.save = counting
    try:
        train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path / "b", progress=False, stop_after=5)
    finally:
        T.torch.save = real
    assert saves[:5] == [1, 2, 3, 4, 5]                    # a checkpoint after every step
    resumed, hist = train(cfg, PairSource(ds, ds.train_subjects, seed=7), tmp_path / "b", progress=False)
    for k, m in straight.items():
        for (n, a), b in zip(m.state_dict().items(), resumed[k].state_dict().values()):
            assert torch.equal(a, b), (k, n)
    assert hist["step"][-1] == 8


def test_sigint_saves_a_checkpoint_and_the_run_resumes(ds, tmp_path, monkeypatch):
    import geo.train.loop as T   # the loop's own name for train_step is the one it calls

    cfg = tiny_cpu(steps=10)
    before = signal.getsignal(signal.SIGINT)   # default_int_handler, or SIG_IGN in a background job
    real, calls = T.train_step, [0]

    def interrupted(*a, **k):
        calls[0] += 1
        if calls[0] == 4:
            os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C during step 4
        return real(*a, **k)

    monkeypatch.setattr(T, "train_step", interrupted)
    with pytest.raises(Interrupted, match=r"SIGINT at step 4/10; checkpoint saved in .*last\.pt"):
        train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path, progress=False)
    assert load_checkpoint(tmp_path)[2]["step"] == 4
    assert signal.getsignal(signal.SIGINT) is before   # the caller's handler is given back
    monkeypatch.setattr(T, "train_step", real)
    _, hist = train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path, progress=False)
    assert hist["step"][-1] == 10
