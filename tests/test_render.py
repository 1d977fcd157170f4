"""Skeleton maps: shape and values, input types, the fast renderer vs its exact
definition, and vs OpenCV lines on real detections."""
import numpy as np
import pytest
import torch

import geo.render as R
from geo.render import (LINE_WIDTH, MAP_SIZE, _capsules, _expand_runs, _row_index, _row_table, crop_boxes, render,
                        render_cv2, to_map_coords)
from geo.skeleton import SH16_BONES


def _random_poses(n, seed=0):
    """Random SH16 pixel poses, some with degenerate bones: a zero-length bone, a pose
    with all joints in one point, a near-zero bone, axis-aligned bones."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 16, 2, generator=g, dtype=torch.float64) * 800 + 100
    q = n // 8
    x[:q, 1] = x[:q, 0]                                        # RKnee == RFoot
    x[q:2 * q] = x[q:2 * q, :1]                                # everything in one point
    x[2 * q:3 * q, 2] = x[2 * q:3 * q, 6] + torch.tensor([0.0, 1e-4], dtype=torch.float64)
    x[3 * q:4 * q, 7, 0] = x[3 * q:4 * q, 6, 0]                # vertical bone
    x[3 * q:4 * q, 8, 1] = x[3 * q:4 * q, 7, 1]                # horizontal bone
    return x.float()


def test_shape_dtype_values():
    x = _random_poses(40)
    m = render(x)
    assert m.shape == (40, 15, MAP_SIZE, MAP_SIZE) and m.dtype == torch.float32
    assert set(torch.unique(m).tolist()) == {0.0, 1.0}
    b = render(x, dtype=torch.bool)
    assert b.dtype == torch.bool and torch.equal(b, m.bool())
    h = render(x, dtype=torch.bfloat16)
    assert torch.equal(h.float(), m)
    # every non-degenerate bone draws something; each channel is its own bone
    assert (m[5 * 40 // 8:].sum((2, 3)) > 0).all()
    assert render(x, size=32).shape == (40, 15, 32, 32)


def test_numpy_and_torch_inputs_agree():
    x = _random_poses(32, seed=1)
    t = render(x)
    n32 = render(x.numpy())
    n64 = render(x.numpy().astype(np.float64))
    assert torch.equal(t, n32) and torch.equal(t, n64)
    assert render(x.numpy()[:0]).shape == (0, 15, MAP_SIZE, MAP_SIZE)


def test_channels_follow_bones():
    """Collapse every joint into one point, then move one joint: only the channels of the
    bones touching it change; a zero-length bone draws the same small disc everywhere."""
    x = np.full((1, 16, 2), 50.0, np.float32)
    x[0, 0] = [40.0, 40.0]  # RFoot away, so that the crop is not degenerate
    child, parent = SH16_BONES[4]
    x[0, child] = [150.0, 120.0]
    m = render(x)[0]
    touching = {b for b, (c, p) in enumerate(SH16_BONES) if child in (c, p) or 0 in (c, p)}
    assert 4 in touching
    rest = [b for b in range(15) if b not in touching]
    disc = m[rest[0]]
    assert 0 < disc.sum() < 20                         # a disc of radius 1.5 px
    assert all(torch.equal(m[b], disc) for b in rest)
    assert m[4].sum() > 3 * disc.sum() and not torch.equal(m[4], disc)


@pytest.mark.parametrize("size,width", [(MAP_SIZE, LINE_WIDTH), (37, 3.0), (96, 5.5)])
def test_fast_renderer_equals_exact_definition(size, width):
    x = _random_poses(240, seed=size)
    fast = render(x, size=size, width=width, dtype=torch.bool)
    exact = _capsules(to_map_coords(x, size), size, ((width + 1) / 2) ** 2)
    mismatch = (fast != exact).float().mean().item()
    assert mismatch <= 1e-5, f"{mismatch:.2e} of pixels differ"
    assert exact.float().mean() > 0.005  # non-trivial maps


def test_fast_renderer_normalized_input():
    x = _random_poses(50, seed=3)
    xm = to_map_coords(x)
    assert torch.equal(render(xm, normalized=True), render(x))
    centre, side = crop_boxes(x)
    np.testing.assert_allclose(((xm - 32) * side[:, None, None] / 64 + centre[:, None]).numpy(), x.numpy(), atol=1e-2)


@pytest.mark.slow
def test_compiled_equals_eager():
    pytest.importorskip("torch._inductor")
    x = _random_poses(64, seed=4)
    try:
        c = render(x, compile=True)
    except Exception as e:  # no C++ compiler for inductor on this machine
        pytest.skip(f"torch.compile unavailable: {type(e).__name__}: {e}")
    assert torch.equal(c, render(x))


def _sample_detections(pack, n, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [a for s in ("S9", "S11") for seq in pack.sequences[s].values() for a in seq.poses_2d.values()]
    pick = rng.choice(len(arrays), n)
    return np.stack([arrays[i][rng.integers(len(arrays[i]))] for i in pick])


def test_matches_cv2_lines_at_image_scale(h36m_pack):
    """Paper: 8-px limbs in the 256 x 256 crop. Per channel IoU >= 0.9 vs anti-aliased
    cv2.line, on ~300 real stacked-hourglass detections (rendered in chunks)."""
    poses = _sample_detections(h36m_pack, 300)
    inter = np.zeros(15)
    union = np.zeros(15)
    for s in range(0, len(poses), 50):
        a = render(poses[s:s + 50], size=256, width=8.0, dtype=torch.bool).numpy()
        b = render_cv2(poses[s:s + 50], size=256, width=8.0).astype(bool)
        inter += (a & b).sum((0, 2, 3))
        union += (a | b).sum((0, 2, 3))
    iou = inter / union
    assert np.all(iou >= 0.9), np.round(iou, 3)


def test_bad_shape_raises():
    for bad in (np.zeros((3, 17, 2)), np.zeros((16, 2)), np.zeros((2, 16, 3)), torch.zeros(2, 2, 16, 2)):
        with pytest.raises(ValueError, match="16, 2"):
            render(bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_raises_naming_samples(bad):
    """A NaN/Inf joint is refused, naming the samples (it used to give 15 empty maps or a
    raw IndexError); numpy and float64 inputs too."""
    x = _random_poses(20, seed=4)
    x[3, 5, 0] = bad
    x[17, 0, 1] = bad
    with pytest.raises(ValueError, match=r"non-finite.*\[3, 17\]"):
        render(x)
    with pytest.raises(ValueError, match=r"\[3, 17\]"):
        render(x.numpy().astype(np.float64))
    with pytest.raises(ValueError, match=r"\[3, 17\]"):
        render(to_map_coords(x), normalized=True)
    # a finite float64 beyond float32's range is non-finite once cast
    y = _random_poses(4, seed=5).double()
    y[1, 2, 0] = 1e39
    with pytest.raises(ValueError, match=r"\[1\]"):
        render(y)
    render(x[[0, 1, 2]])                         # finite samples render
    if bad != bad:
        assert render(x, check=False)[3].sum() == 0  # opt-out: unchecked, NaN gives empty maps


@pytest.mark.parametrize("kw", [dict(width=0), dict(width=-2.0), dict(width=float("nan")),
                                dict(margin=0), dict(margin=-1.2), dict(size=0), dict(size=-3),
                                dict(size=2.5), dict(chunk=0), dict(chunk=-1)])
def test_bad_arguments_raise_naming_them(kw):
    (arg, _), = kw.items()
    with pytest.raises(ValueError, match=arg):
        render(_random_poses(4, seed=6), **kw)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_finite_check_is_sync_free_on_cuda():
    """On CUDA the default does not check (a check is a host sync in every training step);
    check=True does."""
    x = _random_poses(8, seed=7).cuda()
    x[2, 0, 0] = float("nan")
    render(x)
    with pytest.raises(ValueError, match=r"\[2\]"):
        render(x, check=True)


# --------------------------------------------------------------------------- conventions by hand
def _hand_pose():
    """A pose whose crop is known by hand: bounding box x in [350, 650], y in [200, 600]
    (RFoot and Head at its corners), so centre (500, 400), longer side 400, crop side
    1.2 * 400 = 480 px, i.e. 7.5 image px per map pixel at 64 x 64. LElbow -> LWrist is a
    horizontal bone at map y = 40.5 from map x = 20.5 to 44.5 (pixel centres); every other
    joint sits at (500, 300), map (32, 18.667)."""
    x = np.tile(np.array([500.0, 300.0], np.float32), (16, 1))
    x[0] = [350.0, 600.0]          # RFoot: bottom-left corner of the box
    x[9] = [650.0, 200.0]          # Head: top-right corner
    x[14] = [413.75, 463.75]       # LElbow: 500 + (20.5 - 32) * 7.5, 400 + (40.5 - 32) * 7.5
    x[15] = [593.75, 463.75]       # LWrist: 500 + (44.5 - 32) * 7.5
    return x[None]


def test_crop_and_map_coordinates_by_hand():
    """Module docstring: square box centred on the bounding-box centre, side 1.2 x the
    longer side; x -> column, y -> row (image y down = map row down, no flip)."""
    x = torch.as_tensor(_hand_pose())
    centre, side = crop_boxes(x)
    assert centre[0].tolist() == [500.0, 400.0]
    assert side[0].item() == pytest.approx(480.0)
    m = to_map_coords(x)[0]
    expect = {0: (32 - 150 / 7.5, 32 + 200 / 7.5),      # (12, 58.667): left, bottom
              9: (32 + 150 / 7.5, 32 - 200 / 7.5),      # (52, 5.333): right, top
              14: (20.5, 40.5), 15: (44.5, 40.5), 6: (32.0, 32 - 100 / 7.5)}
    for j, (mx, my) in expect.items():
        assert m[j].tolist() == pytest.approx([mx, my], abs=1e-3), j
    # the longer side spans 64 / 1.2 map pixels, centred: the margin is 1.2
    assert (m[0, 1] - m[9, 1]).item() == pytest.approx(64 / 1.2, abs=1e-3)
    # pixel (row i, column j) covers [j, j+1) x [i, i+1): LWrist is in row 40, column 44
    assert m[15].floor().tolist() == [44.0, 40.0]


def test_bone_lights_exactly_its_capsule():
    """LElbow -> LWrist (channel 14) at map row 40.5, columns 20.5..44.5, width 2
    (radius 1.5): exactly rows 39..41, columns 19..45 are on (the corners (39, 19) etc.
    are sqrt(2) < 1.5 from the ends; row 38 / column 18 are 2 away)."""
    m = render(_hand_pose())[0]
    ch = [b for b, (c, p) in enumerate(SH16_BONES) if (c, p) == (15, 14)]
    assert ch == [14]
    expect = torch.zeros(MAP_SIZE, MAP_SIZE)
    expect[39:42, 19:46] = 1
    assert torch.equal(m[14], expect), torch.nonzero(m[14] != expect).tolist()[:10]


def test_joint_lands_at_its_pixel():
    """A zero-length bone (Spine -> Thorax, both at image (500, 300) = map (32, 18.667))
    draws a disc of radius 1.5 around that point: pixel (row 18, column 32) is its centre,
    nothing is drawn outside rows 17..20 / columns 30..33."""
    m = render(_hand_pose())[0]
    b = SH16_BONES.index((8, 7))
    on = torch.nonzero(m[b])
    assert m[b, 18, 32] == 1
    assert on[:, 0].min() >= 17 and on[:, 0].max() <= 20 and on[:, 1].min() >= 30 and on[:, 1].max() <= 33
    # the disc's pixel centres average to the joint
    centre = on.float().mean(0) + 0.5
    assert centre.tolist() == pytest.approx([32 - 100 / 7.5, 32.0], abs=0.35)
    # RFoot -> RKnee ends at the box's bottom-left corner, map (12, 58.667): lit there, not
    # at the vertically mirrored place (12, 5.333)
    ch = SH16_BONES.index((0, 1))
    assert m[ch, 58, 12] == 1 and m[ch, 5, 12] == 0 and m[ch, 5:8, 10:15].sum() == 0


def test_line_width_is_two_map_pixels():
    """Paper: 8 px at 256 x 256, i.e. width 2 at 64 x 64, on where a pixel centre is
    within (2 + 1) / 2 = 1.5 of the bone. A horizontal bone at map y = 40.0 lights rows
    38..41 (centres 1.5 and 0.5 away); at y = 40.25 rows 39..41 only (row 38 is 1.75 away).
    Together: radius in [1.5, 1.75), width in [2, 2.5)."""
    assert LINE_WIDTH == 2.0
    for y, rows in ((40.0, [38, 39, 40, 41]), (40.25, [39, 40, 41])):
        x = torch.full((1, 16, 2), 5.0)
        x[0, 14] = torch.tensor([20.0, y])
        x[0, 15] = torch.tensor([44.0, y])
        m = render(x, normalized=True)[0, 14]
        lit = torch.nonzero(m[:, 25:40].any(1)).flatten().tolist()
        assert lit == rows, (y, lit)
        assert m[rows, 25:40].all()


# The row table, the expanded runs and the compiled kernels, bones off the map and
# exactly placed, crops, messages and arguments. The renderer caches its row table and
# its compiled kernels per process; tests that are about how those are made start from
# empty caches (the fresh_caches fixture), so they do not depend on what ran before them.

@pytest.fixture
def fresh_caches(monkeypatch):
    monkeypatch.setattr(R, "_TABLES", {})
    monkeypatch.setattr(R, "_COMPILED", {})


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool, torch.float64])
def test_row_table_by_definition(fresh_caches, dtype):
    size = 7
    t = _row_table(size, dtype, torch.device("cpu"))
    assert t.shape == ((size + 1) ** 2, size) and t.dtype == dtype
    j = np.arange(size)
    for j0 in range(size + 1):
        for j1 in range(-1, size):
            row = t[j0 * (size + 1) + j1 + 1].to(torch.float32).numpy()
            np.testing.assert_array_equal(row, ((j >= j0) & (j <= j1)).astype(np.float32), err_msg=f"{j0}, {j1}")
    assert _row_table(size, dtype, "cpu") is t                 # made once per (size, dtype, device)
    assert _row_table(size + 1, dtype, "cpu").shape == ((size + 2) ** 2, size + 1)


def test_expanded_runs_equal_the_table_rows(fresh_caches):
    for size in (5, 64):
        idx = torch.arange((size + 1) ** 2).view(size + 1, 1, size + 1)     # every run, any leading shape
        for dtype in (torch.float32, torch.bool):
            e = _expand_runs(idx, size, dtype)
            assert e.dtype == dtype and e.shape == (size + 1, 1, size + 1, size)
            assert torch.equal(e.reshape(-1, size), _row_table(size, dtype, "cpu"))


def _off_map_poses():
    """Map-coordinate poses (normalized input) whose bones cross every edge of a 24 x 24
    map or lie wholly outside it, plus sub-pixel and exactly-placed axis-aligned bones."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 16, 2, generator=g) * 44 - 10          # joints in [-10, 34) on a 24-pixel map
    x[0] = torch.tensor([-8.0, 12.0])                          # every joint left of the map, one row
    x[0, ::2, 0] = -3.0
    x[1] = torch.tensor([30.0, 12.0])                          # ... right of it
    x[1, ::2, 1] = 5.0
    # exactly placed short bones (child, parent) = (15, 14) and (8, 7):
    # vertical, 1 px long, on a pixel column's left edge: rows touching its ends by 1.5 exactly
    x[2, 14], x[2, 15] = torch.tensor([20.0, 10.0]), torch.tensor([20.0, 11.0])
    # horizontal, 0.9 px long, 1.5 above a row of pixel centres
    x[2, 7], x[2, 8] = torch.tensor([5.05, 10.0]), torch.tensor([5.95, 10.0])
    # vertical at a pixel centre column, 3 px long, ends on pixel centres
    x[3, 14], x[3, 15] = torch.tensor([12.5, 4.5]), torch.tensor([12.5, 7.5])
    x[3, 7], x[3, 8] = torch.tensor([3.5, 15.5]), torch.tensor([6.5, 15.5])
    return x


