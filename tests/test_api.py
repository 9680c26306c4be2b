"""The stable Gradio API, called with gradio_client against the real app: train, follow, chat, export."""
from __future__ import annotations

import json
import time
import zipfile

import pytest
from app_server import running_app
from gradio_client import Client


def tiny_config(model: str, name: str) -> dict:
    return {"model": model, "name": name,
            "data": {"train": "presets/data/identity.jsonl", "validation_split": 0.2},
            "method": {"name": "lora", "r": 4, "alpha": 8},
            "train": {"max_steps": 6, "batch_size": 2, "max_seq_len": 96, "eval_steps": 3, "save_steps": 0,
                      "learning_rate": 1e-3}}


def test_api_train_status_chat_export(tiny_model, tmp_path):
    with running_app(tmp_path / "home") as url:
        client = Client(url, verbose=False)
        endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        assert set(endpoints) == {"/start_training", "/run_status", "/chat", "/export"}  # internal handlers hidden

        # every config problem comes back at once
        with pytest.raises(Exception, match="batch_size") as bad:
            client.predict('{"train": {"batch_size": 0, "learning_rate": -1}}', api_name="/start_training")
        assert "learning_rate" in str(bad.value)

        run_id = client.predict(json.dumps(tiny_config(tiny_model, "api")), api_name="/start_training")
        assert run_id.endswith("api")
        deadline = time.time() + 150
        while True:
            status = client.predict(run_id, api_name="/run_status")
            if status["state"] not in ("queued", "running", "stopping") or time.time() > deadline:
                break
            time.sleep(1)
        assert status["state"] == "done", status
        assert status["step"] == 6 and status["points"] >= 6
        assert isinstance(status["last"]["loss"], float)
        assert status["last_eval"]["eval_loss"] > 0

        # sampling so a freshly trained tiny model says something visible (greedy may pick whitespace)
        reply = client.predict(run_id, "Who are you?", "", 16, 1.0, 1.0, 50, 1.0, api_name="/chat")
        assert isinstance(reply, str) and reply.strip()

        archive = client.predict(run_id, "adapter", api_name="/export")
        with zipfile.ZipFile(archive) as zipped:
            names = zipped.namelist()
        assert "adapter_config.json" in names and "README.md" in names

        with pytest.raises(Exception, match="outside"):  # run ids never reach outside the runs folder
            client.predict("../../etc", api_name="/run_status")
        with pytest.raises(Exception, match="no run named"):
            client.predict("nope", api_name="/run_status")
