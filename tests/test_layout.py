"""The package's structure: no writes into other objects' ``__dict__``, no import cycle.

No module writes into an object's ``__dict__`` except the cache helper
(``woodbury_sparse/_cache.py``): a value an object receives from another (a reused
factorisation, an unchanged product) is a constructor argument, never a write afterwards.
The same check from a shell::

    grep -nE '__dict__(\\[[^]]*\\] *=[^=]|\\.(update|setdefault|pop|clear|__setitem__)\\()' \\
        -r woodbury_sparse --include='*.py' | grep -v '^woodbury_sparse/_cache.py'

The import graph of the package (``ast``, run-time imports only) is acyclic, and no
function body imports a package module: the layers depend in one direction, as the
README's layout section draws them.

No module imports an underscore name from a sibling module: what modules share is an
unprefixed name of a private module (``from ._validation import as_count``); the few
exceptions are declared, with their reasons, in ``DECLARED_PRIVATE_IMPORTS``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import woodbury_sparse

PACKAGE = Path(woodbury_sparse.__file__).parent

#: A write into a ``__dict__``: item assignment or deletion, or a mutating method.
DICT_WRITE = re.compile(
    r"__dict__\s*\[[^\]]*\]\s*=[^=]"
    r"|del\s+[\w.]*__dict__\s*\["
    r"|__dict__\s*\.\s*(update|setdefault|pop|popitem|clear|__setitem__|__delitem__)\s*\("
)


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_pattern_finds_writes():
    for line in (
        'obj.__dict__["x"] = 1',
        "obj.__dict__[name]=value",
        'del obj.__dict__["x"]',
        "obj.__dict__.update(state)",
        'obj.__dict__.pop("x", None)',
        "obj.__dict__.setdefault(k, v)",
    ):
        assert DICT_WRITE.search(line), line
    for line in ('obj.__dict__.get("x")', 'x = obj.__dict__["x"] == 1', "dict(obj.__dict__)"):
        assert not DICT_WRITE.search(line), line


def test_no_dict_writes_outside_the_cache_helper():
    writes = []
    for path in _sources():
        if path.name == "_cache.py" and path.parent == PACKAGE:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if DICT_WRITE.search(line):
                writes.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert writes == []


# -- the import graph -----------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in _sources()}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The package modules an import statement of ``module`` imports."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in MODULES}
    if node.level == 0:
        base = node.module or ""
    else:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    found = {f"{base}.{alias.name}" for alias in node.names} & MODULES.keys()
    return found or ({base} & MODULES.keys())


def _imports(module: str) -> tuple[set[str], list[str]]:
    """``module``'s run-time imports of package modules, and those made in function bodies."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    edges: set[str] = set()
    in_functions: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # annotations only: not imported at run time
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                targets = _targets(module, child)
                edges.update(targets)
                if in_function and targets:
                    in_functions.append(f"{module}:{child.lineno} imports {sorted(targets)}")
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            visit(child, inner)

    visit(tree, False)
    edges.discard(module)
    return edges, in_functions


