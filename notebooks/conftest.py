"""Notebook tests (nbval) write their figures to a temporary folder, never over the
committed results in figures/ (geo.results reads $GEO_FIGURES). The kernels nbval starts
inherit this environment. Set GEO_FIGURES yourself to keep the test figures."""
import os
import tempfile

if "GEO_FIGURES" not in os.environ:
    os.environ["GEO_FIGURES"] = tempfile.mkdtemp(prefix="geo-nbval-figures-")
