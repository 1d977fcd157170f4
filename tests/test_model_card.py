"""The model card (weights/MODEL_CARD.md) is kept current: every committed weights file,
generator part or regressor head, has its row with the sha256 its sidecar gives."""
import json
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def committed_files():
    for side in sorted(WEIGHTS.rglob("*.json")):
        meta = json.loads(side.read_text())
        prefix = side.parent.relative_to(WEIGHTS).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        files = meta["files"].items() if "files" in meta else [(meta["file"], meta)]
        for name, info in files:
            yield prefix + name, info["sha256"]


def test_every_weights_file_has_its_row_and_sha256():
    card = (WEIGHTS / "MODEL_CARD.md").read_text()
    files = list(committed_files())
    assert files, f"no weight sidecars found under {WEIGHTS}"
    rows = {ln.split("|")[2].strip(" `"): ln for ln in card.splitlines() if ln.startswith("| ") and ln.count("|") >= 5}
    for name, sha in files:
        assert name in rows, f"{name}: no row in MODEL_CARD.md"
        assert f"`{sha}`" in rows[name], f"{name}: MODEL_CARD.md gives another sha256 than its sidecar ({sha})"


def test_the_card_says_what_the_weights_are_for():
    card = (WEIGHTS / "MODEL_CARD.md").read_text().lower()
    for must in ("training data", "intended use", "non-commercial", "held-out iou", "failure"):
        assert must in card, must
