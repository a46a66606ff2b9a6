"""The package's layering, read from the source with ``ast``.

Imports run one way: engine → io → jobs (samples, phantom, compare, batch) →
plugin → cli. Only the plugin imports napari, magicgui or Qt; io never imports
distributed; the engine imports nothing of the package. ``napari_xray``'s own
``__init__`` is the lazy scripting API over all layers and is checked by
running it instead.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_xray"

#: Rank of each top-level part of the package; a module may import only ranks <= its own.
LAYERS = {
    "errors": 0,
    "engine": 1,
    "io": 2,
    "samples": 3,
    "phantom": 3,
    "compare": 3,
    "recipe": 3,
    "explain": 3,
    "batch": 3,
    "plugin": 4,
    "cli": 5,
    "__main__": 5,
}
GUI_PACKAGES = {
    "napari",
    "magicgui",
    "qtpy",
    "superqt",
    "vispy",
    "PyQt5",
    "PyQt6",
    "PySide2",
    "PySide6",
    "napari_matplotlib",
}
ENGINE_THIRD_PARTY = {"numpy", "scipy", "cv2"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_package_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE / relative).with_suffix(".py").is_file() or (
        PACKAGE / relative / "__init__.py"
    ).is_file()


def _imports(path: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    """Every module ``path`` imports, anywhere in it (also inside functions), with line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module, tuple(a.name for a in node.names)))
            for alias in node.names:  # `from napari_xray.plugin import viewer` names a module
                candidate = f"{module}.{alias.name}"
                if candidate.startswith("napari_xray.") and _is_package_module(candidate):
                    found.append((node.lineno, candidate, ()))
    return found


def _layer(module: str) -> str:
    return module.split(".")[1]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def test_every_module_belongs_to_a_layer():
    unknown = sorted({_layer(_module_name(p)) for p in MODULES} - set(LAYERS))
    assert not unknown, f"add these parts of the package to LAYERS: {unknown}"


def _problem(here: str, module: str, names: tuple[str, ...]) -> str | None:
    """Why ``here`` may not import ``module`` (with ``names`` from it), or None."""
    layer, top = _layer(here), module.split(".")[0]
    if module == "napari_xray":
        modules_or_version = all(
            n == "__version__" or _is_package_module(f"napari_xray.{n}") for n in names
        )
        return None if modules_or_version else "imports from the package root's lazy API"
    if top == "napari_xray":
        if LAYERS.get(_layer(module), 99) > LAYERS[layer]:
            return f"{module} is in a layer above {layer}"
        if layer == "engine" and _layer(module) not in ("engine", "errors"):
            return f"the engine imports {module}"
        return None
    if top in GUI_PACKAGES and layer not in ("plugin", "cli"):
        return f"{module} is a GUI package, for napari_xray.plugin only"
    if top == "distributed" and layer in ("engine", "io"):
        return f"{module} in the {layer} layer"
    third_party = top not in sys.stdlib_module_names and top != "__future__"
    if layer == "engine" and third_party and top not in ENGINE_THIRD_PARTY:
        return f"the engine imports {module}; it uses only {sorted(ENGINE_THIRD_PARTY)}"
    return None


@pytest.mark.parametrize("path", MODULES, ids=_module_name)
def test_imports_run_one_way(path):
    here = _module_name(path)
    wrong = [
        f"line {line}: {why}"
        for line, module, names in _imports(path)
        if (why := _problem(here, module, names))
    ]
    assert not wrong, f"{here}:\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = {}
    for path in MODULES:
        here = _module_name(path)
        graph[here] = {
            m for _, m, _ in _imports(path) if m.startswith("napari_xray.") and m != here
        }
    # A module importing its own package's __init__ (or the reverse) is how packages work.
    for module, targets in graph.items():
        graph[module] = {
            t for t in targets if not (module.startswith(t + ".") or t.startswith(module + "."))
        }
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" → ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_importing_the_package_loads_no_gui_dask_or_zarr():
    code = (
        "import sys, napari_xray\n"
        "napari_xray.__version__\n"
        "heavy = sorted(m for m in ('napari', 'qtpy', 'PyQt5', 'PyQt6', 'magicgui', 'dask', "
        "'distributed', 'zarr', 'cv2', 'scipy') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""


def test_every_public_name_of_the_package_resolves():
    import napari_xray

    for name in napari_xray.__all__:
        assert getattr(napari_xray, name) is not None, name
