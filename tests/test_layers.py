"""The rooms of the house and which way imports may go (ARCHITECTURE.md, "Rooms").

Every ``.py`` of the project is parsed with ``ast`` (nothing is imported or run) and every
import statement in it is checked, at module level and inside functions alike:

* imports only go DOWN ``config > demo > evaluation > generation > heritage > archives > jobs >
  core``: a room may import itself and the rooms below it, never one above;
* ``generation/diffusion/`` is plain Python: no Django (nor DRF, RQ...) and nothing of the
  project outside ``generation.diffusion`` (so nothing of ``demo`` either);
* ``evaluation/metrics.py`` is plain numpy: no Django and nothing of the project at all;
* no two modules import each other at module level, however long the loop (import inside a
  function, or a registry, breaks one: ``archives.bagit_export`` and ``archives.provenance``
  no longer need each other);
* ``archives``, ``jobs`` and ``core`` do not even name a model or module of a room above them
  in a string (``"heritage.itemimage"``): the apps register what those rooms do for them.

``tests/`` and ``bench/`` are exempt (they drive every room); ``manage.py`` is the entry point.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Top to bottom: a room may import only itself and the rooms after it.
ROOMS = ("config", "demo", "evaluation", "generation", "heritage", "archives", "jobs", "core")
EXEMPT = ("tests", "bench", ".venv", "node_modules", "var")
# Third-party packages that are Django or need it configured.
DJANGO_PACKAGES = frozenset(
    {
        "django",
        "rest_framework",
        "drf_spectacular",
        "drf_spectacular_sidecar",
        "django_filters",
        "django_rq",
        "rq",
        "axes",
        "csp",
        "whitenoise",
    }
)
# Imports that run up the layers and are known, with the reason they cannot go yet.
# Keep this empty: an entry is a debt with a name on it, not a permission.
KNOWN_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Import:
    path: str  # relative to the project root
    line: int
    module: str  # the absolute dotted name imported
    top_level: bool = False  # run when the module is imported (not inside a function)
    names: tuple[str, ...] = ()  # of "from module import a, b"

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module}"


def _module_of(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_files() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*.py")
        if path.relative_to(ROOT).parts[0] not in EXEMPT and path.name != "manage.py"
    )


def _imports(path: Path, root: Path = ROOT) -> list[Import]:
    """Every import in the file, module-level or nested, relative ones made absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _module_of(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    rel = path.relative_to(root).as_posix()
    found: list[Import] = []
    top = {id(node) for node in _module_level(tree.body)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(
                Import(rel, node.lineno, alias.name, id(node) in top) for alias in node.names
            )
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # "from a.b import c": the room of a; c may be a module (a.b.c), kept in names.
            names = tuple(alias.name for alias in node.names if alias.name != "*")
            found.append(Import(rel, node.lineno, name, id(node) in top, names))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(Import(rel, node.lineno, node.args[0].value))
    return found


def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements run at import time: the body, and the branches of if/try at that level."""
    out: list[ast.stmt] = []
    for node in body:
        out.append(node)
        if isinstance(node, ast.If | ast.Try):
            branches = [node.body, node.orelse]
            if isinstance(node, ast.Try):
                branches += [h.body for h in node.handlers] + [node.finalbody]
            for branch in branches:
                out.extend(_module_level(branch))
    return out


def _room(dotted: str) -> str | None:
    top = dotted.partition(".")[0]
    return top if top in ROOMS else None


ALL_IMPORTS = [imp for path in _project_files() for imp in _imports(path)]


def test_the_scan_sees_the_project():
    """Guard the guard: it parses every room and sees function-level imports."""
    seen = {_room(imp.path.replace("/", ".")) for imp in ALL_IMPORTS}
    assert set(ROOMS) <= seen
    assert len(ALL_IMPORTS) > 500


def _upward(imports: list[Import]) -> list[str]:
    upward = set()
    for imp in imports:
        here, there = _room(imp.path.replace("/", ".")), _room(imp.module)
        if here is None or there is None or (imp.path, imp.module) in KNOWN_EXCEPTIONS:
            continue
        if ROOMS.index(there) < ROOMS.index(here):
            upward.add(f"{imp} ({here} may not import {there}, which is above it)")
    return sorted(upward)


def test_imports_only_go_down_the_rooms():
    upward = _upward(ALL_IMPORTS)
    assert not upward, "\n".join(upward)


def _plain_python_problems(
    imports: list[Import], prefix: str, allowed_project: str | None
) -> list[str]:
    problems = []
    for imp in imports:
        if not (imp.path == prefix or imp.path.startswith(prefix + "/")):
            continue
        top = imp.module.partition(".")[0]
        if top in DJANGO_PACKAGES:
            problems.append(f"{imp}: plain Python may not import Django")
        elif _room(imp.module) and not (
            allowed_project
            and (imp.module == allowed_project or imp.module.startswith(allowed_project + "."))
        ):
            problems.append(
                f"{imp}: may import nothing of the project"
                + (f" outside {allowed_project}" if allowed_project else "")
            )
    return sorted(set(problems))


@pytest.mark.parametrize(
    ("prefix", "allowed"),
    [("generation/diffusion", "generation.diffusion"), ("evaluation/metrics.py", None)],
)
def test_plain_python_stays_plain(prefix, allowed):
    assert (ROOT / prefix).exists()
    problems = _plain_python_problems(ALL_IMPORTS, prefix, allowed)
    assert not problems, "\n".join(problems)


def _cycles(imports: list[Import], modules: set[str], root: Path = ROOT) -> list[list[str]]:
    """Loops of module-level imports between project modules (Tarjan's components)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        here = _module_of(root / imp.path, root)
        if not imp.top_level:
            continue
        for target in (imp.module, *(f"{imp.module}.{n}" for n in imp.names)):
            if target in modules and target != here:
                graph.setdefault(here, set()).add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return loops


def test_no_module_level_import_cycles():
    modules = {_module_of(p) for p in _project_files()}
    loops = _cycles(ALL_IMPORTS, modules)
    assert not loops, "\n".join(" <-> ".join(loop) for loop in loops)


_UPPER_NAME = re.compile(r"^(config|demo|evaluation|generation|heritage)\.\w+(\.\w+)*$")


def _named_upper(path: Path, room: str, root: Path = ROOT) -> list[str]:
    """String constants (docstrings aside) that name a model or module of a room above."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and _UPPER_NAME.match(node.value)
            and ROOMS.index(node.value.partition(".")[0]) < ROOMS.index(room)
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno} names {node.value!r}")
    return found


@pytest.mark.parametrize("room", ["archives", "jobs", "core"])
def test_the_lower_rooms_name_no_model_or_module_above_them(room):
    """No import, and no label either: what archives and jobs do for an app, the app registers
    (bag.py, jobs.py), so ``"heritage.itemimage"`` is written in heritage only."""
    found = [
        line
        for path in _project_files()
        if path.relative_to(ROOT).parts[0] == room and "migrations" not in path.parts
        for line in _named_upper(path, room)
    ]
    assert not found, "\n".join(found)


def test_the_rules_catch_what_they_should(tmp_path):
    """The checks themselves on a made-up tree, so an empty result above means something."""
    for name, text in {
        "archives/__init__.py": "",
        "archives/bagit_export.py": (
            "from . import models\n"  # archives.models: fine
            "def report():\n"
            "    from evaluation.selectors import study_report\n"  # up, inside a function
        ),
        "jobs/queue.py": "import core.roles\nfrom importlib import import_module\n"
        "import_module('heritage.jobs')\n",  # core is below; heritage is above
        "generation/diffusion/__init__.py": "",
        "generation/diffusion/train.py": (
            "from demo import tiny\nfrom django.conf import settings\nfrom .configs import X\n"
        ),
        "evaluation/metrics.py": "import numpy\nfrom evaluation import stats\n",
        "archives/bagit_import.py": (
            '"""Knows "heritage.collection" in its docstring only."""\n'
            'IMPORTABLE = {"collection": {"heritage.collection", "archives.storedfile"}}\n'
        ),
        "evaluation/__init__.py": "",
        "evaluation/stats.py": "from evaluation import selectors\n",  # a loop of three
        "evaluation/selectors.py": "if True:\n    from evaluation.metrics import x\n",
        "evaluation/services.py": "from evaluation import views\n",  # no loop: views
        "evaluation/views.py": "def f():\n    from evaluation import services\n",  # imports late
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    imports = [imp for p in sorted(tmp_path.rglob("*.py")) for imp in _imports(p, tmp_path)]
    relative = [(i.path, i.line, i.module, i.names) for i in imports]
    assert ("archives/bagit_export.py", 1, "archives", ("models",)) in relative  # from . import
    assert ("generation/diffusion/train.py", 3, "generation.diffusion.configs", ("X",)) in relative
    modules = {_module_of(p, tmp_path) for p in tmp_path.rglob("*.py")}
    assert _cycles(imports, modules, tmp_path) == [
        ["evaluation.metrics", "evaluation.selectors", "evaluation.stats"]
    ]
    assert [line.split(" (")[0] for line in _upward(imports)] == [
        "archives/bagit_export.py:3 imports evaluation.selectors",
        "generation/diffusion/train.py:1 imports demo",
        "jobs/queue.py:3 imports heritage.jobs",
    ]
    diffusion = _plain_python_problems(imports, "generation/diffusion", "generation.diffusion")
    assert [p.split(" imports ")[1].split(":")[0] for p in diffusion] == ["demo", "django.conf"]
    assert _named_upper(tmp_path / "archives/bagit_import.py", "archives", tmp_path) == [
        "archives/bagit_import.py:2 names 'heritage.collection'"
    ]
    metrics = _plain_python_problems(imports, "evaluation/metrics.py", None)
    assert [p.split(" imports ")[1].split(":")[0] for p in metrics] == ["evaluation"]