@pytest.mark.parametrize("width", [2.0, 3.0])
def test_bones_off_the_map_and_exactly_placed_equal_the_definition(fresh_caches, width):
    size = 24
    x = _off_map_poses()
    fast = render(x, size=size, width=width, normalized=True, dtype=torch.bool)
    exact = _capsules(x, size, ((width + 1) / 2) ** 2)
    bad = torch.nonzero(fast != exact).tolist()
    assert not bad, bad[:10]
    assert fast[:2].sum() == 0                      # wholly off the map: nothing
    assert fast[:, :, :, 0].any() and fast[:, :, :, -1].any() and fast[:, :, 0].any() and fast[:, :, -1].any()
    # the exactly placed bones, by hand (width 2: radius 1.5)
    if width == 2.0:
        ch = SH16_BONES.index((15, 14))
        # rows 9..11 are within 1.5 of the 1-px vertical bone x = 20, y in [10, 11]:
        # columns 18..21 at rows 10 (centre 10.5, beside the bone), 19..20 at rows 9, 11
        assert torch.nonzero(fast[2, ch, 10]).flatten().tolist() == [18, 19, 20, 21]
        assert torch.nonzero(fast[2, ch, 9]).flatten().tolist() == [19, 20]
        ch2 = SH16_BONES.index((8, 7))
        assert fast[2, ch2, 8, 5] and fast[2, ch2, 11, 5]      # (5.5, 8.5) is 1.5 from the 0.9-px bone


