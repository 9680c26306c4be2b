"""Paths that arrive through the web server stay inside what the user meant: the workspace (uploads, runs,
prepared models), the project's presets, and the folders the operator allows (TUNELOOM_DATA_DIRS,
TUNELOOM_MODEL_DIRS). The command line keeps full local access."""
from __future__ import annotations

import json

import pytest

from engine.core.security import web_config_problems

SECRET = "tuneloom-secret-marker-7f3a"


@pytest.fixture()
def secret_file(tmp_path):
    """A readable data file outside every web root, whose rows must never be quoted back."""
    folder = tmp_path / "private"
    folder.mkdir()
    path = folder / "notes.json"
    path.write_text(json.dumps([{"question": SECRET, "answer": SECRET}]))
    return path


@pytest.mark.parametrize("raw, key", [
    ({"data": {"train": "/etc/passwd"}}, "data.train"),
    ({"data": {"train": "../../../../../../etc/shadow"}}, "data.train"),
    ({"model": "/etc"}, "model"),
    ({"model": "../../../etc"}, "model"),
    ({"distill": {"teacher": "/usr/lib"}}, "distill.teacher"),
    ({"train": {"start_from": "/etc"}}, "train.start_from"),
    ({"data": {"replay": "/etc/hosts"}}, "data.replay"),
    ({"train": {"accelerate_config": "/etc/hostname"}}, "train.accelerate_config"),
])
def test_paths_outside_the_web_roots_are_refused(raw, key, workspace):
    problems = web_config_problems(raw)
    assert len(problems) == 1 and problems[0].startswith(f"{key}: ") and "outside the folders" in problems[0]


def test_workspace_presets_hub_ids_and_allowed_folders_pass(workspace, secret_file, monkeypatch):
    (workspace / "uploads").mkdir(parents=True)
    upload = workspace / "uploads" / "mine.jsonl"
    upload.write_text("{}")
    assert web_config_problems({"model": "smollm2-135m-instruct", "data": {"train": str(upload)}}) == []
    assert web_config_problems({"model": "HuggingFaceTB/SmolLM2-360M-Instruct",
                                "data": {"train": "presets/data/identity.jsonl"}}) == []
    assert web_config_problems({"data": {"train": str(secret_file)}})  # not allowed until the operator says so
    monkeypatch.setenv("TUNELOOM_DATA_DIRS", str(secret_file.parent))
    assert web_config_problems({"data": {"train": str(secret_file)}}) == []


def test_a_link_inside_a_root_that_points_outside_is_refused(workspace, secret_file):
    (workspace / "uploads").mkdir(parents=True)
    link = workspace / "uploads" / "innocent.json"
    link.symlink_to(secret_file)
    assert web_config_problems({"data": {"train": str(link)}})


def test_the_api_refuses_paths_outside_and_quotes_nothing_from_them(tmp_path, secret_file):
    from app_server import running_app
    from gradio_client import Client

    home = tmp_path / "home"
    with running_app(home) as url:
        client = Client(url, verbose=False)
        for raw in ({"data": {"train": "/etc/passwd"}}, {"data": {"train": "../../../../etc/shadow"}},
                    {"model": "/etc"}, {"data": {"train": str(secret_file)}},
                    {"data": {"train": str(secret_file)}, "train": {"batch_size": 0}}):
            with pytest.raises(Exception, match="outside the folders this server may read") as refused:
                client.predict(json.dumps({**raw, "train": {"max_steps": 1, **raw.get("train", {})}}),
                               api_name="/start_training")
            assert SECRET not in str(refused.value)
        assert not (home / "runs").is_dir() or not any((home / "runs").iterdir())  # no run was created


def test_the_command_line_keeps_full_local_access(secret_file):
    """`engine data check` on a file anywhere on the machine works (the CLI is the local user)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-m", "engine", "data", "check", str(secret_file), "--column",
                             "question=instruction", "--column", "answer=output"], cwd=root, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "1 examples" in result.stdout, result.stderr
