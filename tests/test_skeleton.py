"""Skeleton tables: bones, trees, the SH16 -> H36M17 mapping and the left/right flips."""
import json

import numpy as np
import pytest

from geo import skeleton as sk


def _check_tree(parents, root):
    """Exactly one root; every joint reaches it without a cycle."""
    parents = list(parents)
    assert [j for j, p in enumerate(parents) if p < 0] == [root]
    assert all(-1 <= p < len(parents) and p != j for j, p in enumerate(parents))
    for j in range(len(parents)):
        seen, k = set(), j
        while parents[k] >= 0:
            assert k not in seen, f"cycle through joint {j}"
            seen.add(k)
            k = parents[k]
        assert k == root


def test_fifteen_bones():
    assert sk.N_BONES == len(sk.SH16_BONES) == 15
    children = [c for c, _ in sk.SH16_BONES]
    assert len(set(children)) == 15 and sk.SH16_ROOT not in children
    assert all(sk.SH16_PARENTS[c] == p for c, p in sk.SH16_BONES)
    # every joint is an end of some bone (the maps cover the whole skeleton)
    assert {j for b in sk.SH16_BONES for j in b} == set(range(16))


@pytest.mark.parametrize("parents,root,names", [
    (sk.H36M17_PARENTS, sk.H36M17_ROOT, sk.H36M17_NAMES),
    (sk.SH16_PARENTS, sk.SH16_ROOT, sk.SH16_NAMES),
])
def test_trees_are_valid(parents, root, names):
    _check_tree(parents, root)
    assert names[root] == "Hip"
    assert len(set(names)) == len(names)


def test_h36m_parents_precede_children():
    assert all(p < j for j, p in enumerate(sk.H36M17_PARENTS) if p >= 0)


def test_bad_tree_is_caught_by_the_checker():
    with pytest.raises(AssertionError):
        _check_tree((-1, 2, 1), 0)  # 1 <-> 2 cycle


def test_sh16_to_h36m17_names():
    m = {s: sk.H36M17_NAMES[sk.SH16_TO_H36M17[i]] for i, s in enumerate(sk.SH16_NAMES)}
    assert m["RFoot"] == "RFoot" and m["LFoot"] == "LFoot"
    assert m["Spine"] == "Spine" and m["Thorax"] == "Thorax" and m["Head"] == "Head"
    assert m["Hip"] == "Hip" and m["RWrist"] == "RWrist" and m["LShoulder"] == "LShoulder"
    # the nominal mapping is name for name, and injective
    assert all(k == v for k, v in m.items())
    assert len(set(sk.SH16_TO_H36M17)) == 16


def test_mapping_matches_pack_meta(h36m_dir):
    meta = json.loads((h36m_dir / "meta.json").read_text())
    assert tuple(meta["joints_sh"]["names"]) == sk.SH16_NAMES
    assert tuple(meta["joints_sh"]["to_joints_3d_index"]) == sk.SH16_TO_H36M17
    assert tuple(meta["joints_3d"]["names"]) == sk.H36M17_NAMES
    assert tuple(meta["joints_3d"]["parents"]) == sk.H36M17_PARENTS


def _swap_lr(name):
    if name[0] in "LR" and name[1].isupper():
        return {"L": "R", "R": "L"}[name[0]] + name[1:]
    return name


@pytest.mark.parametrize("flip,names,parents", [
    (sk.H36M17_FLIP, sk.H36M17_NAMES, sk.H36M17_PARENTS),
    (sk.SH16_FLIP, sk.SH16_NAMES, sk.SH16_PARENTS),
])
def test_flips(flip, names, parents):
    flip = np.asarray(flip)
    assert sorted(flip) == list(range(len(names)))            # a permutation
    np.testing.assert_array_equal(flip[flip], np.arange(len(names)))  # an involution
    assert [names[f] for f in flip] == [_swap_lr(n) for n in names]   # swaps L and R only
    # mirroring keeps the tree: parent of the flipped joint = flipped parent
    for j, p in enumerate(parents):
        if p >= 0:
            assert parents[flip[j]] == flip[p]


def test_flip_commutes_with_mapping():
    m, f3, f2 = map(np.asarray, (sk.SH16_TO_H36M17, sk.H36M17_FLIP, sk.SH16_FLIP))
    np.testing.assert_array_equal(f3[m], m[f2])


def test_helpers():
    x = np.random.default_rng(0).normal(size=(4, 17, 3))
    y = sk.h36m17_to_sh16(x)
    assert y.shape == (4, 16, 3)
    np.testing.assert_array_equal(y[:, 0], x[:, 3])   # SH RFoot = H36M RFoot
    np.testing.assert_array_equal(y[:, 9], x[:, 10])  # SH Head = H36M Head (top)
    with pytest.raises(ValueError):
        sk.h36m17_to_sh16(x[:, :16])
    r = sk.root_relative(x)
    assert np.allclose(r[:, 0], 0) and np.allclose(r[:, 5] - r[:, 2], x[:, 5] - x[:, 2])
    bl = sk.bone_lengths(x)
    assert bl.shape == (4, 16)
    assert np.isclose(bl[0, 0], np.linalg.norm(x[0, 1] - x[0, 0]))


def test_fit_joint_map_recovers_a_known_map_and_rows_sum_to_one():
    from geo.skeleton import H36M17_PARENTS, SH16_TO_H36M17, fit_joint_map, nominal_joint_map

    rng = np.random.default_rng(0)
    x17 = rng.normal(0, 100, (500, 17, 2))
    w = nominal_joint_map()
    # SH "Spine" between H36M Spine and Thorax, SH "Head" beyond the head end site
    w[7, 7], w[7, 8] = 0.3, 0.7
    w[9, 10], w[9, 9] = 1.3, -0.3
    fit = fit_joint_map(x17, np.einsum("jk,nkd->njd", w, x17))
    assert np.allclose(fit, w, atol=1e-9) and np.allclose(fit.sum(1), 1)
    # only the nominal joint and its tree neighbours are used
    for j, n in enumerate(SH16_TO_H36M17):
        near = {n} | {k for k in range(17) if H36M17_PARENTS[n] == k or H36M17_PARENTS[k] == n}
        assert set(np.flatnonzero(fit[j])) <= near
    with pytest.raises(ValueError, match=r"x17 \(N, 17, 2\)"):
        fit_joint_map(x17[:, :16], x17[:, :16])


def test_fit_joint_map_is_translation_equivariant():
    from geo.skeleton import fit_joint_map

    rng = np.random.default_rng(1)
    x17, x16 = rng.normal(0, 50, (300, 17, 2)), rng.normal(0, 50, (300, 16, 2))
    w = fit_joint_map(x17, x16)
    t = np.array([123.0, -45.0])
    assert np.allclose(np.einsum("jk,nkd->njd", w, x17 + t), np.einsum("jk,nkd->njd", w, x17) + t)