def test_row_index_of_runs_beyond_the_map():
    # one horizontal bone at row centre 3.5 from x = -20 to 40 on a 10-pixel map: the
    # row's run is clamped to the whole row; a bone wholly left of the map gives no run
    x = torch.full((2, 16, 2), -50.0)
    x[0, 14], x[0, 15] = torch.tensor([-20.0, 3.5]), torch.tensor([40.0, 3.5])
    x[1, 14], x[1, 15] = torch.tensor([-9.0, 3.5]), torch.tensor([-5.0, 3.5])
    idx = _row_index(x, 10, 1.5)
    ch = SH16_BONES.index((15, 14))
    full, empty_left = idx[0, ch, 3].item(), idx[1, ch, 3].item()
    assert divmod(full, 11) == (0, 10)            # j0 = 0, j1 + 1 = 10: pixels 0..9
    assert divmod(empty_left, 11)[1] == 0         # j1 = -1: no pixel


def test_crop_of_tiny_poses_and_explicit_boxes():
    x = torch.tensor([[[100.0, 200.0]] * 15 + [[100.5, 200.25]]])      # a pose 0.5 px across
    centre, side = crop_boxes(x)
    assert side.item() == pytest.approx(0.6) and centre[0].tolist() == pytest.approx([100.25, 200.125])
    m = to_map_coords(x)
    assert (m[0, 15, 0] - m[0, 0, 0]).item() == pytest.approx(64 / 1.2, rel=1e-4)
    # another margin: the longer side spans size / margin map pixels
    y = torch.tensor([[[0.0, 0.0]] * 15 + [[300.0, 100.0]]])
    assert (to_map_coords(y, margin=2.0)[0, 15, 0] - to_map_coords(y, margin=2.0)[0, 0, 0]).item() == pytest.approx(32.0)
    # explicit boxes override the pose's own crop
    boxes = (torch.tensor([[0.0, 0.0]]), torch.tensor([64.0]))
    np.testing.assert_allclose(to_map_coords(y, boxes=boxes)[0].numpy(), (y[0] + 32).numpy())


