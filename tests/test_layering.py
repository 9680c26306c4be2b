"""Dependencies point one way: a lower layer of engine/ never imports a higher one, and the UI imports
only the import-light parts of the engine (the registries, the estimate, process control).

Every import counts, including those inside functions: a lazy import still ties the modules together.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# engine packages by layer: a module may import its own layer's package and anything lower
LAYERS = {
    "engine.core": 0,
    "engine.data": 1, "engine.methods": 1, "engine.rewards": 1,  # rewards: pure functions for GRPO
    "engine.estimate": 2,
    "engine.inference": 3,
    "engine.training": 4,  # continual learning and distillation load earlier results (inference)
    "engine.evaluation": 5,  # token loss (training) and loading results (inference)
    "engine.__main__": 6,
}
# packages of one layer that must not import each other
SIBLINGS_APART = {("engine.data", "engine.methods"), ("engine.methods", "engine.data")}
# what the UI process may import from the engine: nothing that loads a model or trains
UI_ALLOWED = ("engine.core", "engine.methods", "engine.data.formats", "engine.estimate",
              "engine.training.launcher", "engine.training.preflight", "engine.inference.chat_client",
              "engine.inference.generation", "engine.inference.serve_job", "engine.evaluation.compare",
              "engine.evaluation.records")


def package_of(module: str) -> str:
    """engine.core.runs -> engine.core; engine.methods.METHODS (a name in a package) -> engine.methods."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, wherever it is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # `from engine.core import runs` imports engine.core.runs
            if node.module.count(".") < 2:  # from a package: the names may be its modules
                found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return sorted({(line, name) for line, name in found if name == "engine" or name.startswith("engine.")})


def test_engine_layers_point_one_way():
    wrong = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        if path == ROOT / "engine" / "__init__.py":
            continue
        here = package_of(module_name(path))
        if here not in LAYERS:
            wrong.append(f"{path.relative_to(ROOT)}: engine/{here.split('.')[-1]} is in no layer of LAYERS")
            continue
        for line, target in imports(path):
            there = package_of(target)
            if there == "engine" or there == here:
                continue
            if there not in LAYERS:
                continue
            if LAYERS[there] > LAYERS[here] or (here, there) in SIBLINGS_APART or \
                    (LAYERS[there] == LAYERS[here] and here != there):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {here} (layer {LAYERS[here]}) imports {target} "
                             f"(layer {LAYERS[there]})")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_ui_imports_only_the_light_engine():
    wrong = []
    for path in sorted((ROOT / "ui").rglob("*.py")) + [ROOT / "app.py"]:
        for line, target in imports(path):
            if target in ("engine",) or any(target == a or target.startswith(a + ".") for a in UI_ALLOWED):
                continue
            if any(a.startswith(target + ".") for a in UI_ALLOWED):
                continue  # `from engine.training import launcher` names the package first
            wrong.append(f"{path.relative_to(ROOT)}:{line}: imports {target}")
    assert not wrong, "the UI imports engine modules that load models or train:\n" + "\n".join(wrong)


def test_the_layering_test_sees_a_violation(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from engine.training.recipe import run\n")
    assert imports(probe) == [(2, "engine.training.recipe")]
