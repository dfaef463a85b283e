"""Each layer imports only from layers to its left (DESIGN section 2), plus the cross-cutting modules."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "src" / "caretwin"
# left to right; the workspace is the store that ingest writes into, so it sits left of ingest
LAYERS = ["model", "workspace", "ingest", "quality", "calibrate", "simulate", "synth", "scenarios", "risk",
          "reports", "api", "web", "demo", "cli"]
CROSS_CUTTING = {"_version", "errors", "files", "settings", "rng", "governance"}


def layer_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("caretwin."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("caretwin.")}
    return found


def test_every_module_belongs_to_a_known_layer():
    for path in PACKAGE.rglob("*.py"):
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        assert top in LAYERS or top in CROSS_CUTTING or top == "__init__", f"{path}: add it to a layer"


def test_layers_only_import_leftwards():
    for path in PACKAGE.rglob("*.py"):
        here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if here == "__init__":
            continue
        for mod in imports(path):
            there = layer_of(mod)
            if there in CROSS_CUTTING or there == here:
                continue
            if here in CROSS_CUTTING:
                raise AssertionError(f"{path}: cross-cutting code imports the {there} layer ({mod})")
            assert LAYERS.index(there) < LAYERS.index(here), f"{path}: {here} imports {mod}, a layer to its right"