GRAPH = {module: _imports(module)[0] for module in MODULES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or ``None`` when it is acyclic (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_function_imports_a_package_module():
    assert [line for module in MODULES for line in _imports(module)[1]] == []


def test_the_import_graph_is_acyclic():
    graph = {
        module: {t for t in targets if not module.startswith(t + ".")}  # parent packages
        for module, targets in GRAPH.items()
    }
    assert _cycle(graph) is None


def _reachable(module: str) -> set[str]:
    reachable, todo = set(), [module]
    while todo:
        for target in GRAPH[todo.pop()]:
            if target not in reachable:
                reachable.add(target)
                todo.append(target)
    return reachable


def test_the_core_imports_none_of_its_users():
    """Statistics, updates, ggm and dask use the operators; the operators use none of them,
    and the state (``_core``) uses no operator."""
    users = {
        f"woodbury_sparse.{name}"
        for name in (
            "stats",
            "updates",
            "ggm",
            "dask",
            "posterior",
            "constraints",
            "gradients",
            "fitting",
        )
    }
    assert _reachable("woodbury_sparse._operators") & users == set()
    assert "woodbury_sparse._core" in _reachable("woodbury_sparse._operators")
    assert "woodbury_sparse._operators" not in _reachable("woodbury_sparse._core")
    assert "woodbury_sparse._updating" not in _reachable("woodbury_sparse._core")
    assert "woodbury_sparse._factor" in _reachable("woodbury_sparse._core")


# -- private names ----------------------------------------------------------------------------
#: The underscore names a package module may import from a sibling, each with its reason.
#: Everything else a module shares with its siblings is an unprefixed name of a private
#: module (``_validation.as_count``, ``_core.State``): the underscore on a module marks it
#: internal to the package; an underscore on a name inside it, internal to that module.
DECLARED_PRIVATE_IMPORTS = {
    # stats re-exports the covariance's unpickling function: pickles written before
    # _covariance existed name it woodbury_sparse.stats._covariance_of.
    ("woodbury_sparse.stats", "woodbury_sparse._covariance", "_covariance_of"),
}


def _private_imports(module: str) -> list[tuple[str, str, str]]:
    """``(module, source, name)`` for every underscore name ``module`` imports from a
    sibling package module (importing a private submodule itself is not such a name)."""
    found = []
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        for alias in node.names:
            if not alias.name.startswith("_") or alias.name.startswith("__"):
                continue
            targets = _targets(
                module, ast.ImportFrom(module=node.module, names=[alias], level=node.level)
            )
            source = next(iter(targets), None)
            if source is None or source.endswith("." + alias.name):
                continue  # not a package module, or a submodule
            if not node.module and any(MODULES[source].parent.glob(alias.name + ".*")):
                continue  # a compiled submodule (``from . import _takahashi``)
            found.append((module, source, alias.name))
    return found


def test_the_private_import_finder_finds_them():
    assert ("woodbury_sparse.stats", "woodbury_sparse._covariance", "_covariance_of") in (
        _private_imports("woodbury_sparse.stats")
    )
    assert _private_imports("woodbury_sparse.updates") == []  # `from . import _updating`


def test_no_module_imports_a_siblings_private_name():
    found = {item for module in MODULES for item in _private_imports(module)}
    assert found - DECLARED_PRIVATE_IMPORTS == set()


# -- one integer check -------------------------------------------------------------------------
#: The spellings of "is this an integer?"; only ``_validation`` (``as_count``,
#: ``require_integer``) may use them, so every argument is held to the same rule: NumPy
#: integers count, a bool does not, a float is not truncated.
INTEGER_CHECK = re.compile(r"operator\.index\(|np\.integer\b|numbers\.Integral|\bIntegral\b")


def test_integers_are_checked_in_one_place():
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in _sources()
        if path.name != "_validation.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if INTEGER_CHECK.search(line)
    ]
    assert found == []


# -- the core's interface ------------------------------------------------------------------
#: The private attributes of an operator its users may read: its state (``_core.State``,
#: whose public methods are the core's interface) and the constructor from parts.
OPERATOR_INTERFACE = {"_state", "_from_parts"}

#: The modules that reach operators only through that interface.
THROUGH_THE_STATE = (
    "ggm",
    "dask",
    "updates",
    "stats",
    "gradients",
    "fitting",
    "_arguments",
    "_covariance",
    "_updating",
    "_process_cache",
    "posterior",
    "constraints",
    "_gaussian",
)


def _foreign_private_attributes(module: str) -> list[str]:
    """``module``'s reads of another object's underscore attributes (not ``self``/``cls``)."""
    found = []
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__") or (
            isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
        ):
            continue
        if isinstance(node.value, ast.Name) and f"woodbury_sparse.{node.value.id}" in MODULES:
            continue  # a private module's name, e.g. ``_updating.update_a``
        found.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_users_of_the_core_read_only_its_interface():
    found = [
        line
        for name in THROUGH_THE_STATE
        for line in _foreign_private_attributes(f"woodbury_sparse.{name}")
        if line.rpartition(".")[2] not in OPERATOR_INTERFACE
    ]
    assert found == []
