"""The package's layers: imports only go down, no cycles, no private names across modules.

Every module of ``atf_lite`` is parsed (``ast``, nothing is imported), and every import in it,
at module level or inside a function, is resolved to the module it loads.  The layers, lowest
first; a module may import from its own layer or any lower one:

0. ``_types``, ``_validation``, ``_threads``: shared aliases, argument checks, thread limits;
1. ``linalg``, ``alignment``, ``data``, ``cache``, ``progress``, ``plotting``,
   ``perturbation``: foundations that know nothing of the theory or of networks;
2. ``theory``: penalties, Theorem 1, structured closed forms;
3. ``solvers``: numerical solvers that compute or check the theory;
4. ``networks``: torch models, tangent features and kernels, trainers;
5. ``experiments``: problem generators, the chapters' experiments and the command line;
6. the package itself and ``__main__``: the public surface and the entry point.
"""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

import atf_lite

PACKAGE = pathlib.Path(atf_lite.__file__).resolve().parent
MAX_LINES = 500

LAYERS = {
    "atf_lite._types": 0,
    "atf_lite._validation": 0,
    "atf_lite._threads": 0,
    "atf_lite.linalg": 1,
    "atf_lite.alignment": 1,
    "atf_lite.data": 1,
    "atf_lite.cache": 1,
    "atf_lite.progress": 1,
    "atf_lite.plotting": 1,
    "atf_lite.perturbation": 1,
    "atf_lite.theory": 2,
    "atf_lite.solvers": 3,
    "atf_lite.networks": 4,
    "atf_lite.experiments": 5,
    "atf_lite": 6,
    "atf_lite.__main__": 6,
}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(name: str) -> int:
    """The layer of a module: that of its longest prefix in ``LAYERS``."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise KeyError(f"{name} is in no layer: add it to LAYERS in {__file__}")


def _package_of(name: str, modules: dict[str, pathlib.Path]) -> str:
    return name if modules[name].name == "__init__.py" else name.rpartition(".")[0]


def _resolve(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str, modules: dict[str, pathlib.Path]) -> list[tuple[str, list[str], int]]:
    """``(module, imported names, line)`` for every import of an atf_lite module in ``name``.

    ``from X import y`` where ``X.y`` is itself a module counts as an import of ``X.y``.
    """
    tree = ast.parse(modules[name].read_text(), filename=str(modules[name]))
    package = _package_of(name, modules)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "atf_lite":
                    found.append((alias.name, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, package)
            if target.split(".")[0] != "atf_lite":
                continue
            plain = []
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    found.append((f"{target}.{alias.name}", [], node.lineno))
                else:
                    plain.append(alias.name)
            if plain:
                found.append((target, plain, node.lineno))
    return found


def private_attribute_uses(name: str, modules: dict[str, pathlib.Path]) -> list[tuple]:
    """``module._name`` accesses through a module bound by ``import ... as`` or
    ``from package import module``: ``(module, attribute, line)``."""
    tree = ast.parse(modules[name].read_text())
    package = _package_of(name, modules)
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(node, package)
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    aliases[alias.asname] = alias.name
    return [
        (aliases[node.value.id], node.attr, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in aliases
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]


def violations(modules: dict[str, pathlib.Path]) -> dict[str, list[str]]:
    """Every breach of the rules in ``modules`` (name → path), by kind."""
    found: dict[str, list[str]] = {
        "unresolved": [], "upward": [], "private": [], "cycle": [], "long": []
    }
    edges = {}
    for name, path in modules.items():
        edges[name] = set()
        for target, names, line in imports(name, modules):
            where = f"{name}:{line}"
            if target not in modules:
                found["unresolved"].append(f"{where} imports {target}, which does not exist")
                continue
            edges[name].add(target)
            if layer(target) > layer(name):
                found["upward"].append(
                    f"{where} (layer {layer(name)}) imports {target} (layer {layer(target)})"
                )
            for imported in names:
                if imported.startswith("_") and not imported.startswith("__"):
                    found["private"].append(f"{where} imports {imported} from {target}")
        for target, attribute, line in private_attribute_uses(name, modules):
            found["private"].append(f"{name}:{line} uses {target}.{attribute}")
        if (count := len(path.read_text().splitlines())) > MAX_LINES:
            found["long"].append(f"{name}: {count} lines")

    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node] - {node}):
            if state.get(target) == 1:
                found["cycle"].append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for name in sorted(modules):
        if name not in state:
            visit(name, [name])
    return found


@pytest.fixture(scope="module")
def found():
    return violations(MODULES)


def test_every_module_has_a_layer():
    for name in MODULES:
        layer(name)


@pytest.mark.parametrize("kind", ["unresolved", "upward", "private", "cycle", "long"])
def test_the_package_keeps_its_architecture(found, kind):
    assert not found[kind], f"{kind}:\n" + "\n".join(found[kind])


def test_the_checks_detect_what_they_forbid(tmp_path):
    """The checks are not vacuous: each fires on planted modules (parsed, never imported)."""
    plant = {
        "atf_lite.theory._planted_a": (
            "from ..networks.tangent import tangent_kernel\n"  # upward
            "from .penalties import _vectorised\n"  # a private name of another module
            "from . import theorem1\n"
            "from . import _planted_b\n"  # half of a cycle
            "x = theorem1._relative\n"  # a private attribute of another module
            + "y = 1\n" * MAX_LINES  # too long
        ),
        "atf_lite.theory._planted_b": "from ._planted_a import x\nfrom .nowhere import z\n",
    }
    modules = dict(MODULES)
    for name, text in plant.items():
        path = tmp_path / f"{name.rpartition('.')[2]}.py"
        path.write_text(text)
        modules[name] = path
    found = violations(modules)
    assert any("imports atf_lite.networks.tangent" in v for v in found["upward"])
    assert any("_vectorised" in v for v in found["private"])
    assert any("theorem1._relative" in v for v in found["private"])
    assert any("_planted_a -> atf_lite.theory._planted_b" in v for v in found["cycle"])
    assert any("atf_lite.theory.nowhere" in v for v in found["unresolved"])
    assert any("_planted_a" in v for v in found["long"])


def test_public_surface_resolves_and_is_documented():
    api = (PACKAGE.parent / "book" / "api.md").read_text()
    for name in atf_lite.__all__:
        if name == "__version__":
            continue
        value = getattr(atf_lite, name)
        module = importlib.import_module(atf_lite._EXPORTS[name])
        assert getattr(module, name) is value
        assert name in module.__all__, f"{name} is exported but not in {module.__name__}.__all__"
        assert f"{name}`" in api, f"{name} is exported but not listed on book/api.md"
        assert layer(module.__name__) < LAYERS["atf_lite"]
    assert len(atf_lite.__all__) == len(set(atf_lite.__all__))
    assert set(atf_lite._EXPORTS) <= set(dir(atf_lite))


def test_python_dash_m_entry_point_still_works(capsys):
    from atf_lite.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "alignment" in out and "sample-complexity" in out
