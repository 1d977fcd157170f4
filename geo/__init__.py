"""geo: reproducible companion of Chen, Lin et al., *Weakly-Supervised Discovery of
Geometry-Aware Representation for 3D Human Pose Estimation* (CVPR 2019).

Modules, one noun each: ``skeleton`` (joint lists), ``cameras`` (real and virtual
cameras), ``render`` (skeleton maps), ``data`` (loaders), ``metrics``, ``models``,
``losses``, ``train``, ``regress`` (Figure 5/6 experiments), ``results`` (figures
with provenance sidecars). ``geo.Lifter`` is the Python API of :mod:`geo.lift`.
"""

__version__ = "0.1.0"

from geo.lift import Lifter  # noqa: E402, F401 - geo.Lifter, the Python API
