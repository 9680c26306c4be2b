"""Shared fixtures: an isolated workspace per test session and a tiny model with the real tokenizer.

The tiny model has SmolLM2's architecture (Llama) and tokenizer but 2 layers and a small hidden
size, so the whole suite trains in seconds on a CPU. The default model is converted once into
.cache/models (shared across runs) and only its tokenizer and config are reused here.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TUNELOOM_MODELS", str(ROOT / ".cache" / "models"))
# model structures (engine/core/structure.py) are read once for all the tests' workspaces
os.environ.setdefault("TUNELOOM_STRUCTURES", str(ROOT / ".cache" / "structures"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # `make test` runs one test process per core: one compute thread each, for them and the trainers, apps and
    # chat workers they start (two spinning threads on one core make a tiny model's step several times slower)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(ROOT))

DATA = ROOT / "tests" / "data"

from engine.core import describe  # noqa: E402

describe.IN_PROCESS = True  # the test process imports torch: model structures are read here, not in a child
PRESETS = ROOT / "presets"

from families import build_once  # noqa: E402  (one builder of cached models for every test worker)

# how `make test` shares the tests between its processes (these hooks live in tests/scheduling.py)
from scheduling import pytest_collection_modifyitems as pytest_collection_modifyitems  # noqa: E402
from scheduling import pytest_runtest_setup as pytest_runtest_setup  # noqa: E402
from scheduling import pytest_xdist_make_scheduler as pytest_xdist_make_scheduler  # noqa: E402


def build_tiny_model(out: Path, layers: int = 2, hidden: int = 64, seed: int = 0) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from engine.core.models import prepare_model

    source = prepare_model("smollm2-135m-instruct")
    config = AutoConfig.from_pretrained(source)
    config.update(dict(num_hidden_layers=layers, hidden_size=hidden, intermediate_size=2 * hidden,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=hidden // 4))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)

    def build(folder: Path) -> None:
        model.save_pretrained(folder, safe_serialization=True)
        AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return build_once(out, build)


@pytest.fixture(scope="session")
def tiny_model() -> str:
    """Path of the tiny test model (built once, then reused across test runs)."""
    out = ROOT / ".cache" / "tiny-smollm2"
    if not (out / "config.json").is_file():
        build_tiny_model(out)
    return str(out)


@pytest.fixture()
def workspace(tmp_path, monkeypatch) -> Path:
    """A fresh TUNELOOM_HOME for one test."""
    home = tmp_path / "home"
    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    return home


@contextmanager
def module_workspace(tmp_path_factory, name: str):
    """One isolated workspace (prepared-data cache, structures, runs) for a test module, and one intra-op
    thread (the tensors are tiny: on a shared 2-core machine a second spinning thread makes each step ~7x
    slower). Used by the module-scoped `home` fixtures."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp(name)
    mp.setenv("TUNELOOM_HOME", str(path))
    try:
        yield path
    finally:
        mp.undo()
        torch.set_num_threads(threads)


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives the real app in Chromium (tests/app_server.require_browser)")


@pytest.fixture(autouse=True)
def _browser_present(request):
    """Tests marked `browser` need Chromium and Playwright: skipped without them, failed under CI=true."""
    if request.node.get_closest_marker("browser"):
        from app_server import browser_missing, require_browser

        require_browser(browser_missing())
