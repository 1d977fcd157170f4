"""pyproject.toml and environment.yml list the same dependencies."""
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    """'opencv-python-headless>=4.8' -> 'opencv-python-headless' (PEP 503 normalised)."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    assert m, f"cannot parse requirement {req!r}"
    return re.sub(r"[-_.]+", "-", m.group(1)).lower()


def pip_section(text: str) -> list[str]:
    """The items under '- pip:' in a conda environment.yml (a small hand parser:
    PyYAML is not a dependency)."""
    items, indent = [], None
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].rstrip()
        if not stripped.strip():
            continue
        lead = len(stripped) - len(stripped.lstrip())
        if indent is None:
            if stripped.strip() in ("- pip:", "-  pip:"):
                indent = lead
            continue
        if lead <= indent:
            break
        item = stripped.strip()
        assert item.startswith("- "), f"unexpected line under pip: {line!r}"
        items.append(item[2:].strip().strip("'\""))
    assert indent is not None, "environment.yml has no '- pip:' section"
    return items


def test_pip_section_parser():
    text = "dependencies:\n  - python\n  - pip:\n      - a>=1  # x\n      - B_c\n      - -e .\nother: 1\n"
    assert pip_section(text) == ["a>=1", "B_c", "-e ."]


def test_dependencies_agree():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pip = [r for r in pip_section((REPO / "environment.yml").read_text()) if not r.startswith("-")]
    toml_names, yml_names = [_name(d) for d in deps], [_name(d) for d in pip]
    assert len(set(toml_names)) == len(toml_names) and len(set(yml_names)) == len(yml_names)
    assert sorted(toml_names) == sorted(yml_names), (
        f"only in pyproject.toml: {sorted(set(toml_names) - set(yml_names))}; "
        f"only in environment.yml: {sorted(set(yml_names) - set(toml_names))}")
    assert "torch" in toml_names


def test_pyyaml_agrees_when_available():
    import pytest

    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip == pip_section((REPO / "environment.yml").read_text())
