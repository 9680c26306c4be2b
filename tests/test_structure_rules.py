"""House rules a reader can rely on, checked on the source: one name per fact (a job's state is a RunState,
never a bare word) and small modules (no engine or ui file over 500 lines). Each checker has a test that it
sees a violation, so none of them can pass by looking at nothing."""
from __future__ import annotations

import ast
from pathlib import Path

from engine.core.jobs import RunState

ROOT = Path(__file__).resolve().parent.parent
STATE_MODULE = ROOT / "engine" / "core" / "jobs.py"
MAX_LINES = 500
STATE_WORDS = {state.value for state in RunState}


def _source_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


# ---- run states -------------------------------------------------------------------------------------------
def _is_state_expression(node: ast.AST) -> bool:
    """`state`, `x.state`, `x["state"]` or `x.get("state", ...)`: an expression that holds a job's state."""
    if isinstance(node, ast.Name):
        return node.id == "state"
    if isinstance(node, ast.Attribute):
        return node.attr == "state"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "state"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value == "state"
    return False


def _state_words_in(node: ast.AST) -> list[ast.Constant]:
    """The state words written as string literals in node: itself, the items of a tuple/list/set, either side
    of `a if c else b` and the operands of `a or b`."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [word for item in node.elts for word in _state_words_in(item)]
    if isinstance(node, ast.IfExp):
        return _state_words_in(node.body) + _state_words_in(node.orelse)
    if isinstance(node, ast.BoolOp):
        return [word for value in node.values for word in _state_words_in(value)]
    return [node] if isinstance(node, ast.Constant) and node.value in STATE_WORDS else []


def state_literals(source: str) -> list[tuple[int, str]]:
    """(line, word) for every run state written as a literal where a state is meant: `state="done"`,
    `{"state": "done"}`, `status["state"] = "done"`, `x.get("state") == "done"`, `state in ("queued",
    "running")`, and any tuple of two or more state words (a set of states)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.keyword) and node.arg == "state":
            found += _state_words_in(node.value)
        elif isinstance(node, ast.Dict):
            found += [w for key, value in zip(node.keys, node.values)
                      if isinstance(key, ast.Constant) and key.value == "state" for w in _state_words_in(value)]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_is_state_expression(target) for target in targets):
                found += _state_words_in(node.value)
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_state_expression(op) for op in operands):
                found += [w for op in operands for w in _state_words_in(op)]
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2 and \
                all(isinstance(e, ast.Constant) and e.value in STATE_WORDS for e in node.elts):
            found += node.elts
    return sorted({(w.lineno, w.value) for w in found})


def test_no_run_state_literal_outside_the_enum():
    wrong = [f"{path.relative_to(ROOT)}:{line}: '{word}' (use RunState.{word.upper()})"
             for path in _source_files("engine", "ui", "bench") + [ROOT / "app.py"] if path != STATE_MODULE
             for line, word in state_literals(path.read_text(encoding="utf-8"))]
    assert not wrong, "run states written as words instead of RunState:\n" + "\n".join(wrong)


def test_the_state_checker_sees_each_kind_of_violation():
    probe = ("def f(status, run):\n"
             "    update(run, state='done')\n"
             "    if status.get('state') == 'failed': pass\n"
             "    if status['state'] in ('queued', 'running'): pass\n"
             "    record = {'state': 'stopping'}\n"
             "    LIVE = ('starting', 'running')\n"
             "    update(run, state='queued' if new else 'running')\n"
             "    status['state'] = 'failed'\n"
             "    send(event='done')\n")  # an event of the chat worker, not a state: not counted
    assert state_literals(probe) == [(2, "done"), (3, "failed"), (4, "queued"), (4, "running"), (5, "stopping"),
                                     (6, "running"), (6, "starting"), (7, "queued"), (7, "running"), (8, "failed")]


def test_the_enum_reads_and_writes_as_the_plain_word():
    import json

    assert json.dumps({"state": RunState.DONE}) == '{"state": "done"}'
    assert f"{RunState.FAILED}" == "failed" and str(RunState.QUEUED) == "queued"
    assert {"state": "running"}["state"] == RunState.RUNNING and "stopping" in (RunState.STOPPING,)


# ---- module size --------------------------------------------------------------------------------------------
def long_files(paths: list[Path], limit: int = MAX_LINES) -> list[tuple[Path, int]]:
    counted = [(path, len(path.read_text(encoding="utf-8").splitlines())) for path in paths]
    return [(path, lines) for path, lines in counted if lines > limit]


def test_no_engine_or_ui_module_over_500_lines():
    wrong = [f"{path.relative_to(ROOT)}: {lines} lines" for path, lines in long_files(_source_files("engine", "ui"))]
    assert not wrong, f"modules over {MAX_LINES} lines (split them by job):\n" + "\n".join(wrong)


def test_the_size_checker_sees_a_long_file(tmp_path):
    short, long = tmp_path / "short.py", tmp_path / "long.py"
    short.write_text("x = 1\n" * MAX_LINES)
    long.write_text("x = 1\n" * (MAX_LINES + 1))
    assert long_files([short, long]) == [(long, MAX_LINES + 1)]


# ---- tests that cannot pass by skipping -------------------------------------------------------------------
def test_a_missing_browser_fails_under_ci_and_skips_elsewhere():
    import pytest
    from app_server import browser_missing, require_browser

    problem = browser_missing("/nonexistent/chromium")
    assert "/nonexistent/chromium is missing" in problem
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_browser(problem, ci=True)
    with pytest.raises(pytest.skip.Exception):
        require_browser(problem, ci=False)
    require_browser(None, ci=True)  # nothing missing: the test runs


def test_every_browser_test_is_marked_and_none_skips_on_its_own():
    files = sorted((ROOT / "tests").glob("test_e2e_*.py"))
    assert len(files) >= 5
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "pytestmark = pytest.mark.browser" in text, path.name
        assert "skipif" not in text and "importorskip" not in text, path.name
