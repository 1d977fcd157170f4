"""geo.render: cases that the mutants left alive by tests/test_render.py get wrong
(benchmarks/mutation.py; each survivor is listed in benchmarks/results/mutation_survivors.md).

The renderer caches its row table and its compiled kernels per process; tests that are
about how those are made start from empty caches (monkeypatched), so they do not depend
on what ran before them."""
import numpy as np
import pytest
import torch

import geo.render as R
from geo.render import _capsules, _expand_runs, _row_index, _row_table, crop_boxes, render, render_cv2, to_map_coords
from geo.skeleton import SH16_BONES


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
    calls = []

    def fake_compile(fn, **kw):
        calls.append((fn, kw))
        return lambda *a, **k: fn(*a, **k)

    monkeypatch.setattr(torch, "compile", fake_compile)
    x = torch.rand(5, 16, 2) * 300
    plain = render(x)                                   # the default does not compile
    assert calls == []
    assert torch.equal(render(x, compile=True), plain)  # on the CPU: the row index code only
    assert calls == [(_row_index, {"dynamic": True})]
    monkeypatch.setattr(R, "_COMPILED", {})
    calls.clear()
    assert R._maybe_compiled(_row_index, False) is _row_index and calls == []
    c1 = R._maybe_compiled(_row_index, True)
    c2 = R._maybe_compiled(_row_index, True)
    assert c1 is c2 and c1 is not _row_index
    assert calls == [(_row_index, {"dynamic": True})]


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
