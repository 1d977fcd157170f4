"""Figures 7 and 8's panels: each image through a 2D path (the estimator, MPII's annotation,
or both) and the lifter to 3D (Sec. 4, "Qualitative results"). :func:`items` does the
per-image work of notebook 06; :func:`geo.qualitative.figure_wild` draws the panels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from geo import lift
from geo import qualitative
from geo import wild

EST, ANN = "estimator 2D", "annotated 2D"             # the two 2D paths, by their legend label
COLORS = {EST: "tab:orange", ANN: "tab:green"}


@dataclass
class Gallery:
    """``fig7``: one panel per image with the estimator's path (the annotation's when there is
    no estimator); ``fig8``: images with both paths (MPII); ``errors``: per image with both,
    the estimator's 2D error against the annotation and how far apart the two 3D poses are;
    ``failures``: the images that could not be read or detected, each said."""
    fig7: list = field(default_factory=list)
    fig8: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    failures: list = field(default_factory=list)


def _paths_2d(path: Path, img, annotations, estimator):
    """The image's annotated first person (joints, visibility, box) or None, its annotated
    2D (missing joints filled) and the estimator's 2D, each None when not available."""
    people = lift.annotated_people(annotations, path) if annotations is not None and path.name in annotations.image_names else []
    x_ann = lift.fill_missing(people[0][0], people[0][1]) if people else None
    box = lift.crop_box(*people[0][2], img.shape) if people else None
    x_est = lift.detect(estimator, img, str(path), box).joints if estimator is not None else None
    return (people[0] if people else None), x_ann, x_est


def items(paths, annotations, estimator, lifter) -> Gallery:
    """Lift every image of ``paths`` with ``lifter`` (:func:`geo.lift.lifter`) from each 2D
    path there is: ``estimator`` (:class:`geo.wild.Estimator` or None) and ``annotations``
    (:func:`geo.data.mpii.load_mpii_json` or None). An image that cannot be read or detected
    is skipped and said in ``failures``; the others still finish."""
    out = Gallery()
    for p in map(Path, paths):
        try:
            img = wild.read_image(p)
            person, x_ann, x_est = _paths_2d(p, img, annotations, estimator)
        except wild.WildError as e:
            out.failures.append(str(e))
            print("skipped:", e)
            continue
        P = {label: (x, lifter(x[None])[0], COLORS[label]) for label, x in ((EST, x_est), (ANN, x_ann)) if x is not None}
        if not P:
            continue
        note = ""
        if len(P) == 2:
            e2 = qualitative.pck_error(x_est, person[0], person[1])
            e3 = float(qualitative.mpjpe(P[EST][1][None], P[ANN][1][None])[0])
            out.errors.append({"image": p.name, "mean_2d_error_px": e2["mean_px"], "pckh_0.5": e2["pckh_0.5"],
                               "head_px": e2["head_px"], "3d_difference_mm": e3})
            note = f"2D error {e2['mean_px']:.0f} px, PCKh@0.5 {e2['pckh_0.5']:.2f}; 3D differs {e3:.0f} mm"
        item = {"image": img, "name": p.name, "paths": P, "note": note}
        out.fig7.append({**item, "paths": {EST: P[EST]}} if EST in P else item)
        if len(P) == 2 or (estimator is None and x_ann is not None):
            out.fig8.append(item)
    return out
