"""The package's import structure, read from the source with ``ast`` (nothing is imported):
every import of a geo module sits at the top of its file, never inside a function, and
the modules' top-level imports form no cycle, so that each module can be imported on its
own and the layers (skeleton, cameras, data, ... train, experiments, pipeline, the
command line) depend only downwards."""
import ast
from pathlib import Path

import pytest

GEO = Path(__file__).resolve().parents[1] / "geo"


def module_name(path: Path) -> str:
    """``geo/data/h36m.py`` -> ``geo.data.h36m``; ``geo/data/__init__.py`` -> ``geo.data``."""
    parts = list(path.relative_to(GEO.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


FILES = {module_name(p): p for p in sorted(GEO.rglob("*.py"))}


def imported_from(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute name of the module a ``from X import ...`` reads (relative ones
    resolved against ``module``)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def geo_targets(module: str, node, is_package: bool, modules) -> list[str]:
    """The geo modules an import statement of ``module`` depends on: ``import geo.a.b``
    -> geo.a.b; ``from geo.a import b`` -> geo.a.b when that is a module, else geo.a."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    src = imported_from(module, node, is_package)
    out = []
    for a in node.names:
        if f"{src}.{a.name}" in modules:
            out.append(f"{src}.{a.name}")
        elif src in modules:
            out.append(src)
    return out


def is_geo(module: str, node, is_package: bool) -> bool:
    """Whether an import statement names geo or one of its modules (relative ones always do)."""
    if isinstance(node, ast.Import):
        return any(a.name == "geo" or a.name.startswith("geo.") for a in node.names)
    src = imported_from(module, node, is_package)
    return node.level > 0 or src == "geo" or src.startswith("geo.")


def local_imports(tree: ast.AST):
    """(function name, import node) of every import statement inside a function, at any depth."""
    seen = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in seen:
                    seen.add(id(node))
                    yield fn.name, node


def top_level_imports(tree: ast.Module):
    """Import statements that run when the module is imported: those of the module body,
    including ones nested in ``if``/``try``/``with`` blocks and class bodies, but not
    those inside functions."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        todo.extend(ast.iter_child_nodes(node))


def import_graph(files=None) -> dict:
    """{module: {imported geo module: (file, line) of the first import}} from top-level imports."""
    files = FILES if files is None else files
    graph = {}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges = {}
        for node in top_level_imports(tree):
            for t in geo_targets(mod, node, path.name == "__init__.py", files):
                if t != mod:
                    edges.setdefault(t, (path, node.lineno))
        graph[mod] = edges
    return graph


def find_cycle(graph: dict) -> list | None:
    """One cycle [a, b, ..., a] of ``graph`` ({node: iterable of nodes}), by depth-first
    search (a back edge to a node still on the path), or None when it has none."""
    state = {}          # absent: not seen; 1: on the current path; 2: done
    path = []

    def visit(v):
        state[v] = 1
        path.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        path.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def test_the_package_is_read():
    assert {"geo", "geo.__main__", "geo.data", "geo.data.h36m", "geo.train", "geo.train.loop"} <= set(FILES)


def test_no_geo_import_inside_a_function():
    """Every geo module a file needs is imported at its top, so that what a module depends
    on is visible in one place and an import cycle cannot hide behind a function call.
    (Optional third-party packages, such as mediapipe and cv2, may still be imported where
    they are used.)"""
    bad = []
    for mod, path in FILES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for fn, node in local_imports(tree):
            if is_geo(mod, node, path.name == "__init__.py"):
                bad.append(f"{path.relative_to(GEO.parent)}:{node.lineno}: module {mod}, in {fn}(): "
                           f"{ast.unparse(node)}")
    assert not bad, ("geo modules imported inside functions; import them at the top of the file "
                     "(move shared code down a layer if that makes a cycle):\n  " + "\n  ".join(bad))


def test_no_import_cycle():
    graph = import_graph()
    cycle = find_cycle({m: set(e) for m, e in graph.items()})
    if cycle:
        steps = [f"{a} -> {b} ({graph[a][b][0].relative_to(GEO.parent)}:{graph[a][b][1]})"
                 for a, b in zip(cycle, cycle[1:])]
        pytest.fail("import cycle among geo's modules:\n  " + "\n  ".join(steps))


def test_every_module_is_in_the_graph():
    graph = import_graph()
    assert set(graph) == set(FILES)
    assert "geo.train.config" in graph["geo.train.loop"]             # from geo.train.config import ...
    assert "geo.distributed" in graph["geo.train.loop"]              # from geo import distributed as D
    assert "geo.data" in graph["geo.regress"]                        # from geo.data import Dataset (a name)


# ------------------------------------------------------------- the checks can fail
def test_cycle_detector_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a"}}) is None


def test_local_and_relative_imports_are_seen(tmp_path):
    pkg = tmp_path / "geo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from geo.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("import numpy\n\n\ndef f():\n    from .. import a\n    from ..a import x\n"
                                      "    import json\n    return a, x, json\n")
    files = {"geo": pkg / "__init__.py", "geo.a": pkg / "a.py", "geo.sub": pkg / "sub" / "__init__.py",
             "geo.sub.b": pkg / "sub" / "b.py"}
    tree = ast.parse(files["geo.sub.b"].read_text())
    found = [(fn, ast.unparse(n)) for fn, n in local_imports(tree) if is_geo("geo.sub.b", n, False)]
    assert found == [("f", "from .. import a"), ("f", "from ..a import x")]
    targets = [geo_targets("geo.sub.b", n, False, files) for _, n in local_imports(tree)]
    assert targets == [["geo.a"], ["geo.a"], []]
    # the same imports at the top of b make a cycle a -> sub.b -> a
    (pkg / "sub" / "b.py").write_text("from .. import a\n")
    graph = import_graph(files)
    assert graph["geo.a"] == {"geo.sub.b": (files["geo.a"], 1)}
    assert find_cycle({m: set(e) for m, e in graph.items()}) == ["geo.a", "geo.sub.b", "geo.a"]


PROFILE_TABLES = ("PROFILES", "EXPERIMENTS", "SCHEDULES", "ROWS", "TRAIN", "LIFT", "RUNS", "QUALITATIVE")


def profile_tables(tree: ast.AST) -> list[str]:
    """Module-level dicts keyed by profile name (``"quick"`` among the keys) a module defines."""
    out = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            keys = {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
            if "quick" in keys or "full" in keys:
                out += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return out


def test_profiles_live_in_one_plain_module():
    """Every profile table is in geo/profiles.py, which imports no geo module (plain data
    at the bottom of the layers); no other module defines a dict keyed by profile."""
    tree = ast.parse(FILES["geo.profiles"].read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                and is_geo("geo.profiles", n, False)]
    assert set(profile_tables(tree)) == {"TRAIN", "EXPERIMENTS", "SCHEDULES", "LIFT", "RUNS", "PUBLISHED", "QUALITATIVE"}
    elsewhere = {m: t for m, p in FILES.items() if m != "geo.profiles"
                 for t in [profile_tables(ast.parse(p.read_text()))] if t}
    assert not elsewhere, elsewhere


def test_profile_tables_check_finds_one():
    assert profile_tables(ast.parse('X = {"quick": 1, "full": 2}\nY = {"a": 1}\n')) == ["X"]


def code_lines(node: ast.AST, lines: list[str]) -> int:
    """Lines of a function that are code: not blank, not a comment, not its docstring."""
    doc = set()
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        doc = set(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for i in range(node.lineno, node.end_lineno + 1)
               if lines[i - 1].strip() and not lines[i - 1].strip().startswith("#") and i not in doc)


def test_no_function_over_70_lines_of_code():
    """Functions read top to bottom on one screen: a longer one is split by job."""
    long = []
    for m, p in FILES.items():
        src = p.read_text()
        lines = src.splitlines()
        long += [f"{m}.{n.name}: {code_lines(n, lines)}" for n in ast.walk(ast.parse(src))
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and code_lines(n, lines) > 70]
    assert not long, long


def test_code_lines_skip_docstring_comments_and_blanks():
    src = 'def f():\n    """Doc\n    string."""\n    # why\n\n    x = 1\n    return x\n'
    assert code_lines(ast.parse(src).body[0], src.splitlines()) == 3


def test_the_project_speaks_only_of_itself():
    """No code, test or README line speaks of how machines are lent or cites an issue by
    number: the project speaks of a GPU, a time budget, a run; a number's history belongs
    in benchmarks/results/."""
    import re

    pat = re.compile(r"\b(" + "lea" + r"ses?|" + "iss" + r"ues? #?[0-9]+)\b", re.I)   # split: this file must pass
    root = GEO.parent
    paths = [*FILES.values(), *sorted((root / "tests").glob("*.py")), root / "README.md"]
    hits = [f"{p.relative_to(root)}:{i}" for p in paths for i, line in enumerate(p.read_text().splitlines(), 1)
            if pat.search(line)]
    assert not hits, hits


def test_one_place_asks_for_cuda():
    """"CUDA when there is one" is asked in geo/device.py only (``has_cuda``), so that a
    test or a user who wants the CPU path has one thing to patch."""
    asks = [name for name, path in FILES.items() if "cuda.is_available" in path.read_text()]
    assert asks == ["geo.device"], asks


def test_the_training_package_reads_in_small_files():
    """geo/train is split by concern (config, checkpoint, step, loop, ...): no file of it
    grows back to the size of the one train.py it replaced; each stays under 300 lines."""
    sizes = {name: len(path.read_text().splitlines()) for name, path in FILES.items() if name.startswith("geo.train")}
    assert len(sizes) >= 5 and max(sizes.values()) < 300, sizes