def test_non_finite_message_shows_ten_samples_and_counts_the_rest():
    x = torch.rand(30, 16, 2) * 100
    x[3:15, 2, 1] = float("nan")                     # 12 bad samples
    with pytest.raises(ValueError, match=r"12 of 30 poses .* samples \[3, 4, 5, 6, 7, 8, 9, 10, 11, 12\] and 2 more$"):
        render(x)
    x[13:15] = 1.0                                   # 10 bad: no "more"
    with pytest.raises(ValueError, match=r"samples \[3, 4, 5, 6, 7, 8, 9, 10, 11, 12\]$"):
        render(x)


def test_compiled_functions_are_made_once_with_dynamic_shapes(fresh_caches, monkeypatch):
    calls, ran = [], []

    def fake_compile(fn, **kw):
        calls.append((fn, kw))

        def compiled(*a, **k):
            ran.append(fn)
            return fn(*a, **k)

        return compiled

    monkeypatch.setattr(torch, "compile", fake_compile)
    x = torch.rand(5, 16, 2) * 300
    plain = render(x)                                   # the default does not compile
    assert calls == [] and ran == []
    assert torch.equal(render(x, compile=True), plain)  # on the CPU: the row index code only
    assert calls == [(_row_index, {"dynamic": True})]
    assert ran == [_row_index]                          # and the compiled version is what ran
    # made once: later calls, of another batch size too (dynamic shapes), reuse it; a call
    # without compile=True runs the plain code
    y = torch.rand(9, 16, 2) * 300
    assert torch.equal(render(y, compile=True), render(y))
    assert calls == [(_row_index, {"dynamic": True})]
    assert ran == [_row_index, _row_index]


