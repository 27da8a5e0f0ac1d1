"""The package's shape (docs/architecture.md, Layout): every import goes to a layer at or below
the importer's, with no cycle between modules, core/ reads only the config (and the leaves:
errors, paths, platform, terminal) besides itself, and
no module, class or function outgrows what a reader takes in at once."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wgan_jax"
# Bottom to top: a module may import its own layer and those before it.
LAYERS = [("errors", "paths", "platform", "terminal"), ("data",), ("config",), ("core",),
          ("ckpt",), ("eval",), ("train",), ("sample", "pretrained"), ("cli",)]
MAX_LINES, MAX_CLASS, MAX_FUNCTION = 300, 150, 60
def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def layer(module: str) -> int:
    top = module.split(".")[1]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules `module` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        # `from wgan_jax import x` names the package and its module x: x is what is imported
        found |= {name for name in names if name in known and name not in (module, "wgan_jax")}
    return found


def upward(known: dict[str, Path]) -> list[str]:
    """'importer -> imported' for each import that goes up a layer, or out of core/."""
    found = []
    for module, path in known.items():
        if module == "wgan_jax":  # the public API gathers from every layer
            continue
        for target in sorted(imports(module, path, known)):
            if layer(target) > layer(module):
                found.append(f"{module} -> {target}")
            if module.startswith("wgan_jax.core") and layer(target) not in (0, layer(module)) \
                    and not target.startswith("wgan_jax.config"):
                found.append(f"{module} -> {target} (core reads only the config)")
    return found


def test_every_import_goes_down_or_across_and_core_reads_only_the_config():
    assert upward(modules()) == []


def test_the_check_catches_an_upward_import(tmp_path):
    """A core module importing the loop, and one importing the data sources, are both caught."""
    known = modules()
    fake = tmp_path / "fake.py"
    fake.write_text("import numpy\n\ndef f():\n    from wgan_jax.train import loop\n"
                    "    from wgan_jax import data\n")
    assert upward({**known, "wgan_jax.core.fake": fake}) == [
        "wgan_jax.core.fake -> wgan_jax.data (core reads only the config)",
        "wgan_jax.core.fake -> wgan_jax.train.loop",
        "wgan_jax.core.fake -> wgan_jax.train.loop (core reads only the config)"]


def test_no_import_cycle():
    known = modules()
    graph = {m: {t for t in imports(m, p, known) if not known[t].name == "__init__.py"}
             for m, p in known.items()}
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for target in graph[node]:
            if state.get(target) == "open":
                pytest.fail("import cycle: " + " -> ".join(trail + [node, target]))
            if target not in state:
                visit(target, trail + [node])
        state[node] = "done"

    for module in graph:
        if module not in state:
            visit(module, [])


def test_modules_classes_and_functions_stay_small():
    too_big = []
    for module, path in modules().items():
        source = path.read_text()
        if len(source.splitlines()) > MAX_LINES:
            too_big.append(f"{module}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            size = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
            if isinstance(node, ast.ClassDef) and size > MAX_CLASS:
                too_big.append(f"{module}.{node.name}: class of {size} lines")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and size > MAX_FUNCTION:
                too_big.append(f"{module}.{node.name}: function of {size} lines")
    assert too_big == []
