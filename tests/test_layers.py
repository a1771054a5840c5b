"""The packages import each other in one direction only: the layers of README's "How the code is laid out".

Every module of every package is read as source (its AST), every import of one
of our packages is listed, including imports inside functions and under
TYPE_CHECKING, and checked against the layers below.
"""
import ast
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Each package and the packages of ours it may import. Everything else points up, or sideways.
MAY_IMPORT = {
    "core": set(),
    "index": {"core"},
    "records": {"core"},
    "ingest": {"core", "index"},
    "retrieval": {"core", "index"},
    "evals": {"core", "index", "ingest", "retrieval"},
    "ui": {"core", "records", "retrieval", "evals"},
    "reportqa": {"core", "index", "records", "ingest", "retrieval", "evals", "ui"},
}
OURS = set(MAY_IMPORT)


def imports_of(path: Path) -> set[str]:
    """Our top-level packages that a module imports, wherever in the module the import stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


def package_imports() -> dict[str, dict[str, set[str]]]:
    """package -> module path -> our other packages it imports."""
    return {package: {str(path.relative_to(PROJECT_ROOT)): imports_of(path) - {package}
                      for path in sorted((PROJECT_ROOT / package).rglob("*.py"))}
            for package in MAY_IMPORT}


def test_every_package_imports_only_the_layers_below_it():
    wrong = [f"{module} imports {', '.join(sorted(used - MAY_IMPORT[package]))}"
             for package, modules in package_imports().items()
             for module, used in modules.items() if used - MAY_IMPORT[package]]
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_core_imports_nothing_of_ours_and_the_lower_layers_nothing_of_the_app():
    imports = package_imports()
    assert all(not used for used in imports["core"].values())
    for package in ("index", "ingest", "retrieval"):
        for module, used in imports[package].items():
            assert not used & {"reportqa", "ui", "evals"}, module


def test_there_is_no_cycle_between_packages():
    graph = {package: set().union(*modules.values()) for package, modules in package_imports().items()}
    state: dict[str, str] = {}

    def visit(package: str, path: list[str]) -> None:
        state[package] = "open"
        for used in graph[package]:
            assert state.get(used) != "open", "import cycle: " + " -> ".join([*path, package, used])
            if used not in state:
                visit(used, [*path, package])
        state[package] = "done"

    for package in graph:
        if package not in state:
            visit(package, [])


def test_the_layers_cover_every_package_of_the_project():
    packages = {p.parent.name for p in PROJECT_ROOT.glob("*/__init__.py")}
    assert packages == OURS, f"a package without a layer: {packages ^ OURS}"
