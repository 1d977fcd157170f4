"""geo: reproducible companion of Chen, Lin et al., *Weakly-Supervised Discovery of
Geometry-Aware Representation for 3D Human Pose Estimation* (CVPR 2019).

Modules, one noun each: ``skeleton`` (joint lists), ``cameras`` (real and virtual
cameras), ``render`` (skeleton maps), ``data`` (loaders), ``metrics``, ``models``,
``losses``, ``train``, ``regress`` (Figure 5/6 experiments), ``results`` (figures
with provenance sidecars).
"""

__version__ = "0.1.0"


def __getattr__(name):
    """``geo.Lifter`` (the Python API of :mod:`geo.lift`), imported on first use so that
    ``import geo`` stays light."""
    if name == "Lifter":
        from geo.lift import Lifter

        return Lifter
    raise AttributeError(f"module 'geo' has no attribute {name!r}")
