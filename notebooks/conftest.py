"""Notebook tests (nbval). The notebooks run in the quick profile, whose results
`geo.results` writes under ``runs/figures/`` (never over the committed ``figures/``); set
``GEO_FIGURES`` to send them elsewhere. As a guard, the session fails if running the
notebooks changed any tracked file of the repository."""
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _tracked_changes():
    try:
        r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


_BEFORE = _tracked_changes()


def pytest_itemcollected(item):
    """nbval's cells of the notebooks carry the ``notebook`` marker, so that
    ``-m "not notebook"`` leaves them out like the papermill runs of tests/."""
    if Path(str(getattr(item, "path", item.fspath))).suffix == ".ipynb":
        item.add_marker("notebook")


def pytest_sessionfinish(session, exitstatus):
    after = _tracked_changes()
    if _BEFORE is not None and after is not None and after != _BEFORE:
        changed = sorted(set(after.splitlines()) - set(_BEFORE.splitlines()))
        print("\nERROR: running the notebooks changed tracked files:\n  " + "\n  ".join(changed))
        session.exitstatus = 1
