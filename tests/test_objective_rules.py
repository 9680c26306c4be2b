"""Rules of the house that a reader should not have to police: code asks a registry entry (an objective, a
method, a reward), it never compares the entry's key with a name (DESIGN.md rule 3).

The checker reads every module of engine/, ui/ and app.py with `ast` and reports comparisons such as
`objective.key == "dpo"`, `method.key in ("lora", "dora")` or `cfg.train.objective != "sft"`: a comparison
whose one side is a `.key` attribute or a `.objective` setting and whose other side is a string or a
collection of strings. The registry modules, where each entry is declared, are the only exception.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# where entries are declared under their keys: comparing them there is the declaration itself
REGISTRY_MODULES = {ROOT / "engine" / "core" / "registry.py", ROOT / "engine" / "core" / "objectives.py"}
# attribute names that hold a registry key
KEY_ATTRIBUTES = ("key", "objective")


def _names_a_key(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in KEY_ATTRIBUTES


def _literal_names(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return bool(node.elts) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)
    return False


def key_comparisons(source: str) -> list[int]:
    """Lines where a registry key is compared with a name (==, !=, in, not in)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        for left, op, right in zip(sides, node.ops, sides[1:]):
            if not isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)):
                continue
            if (_names_a_key(left) and _literal_names(right)) or (_names_a_key(right) and _literal_names(left)):
                found.append(node.lineno)
    return found


def _sources():
    yield from sorted((ROOT / "engine").rglob("*.py"))
    yield from sorted((ROOT / "ui").rglob("*.py"))
    yield ROOT / "app.py"


def test_no_registry_key_is_compared_outside_the_registry():
    wrong = [f"{path.relative_to(ROOT)}:{line}" for path in _sources() if path not in REGISTRY_MODULES
             for line in key_comparisons(path.read_text(encoding="utf-8"))]
    assert not wrong, ("registry keys compared with names (ask the entry for a trait instead, "
                       "engine/core/objectives.py, engine/methods/base.py):\n" + "\n".join(wrong))


def test_the_checker_sees_each_kind_of_violation():
    seen = key_comparisons(
        "if objective.key == 'dpo':\n    pass\n"  # 1
        "x = method.key in ('lora', 'dora')\n"  # 3
        "y = cfg.train.objective != 'sft'\n"  # 4
        "z = 'kto' == objective.key\n"  # 5
        "w = objective.key not in ['a']\n"  # 6
    )
    assert seen == [1, 3, 4, 5, 6]


def test_the_checker_leaves_other_comparisons_alone():
    assert key_comparisons(
        "a = folder.name == 'model'\n"  # a name, not a registry key
        "b = objective.key == other.key\n"  # two entries compared: no hard-coded name
        "c = objective.data_kind == kind\n"
        "d = key in ('x',)\n"  # a plain variable (e.g. a loop over a table's own keys)
    ) == []
