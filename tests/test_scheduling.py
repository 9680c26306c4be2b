"""tests/scheduling.py, in a real `pytest -n 2 --dist loadfile` run over generated test files: a file's module
fixture is made once, the browser files run in one process and first, and a browser mark outside those files
fails by name."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from scheduling import BROWSER_GROUP, scope_of

TESTS = Path(__file__).resolve().parent

CONFTEST = """
from scheduling import pytest_collection_modifyitems, pytest_runtest_setup, pytest_xdist_make_scheduler

def pytest_configure(config):
    config.addinivalue_line("markers", "browser: a browser test")
"""

# each test writes "<process> <file> <test>" to LOG; each module fixture writes "<file> setup"
MODULE = """
import os, pytest
{mark}
LOG = {log!r}

def note(text):
    with open(LOG, "a") as log:
        log.write(text + "\\n")

@pytest.fixture(scope="module")
def made():
    note("{name} setup")

@pytest.mark.parametrize("i", range(4))
def test_one(made, i):
    note(os.environ["PYTEST_XDIST_WORKER"] + " {name} " + str(i))
"""


def run(folder: Path, *files: tuple[str, bool]) -> subprocess.CompletedProcess:
    log = folder / "log.txt"
    (folder / "conftest.py").write_text(CONFTEST)
    for name, browser in files:
        mark = "pytestmark = pytest.mark.browser" if browser else ""
        (folder / f"{name}.py").write_text(textwrap.dedent(MODULE.format(mark=mark, log=str(log), name=name)))
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    command = [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider",
               str(folder)]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_scope_is_the_file_or_the_one_browser_group():
    assert scope_of("tests/test_methods.py::test_x[lora-alpaca]") == "tests/test_methods.py"
    assert scope_of("tests/test_e2e_zh.py::test_y") == scope_of("tests/test_e2e_page.py::test_z") == BROWSER_GROUP
    assert scope_of("tests/test_e2e.py::t") == "tests/test_e2e.py"  # only test_e2e_*.py files


def test_two_processes_make_each_module_fixture_once_and_run_the_browser_files_together_first(tmp_path):
    result = run(tmp_path, ("test_a", False), ("test_b", False), ("test_c", False),
                 ("test_e2e_one", True), ("test_e2e_two", True))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (tmp_path / "log.txt").read_text().splitlines()
    setups = sorted(line for line in lines if line.endswith(" setup"))
    assert setups == [f"{name} setup" for name in ("test_a", "test_b", "test_c", "test_e2e_one", "test_e2e_two")]
    ran = [line.split() for line in lines if not line.endswith(" setup")]
    assert len(ran) == 20
    browser_workers = {worker for worker, name, _ in ran if name.startswith("test_e2e_")}
    assert len(browser_workers) == 1  # one process, one at a time
    first_on_that_worker = [name for worker, name, _ in ran if worker in browser_workers][:8]
    assert all(name.startswith("test_e2e_") for name in first_on_that_worker)
    for name in ("test_a", "test_b", "test_c"):  # a file stays in one process
        assert len({worker for worker, file, _ in ran if file == name}) == 1


def test_a_browser_mark_outside_the_browser_files_fails_by_name(tmp_path):
    result = run(tmp_path, ("test_a", False), ("test_sneaky", True))
    assert result.returncode == 1
    assert "4 passed, 4 errors" in result.stdout
    assert "test_sneaky.py::test_one[0]: a browser test must live in tests/test_e2e_*.py" in result.stdout
    assert " test_sneaky " not in (tmp_path / "log.txt").read_text()  # its tests did not run
