"""How `make test` shares the tests between its pytest-xdist processes: a file's tests stay in one process, so
its module fixtures (a trained run, a running app) are made once, and every browser test (the files named
test_e2e_*.py) runs in one process, one app and one Chromium at a time, first, since that group is the longest.

Written here because xdist's `--dist loadgroup` no longer groups with pytest 9.2: it marks a group by appending it
to the test's node id, which pytest 9.2 no longer reads (pytest-dev/pytest-xdist#1386); every test then went to
whichever process was free, module fixtures were made once per process, and two browser tests could run at once.
A scheduler that reads the file name from the node id does not depend on that.
"""
from __future__ import annotations

from pathlib import PurePosixPath

import pytest

BROWSER_GROUP = "browser"
BROWSER_FILE_PREFIX = "test_e2e_"


def scope_of(nodeid: str) -> str:
    """The group a test runs in: its file's path, or the one browser group."""
    path = nodeid.split("::", 1)[0]
    return BROWSER_GROUP if PurePosixPath(path).name.startswith(BROWSER_FILE_PREFIX) else path


def misplaced(item) -> bool:
    """Whether a test's `browser` mark disagrees with its file's name (so it would run beside another app)."""
    return bool(item.get_closest_marker("browser")) != (scope_of(item.nodeid) == BROWSER_GROUP)


def browser_first(items) -> None:
    """The browser group first in the collection, so the scheduler hands it out first (a stable sort: the rest
    keeps its order)."""
    items.sort(key=lambda item: scope_of(item.nodeid) != BROWSER_GROUP)


def pytest_collection_modifyitems(config, items):
    browser_first(items)


def pytest_runtest_setup(item):
    """A test whose browser mark disagrees with its file's name fails, by name (a collection error would stop
    an xdist run with an internal error that hides the reason)."""
    if misplaced(item):
        pytest.fail(f"{item.nodeid}: a browser test must live in tests/{BROWSER_FILE_PREFIX}*.py and every test there "
                    "be marked `browser` (tests/scheduling.py runs those files in one process)", pytrace=False)


def pytest_xdist_make_scheduler(config, log):
    """`make test` (`-n N --dist loadfile`): by file, the browser files as one group."""
    return make_scheduler(config, log) if config.getvalue("dist") == "loadfile" else None


def make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        """xdist's file scheduling, with the browser files as one unit, handed out in collection order."""

        def __init__(self, config, log=None):
            super().__init__(config, log)
            config.option.loadscopereorder = False  # keep the browser group first (xdist would sort by test count)

        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return FileScheduling(config, log)
