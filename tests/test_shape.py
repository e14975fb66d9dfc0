"""Every protocol package has the same files with the same roles, and its rules stay free of I/O.

`settings.py` (a `WebSocketSettings`), `wire.py`, `logic.py`, `adapter.py`,
`service.py` (with `make_service`). `wire` and `logic`, and every freescore
module they import (a `store` module aside: that is where a protocol's files
are written), import no Twisted or Autobahn and touch no file.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from freescore import registry
from freescore.settings import WebSocketSettings

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("settings", "wire", "logic", "adapter", "service")
IO_FRAMEWORKS = ("twisted", "autobahn", "txaio", "zope")
FILE_CALLS = frozenset({
    "open", "write_text", "write_bytes", "read_text", "read_bytes", "mkdir", "unlink", "rmdir", "iterdir",
    "write_atomic",
})
"""Calls that touch the file system whatever they are called on (`open()`, `Path.write_text()`)."""
OS_CALLS = frozenset({"replace", "rename", "remove", "scandir", "listdir", "stat", "chmod", "fsync"})
"""`os.<call>()`: the same names on a string (`str.replace`) are no I/O."""
FILE_MODULES = frozenset({"shutil", "tempfile", "persist"})


def module_path(name: str) -> Path:
    return ROOT / (name.replace(".", "/") + ".py")


def imported(node: ast.AST) -> set[str]:
    """The freescore modules one import statement names (none for any other node)."""
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("freescore"):
        subs = (f"{node.module}.{alias.name}" for alias in node.names)
        found = {sub if module_path(sub).exists() else node.module for sub in subs}
    elif isinstance(node, ast.Import):
        found = {a.name for a in node.names if a.name.startswith("freescore")}
    else:
        return set()
    return {m for m in found if module_path(m).exists()}


def freescore_imports(name: str) -> set[str]:
    """The freescore modules `name` imports (its own package's, and the kit's)."""
    return {m for node in ast.walk(ast.parse(module_path(name).read_text())) for m in imported(node)}


def rules_modules(package: str) -> set[str]:
    """wire and logic, and what they import, transitively; a `store` module is where files belong."""
    todo = [f"freescore.{package}.wire", f"freescore.{package}.logic"]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name.rsplit(".", 1)[-1] == "store":
            continue
        seen.add(name)
        todo.extend(freescore_imports(name))
    return seen


def io_in(name: str) -> list[str]:
    """What in module `name` imports an I/O framework or touches files, as `module:line what`."""
    tree = ast.parse(module_path(name).read_text())
    found = []
    for node in ast.walk(tree):
        modules = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for m in modules:
            if m.split(".")[0] in IO_FRAMEWORKS or m.split(".")[-1] in FILE_MODULES:
                found.append(f"{name}:{node.lineno} imports {m}")
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            on_os = isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "os"
            if called in FILE_CALLS or (on_os and called in OS_CALLS):
                found.append(f"{name}:{node.lineno} calls {called}()")
    return found


@pytest.mark.parametrize("package", sorted(registry.SERVICES))
def test_every_protocol_package_has_the_five_files(package):
    folder = ROOT / "freescore" / package
    assert [role for role in ROLES if not (folder / f"{role}.py").is_file()] == []
    settings = importlib.import_module(f"freescore.{package}.settings").Settings
    assert issubclass(settings, WebSocketSettings) and registry.SERVICES[package] is settings
    assert callable(importlib.import_module(f"freescore.{package}.service").make_service)


@pytest.mark.parametrize("package", sorted(registry.SERVICES))
def test_wire_and_logic_do_no_io(package):
    assert [hit for name in sorted(rules_modules(package)) for hit in io_in(name)] == []


def poomsae_modules() -> list[str]:
    return sorted(f"freescore.poomsae.{p.stem}" for p in (ROOT / "freescore" / "poomsae").glob("*.py"))


POOMSAE_IO = ("store", "adapter", "service")
"""The FreeScore layer's modules that may do I/O, in the roles a protocol package gives them."""


@pytest.mark.parametrize("name", [m for m in poomsae_modules() if m.rsplit(".", 1)[-1] not in POOMSAE_IO])
def test_the_freescore_layer_is_pure_but_its_store_adapter_and_service(name):
    """freestyle and grassroots build their wire and logic on these: they must stay free of I/O too."""
    assert io_in(name) == []


def test_the_rules_reach_no_io_module_of_the_freescore_layer():
    for package in ("worldclass", "freestyle"):
        reached = {m.rsplit(".", 1)[-1] for m in rules_modules(package) if m.startswith("freescore.poomsae.")}
        assert reached and not reached & set(POOMSAE_IO)


def test_the_io_check_sees_what_it_looks_for():
    """The check itself: a store touches files, and the rules' closure leaves stores out."""
    store_hits = io_in("freescore.poomsae.store")
    assert any("persist" in h for h in store_hits) and any("calls scandir()" in h for h in store_hits)
    assert any("calls replace()" in h for h in io_in("freescore.persist"))
    assert "freescore.clicker.store" not in rules_modules("clicker")
    assert "freescore.poomsae.store" not in rules_modules("worldclass")
    assert "freescore.worldclass.store" not in rules_modules("worldclass")
    assert any("imports twisted" in h for h in io_in("freescore.poomsae.service"))
    assert "freescore.poomsae.ids" in rules_modules("worldclass")
    assert any("imports twisted" in h for h in io_in("freescore.clicker.store"))


def import_time_imports(name: str) -> set[str]:
    """The freescore modules `name` imports when it is imported: not under `if TYPE_CHECKING:`, not in a function."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
            elif isinstance(child, ast.Import | ast.ImportFrom):
                found.update(imported(child))
            elif not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child)

    visit(ast.parse(module_path(name).read_text()))
    return found - {name}


def test_no_import_cycles_at_run_time():
    """An adapter may name its service's class for type checking only (docs/architecture.md), never import it."""
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "freescore").rglob("*.py") if p.name != "__init__.py"
    )
    graph = {m: import_time_imports(m) for m in modules}
    cycles = []
    done: set[str] = set()

    def walk(module: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(module, ())):
            if nxt in path:
                cycles.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif nxt not in done:
                walk(nxt, [*path, nxt])
        done.add(module)

    for module in modules:
        if module not in done:
            walk(module, [module])
    assert cycles == []
    assert "freescore.events.adapter" in graph["freescore.events.service"]  # the check sees imports
