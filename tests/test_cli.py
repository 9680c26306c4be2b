"""The command line says only what matters: no internal commands in --help, no notices a user cannot act on."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_help_lists_user_commands_only():
    result = run("-m", "engine", "--help")
    assert result.returncode == 0
    assert "SUPPRESS" not in result.stdout and "chat-worker" not in result.stdout
    for command in ("train", "data", "export", "chat", "evaluate", "model", "methods", "estimate"):
        assert command in result.stdout


def test_no_hub_kernel_notice_when_bitsandbytes_loads():
    """On CPUs with AVX512-BF16, bitsandbytes 0.50 warns at import that it could not download a Hub kernel
    (every training command printed it). On other CPUs it never warns, so this passes there anyway."""
    result = run("-c", "import engine, bitsandbytes")
    assert "kernels-community" not in result.stderr, result.stderr


def test_the_tuneloom_command_is_installed_with_the_project():
    """`make run` / `make test` install the project into the venv: `tuneloom` is `python -m engine`."""
    command = Path(sys.executable).parent / "tuneloom"
    assert command.is_file(), "run `make setup` (pip install -e .)"
    result = subprocess.run([str(command), "methods"], cwd="/", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("lora "), result.stderr


def test_cli_app_and_make_run_share_one_model_cache(tmp_path, monkeypatch):
    from engine.core.workspace import models_dir

    monkeypatch.delenv("TUNELOOM_MODELS", raising=False)
    monkeypatch.setenv("TUNELOOM_HOME", str(tmp_path))
    assert models_dir() == tmp_path / "models"
    makefile = (ROOT / "Makefile").read_text()
    assert "export TUNELOOM_MODELS" not in makefile  # make run prepares where the CLI and the app look


def test_methods_lists_every_parameter_with_its_type_range_and_default():
    """README: `engine methods` lists every parameter (type, default, range, help), without --json too."""
    from engine.methods import METHODS

    result = run("-m", "engine", "methods")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for key, method in METHODS.items():
        assert any(line.startswith(f"{key} ") for line in lines), key
        for param in method.params:
            expected = (f"    {param.name} ({param.type.__name__}, {param.range_text}; default {param.default!r}): "
                        f"{param.help}")
            assert expected in lines, (key, expected)
    assert "    r (int, 1..1024; default 16): " in result.stdout  # LoRA's rank, in words a reader checks
    assert "    bias (str, none | all | lora_only; default 'none'): " in result.stdout
