"""A chat model and a training job share the device only when the estimates say both fit."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from engine.core import runs
from engine.estimate import sharing

MiB = 2**20


def running_run(tiny_model: str, estimate_bytes: int) -> Path:
    """A run folder in state running, held by this (live) process, as the trainer writes it."""
    run_dir = runs.new_run_dir("training")
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": tiny_model}))
    runs.update_status(run_dir, state="running", pid=os.getpid(), estimate_bytes=estimate_bytes)
    return run_dir


def test_chat_bytes_count_the_weights_the_worker_will_hold(tiny_model):
    weights = sum(f.stat().st_size for f in Path(tiny_model).glob("*.safetensors"))
    # the weights the worker holds, and a fifth more for activations, the KV cache and the runtime
    assert sharing.chat_bytes(model=tiny_model) == int(weights * 1.2)
    assert sharing.chat_bytes(model="some-org/not-downloaded") is None  # nothing local to go by


def test_chat_beside_training_is_refused_only_when_both_do_not_fit(tiny_model, workspace, monkeypatch):
    needed = sharing.chat_bytes(model=tiny_model)
    assert sharing.chat_refusal(needed) is None  # no training job: always allowed
    run_dir = running_run(tiny_model, estimate_bytes=900 * MiB)
    monkeypatch.setenv("TUNELOOM_MEMORY_LIMIT_MB", "100000")
    assert sharing.chat_refusal(needed) is None
    monkeypatch.setenv("TUNELOOM_MEMORY_LIMIT_MB", "901")
    refusal = sharing.chat_refusal(needed)
    assert refusal and run_dir.name in refusal and "0.88 GiB" in refusal and "Wait for the run" in refusal
    runs.update_status(run_dir, state="done")
    assert sharing.chat_refusal(needed) is None  # the job ended: the device is free again


def test_the_chat_tab_refuses_to_load_and_training_unloads_chat_when_they_do_not_fit(tiny_model, workspace,
                                                                                      monkeypatch):
    from ui import chat_tab

    monkeypatch.setenv("TUNELOOM_MEMORY_LIMIT_MB", "901")
    run_dir = running_run(tiny_model, estimate_bytes=900 * MiB)
    with pytest.raises(ValueError, match="is training on this device"):
        chat_tab.load(chat_tab.BASE, tiny_model)
    assert chat_tab.WORKER.process is None  # refused before any worker process started

    runs.update_status(run_dir, state="done")
    try:
        chat_tab.load(chat_tab.BASE, tiny_model)
        assert chat_tab.WORKER.process is not None and chat_tab.WORKER.loaded == f"base:{tiny_model}"
        assert not chat_tab.make_room_for_training(100 * MiB)  # fits beside the chat model: kept
        assert chat_tab.WORKER.process is not None
        assert chat_tab.make_room_for_training(900 * MiB)  # does not: the chat model is unloaded
        assert chat_tab.WORKER.process is None and chat_tab.WORKER.loaded is None
    finally:
        chat_tab.WORKER.unload()
