"""The UI's warm command line (ui/warm_cli.py, engine/cli_worker.py) answers a command exactly as a new
`python -m engine` process does, from one process that keeps its imports, and recovers when that process dies."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from ui.warm_cli import WarmCli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def inspect_args(model: str) -> list[str]:
    return ["data", "inspect", "presets/data/identity.jsonl", "--format", "auto", "--mask", "assistant",
            "--max-seq-len", "256", "--model", model, "--limit", "3"]


@pytest.fixture()
def warm(workspace):
    cli = WarmCli()
    yield cli
    cli.stop()


def test_a_command_answers_as_a_new_process_would(warm, tiny_model):
    fresh = subprocess.run([sys.executable, "-m", "engine", *inspect_args(tiny_model)], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    answered = warm.run(*inspect_args(tiny_model))
    assert answered.returncode == fresh.returncode == 0, answered.stderr[-2000:]
    assert json.loads(answered.stdout.strip().splitlines()[-1]) == json.loads(fresh.stdout.strip().splitlines()[-1])
    pid = warm._process.pid
    again = warm.run(*inspect_args(tiny_model))
    assert again.stdout == answered.stdout and warm._process.pid == pid  # the same warm process


def test_errors_are_a_return_code_and_a_message_not_a_dead_worker(warm, tiny_model):
    refused = warm.run("data", "inspect", "no/such/file.jsonl", "--model", tiny_model)
    assert refused.returncode == 1 and "no/such/file.jsonl" in refused.stdout
    usage = warm.run("data", "inspect", "--no-such-flag")
    assert usage.returncode == 2 and "error: the following arguments are required: file" in usage.stderr
    assert warm.run(*inspect_args(tiny_model)).returncode == 0


def test_a_dead_worker_is_replaced_by_the_next_call(warm, tiny_model):
    assert warm.warm_up()
    first = warm._process.pid
    os.kill(first, signal.SIGKILL)
    warm._process.wait()
    assert warm.run(*inspect_args(tiny_model)).returncode == 0 and warm._process.pid != first
