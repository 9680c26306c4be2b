"""Every TUNELOOM_* environment variable is declared once (engine/core/environment.py), documented in the
README's table exactly as declared, and no file reads or sets one the table does not name."""
from __future__ import annotations

import re
from pathlib import Path

from engine.core.environment import BY_NAME, VARIABLES

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"\bTUNELOOM_[A-Z0-9_]*[A-Z0-9]\b")
SCANNED = ("engine", "ui", "bench", "tests", ".ci")


def readme_rows() -> list[tuple[str, str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = re.search(r"^## Environment variables\n(.*?)(?=^#+ )", text, re.S | re.M).group(1)
    return [(name, default, what.replace("\\|", "|"))
            for name, default, what in re.findall(r"^\| `(TUNELOOM_\w+)` \| (.*?) \| (.*) \|$", table, re.M)]


def undeclared(files: list[Path]) -> list[str]:
    return sorted({f"{path.name}: {name}" for path in files
                   for name in NAME.findall(path.read_text(encoding="utf-8", errors="replace"))
                   if name not in BY_NAME})


def test_the_readme_table_is_the_declared_one():
    expected = [(v.name, f"`{v.default}`" if v.default else "unset", ("*internal:* " if v.internal else "") + v.help)
                for v in VARIABLES]
    assert readme_rows() == expected


def test_no_variable_is_used_without_a_row():
    files = [p for folder in SCANNED for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in
             (".py", ".sh", "") and "__pycache__" not in p.parts]
    files += [ROOT / name for name in ("app.py", "Makefile", "Dockerfile", "README.md")]
    assert len(files) > 50
    assert undeclared(files) == []


def test_the_scan_sees_an_undeclared_variable(tmp_path):
    probe = tmp_path / "probe.py"
    knob = "TUNELOOM_" + "SECRET_KNOB"  # spelt apart, so this file itself does not name it
    probe.write_text(f'import os\nos.environ.get("{knob}")\nos.environ.get("TUNELOOM_HOME")\n')
    assert undeclared([probe]) == [f"probe.py: {knob}"]


def test_each_variable_is_named_where_it_is_read():
    """A declared variable that nothing reads is a stale row: each name occurs in the code outside the table."""
    code = "\n".join(p.read_text(encoding="utf-8") for folder in ("engine", "ui") for p in (ROOT / folder).rglob("*.py")
                     if p.name != "environment.py")
    code += (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert [v.name for v in VARIABLES if v.name not in code] == []