def test_cv2_reference_follows_margin_and_width():
    rng = np.random.default_rng(0)
    x = rng.uniform(100, 900, (12, 16, 2)).astype(np.float32)
    for kw in (dict(margin=2.0), dict(width=4.0)):
        a = render(x, size=128, dtype=torch.bool, **kw).numpy()
        b = render_cv2(x, size=128, **kw)
        assert b.dtype == np.uint8 and set(np.unique(b)) <= {0, 1}
        iou = (a & b.astype(bool)).sum() / (a | b.astype(bool)).sum()
        assert iou > 0.85, (kw, iou)
    # a 1-px line is thinner than a 2-px one
    assert render_cv2(x, size=128, width=1.0).sum() < 0.8 * render_cv2(x, size=128, width=2.0).sum()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_maps_equal_cpu_maps(fresh_caches):
    x = _off_map_poses()
    for size in (24, 64):
        gpu = render(x.cuda(), size=size, normalized=True)
        cpu = render(x, size=size, normalized=True)       # after the CUDA call: its own table
        assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)


@pytest.mark.parametrize("kw,name", [(dict(size=0), "size"), (dict(chunk=0), "chunk"), (dict(width=0.0), "width"),
                                     (dict(margin=-1.0), "margin"), (dict(width="wide"), "width"),
                                     (dict(margin=None), "margin")])
def test_bad_arguments_messages(kw, name):
    kind = "a positive integer" if name in ("size", "chunk") else "a positive finite number"
    with pytest.raises(ValueError, match=rf"^render: {name} must be {kind}, got "):
        render(torch.rand(2, 16, 2) * 100, **kw)


def test_smallest_valid_arguments_and_chunks():
    x = torch.rand(40, 16, 2) * 300
    assert render(x, size=1).shape == (40, 15, 1, 1)
    assert render(x, width=0.5).sum() > 0
    full = render(x)
    for chunk in (1, 3, 16, 17):          # chunks only bound the temporaries
        assert torch.equal(render(x, chunk=chunk), full), chunk
    # the margin reaches the crop: a wider margin draws the same pose smaller
    m2 = render(x, margin=2.0)
    assert torch.equal(m2, render(to_map_coords(x, margin=2.0), normalized=True))
    assert m2.sum() < full.sum()
