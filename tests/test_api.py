"""The stable Gradio API, called with gradio_client against the real app: the whole journey (train, follow,
stop, resume, chat, evaluate, export, list, delete), with the page's checks and messages."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

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
        assert set(endpoints) == {"/upload_data", "/start_training", "/run_status", "/stop_training",
                                  "/resume_training", "/list_runs", "/delete_run", "/estimate", "/evaluate", "/chat",
                                  "/export", "/evaluate_judged", "/start_sweep", "/sweep_status", "/stop_sweep",
                                  "/resume_sweep", "/train_best_longer", "/merge_runs"}  # the rest is private

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
        with urllib.request.urlopen(f"{url}tuneloom/runs/{run_id}/status", timeout=30) as plain:  # app.py's route
            assert json.loads(plain.read())["step"] == 6

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

        # the rest of the journey, with the page's rules
        with pytest.raises(Exception, match="only a queued or running run can be stopped"):
            client.predict(run_id, api_name="/stop_training")
        with pytest.raises(Exception, match="finished all its steps; there is nothing left to resume"):
            client.predict(run_id, api_name="/resume_training")
        listed = {r["id"]: r for r in client.predict(api_name="/list_runs")}
        assert listed[run_id]["method"] == "lora" and listed[run_id]["data_file"] == "identity.jsonl"
        assert listed[run_id]["state"] == "done" and listed[run_id]["resumable"] is False
        assert listed[run_id]["best_eval_loss"] == pytest.approx(min(listed[run_id]["best_eval_loss"],
                                                                     listed[run_id]["final_eval_loss"]))
        estimate = client.predict(json.dumps(tiny_config(tiny_model, "x")), api_name="/estimate")
        assert estimate["total_bytes"] > 0 and estimate["verdict"] in ("fits", "tight", "does not fit")
        with pytest.raises(Exception, match="batch_size"):
            client.predict('{"train": {"batch_size": 0}}', api_name="/estimate")
        with pytest.raises(Exception, match="not a data file of this workspace"):
            client.predict(run_id, "/etc/passwd", 0, False, 8, api_name="/evaluate")
        result = client.predict(run_id, "identity.jsonl", 0, False, 8, api_name="/evaluate")
        assert result["eval_loss"] > 0 and result["data"]["examples"] == 40
        merged = client.predict(run_id, "merged", "fp16", api_name="/export")
        with zipfile.ZipFile(merged) as zipped:
            assert json.loads(zipped.read("config.json"))["dtype"] == "float16"
        assert client.predict(run_id, api_name="/delete_run") == run_id
        assert run_id not in {r["id"] for r in client.predict(api_name="/list_runs")}
        with pytest.raises(Exception, match="no run named"):
            client.predict(run_id, api_name="/delete_run")


def readme_client_script() -> str:
    """The client script of README's "Gradio API" section, exactly as printed there."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Gradio API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_client_script_trains_stops_resumes_and_exports(tiny_model, tmp_path):
    script = readme_client_script()
    url_line = 'client = Client("http://127.0.0.1:7860/")'
    config_line = 'config = yaml.safe_load(open("presets/quickstart.yaml"))'
    assert url_line in script and config_line in script
    # the trainer pauses after step 5 until the script's Stop arrives (TUNELOOM_FAULT, engine/training/failures.py):
    # the script stops it after it has seen step 4, as a user would, however fast the tiny model trains
    with running_app(tmp_path / "home", env={"TUNELOOM_FAULT": "wait_at_step:5"}) as url:
        tiny = {"model": tiny_model, "max_steps": 10, "batch_size": 2, "max_seq_len": 96, "eval_steps": 5,
                "save_steps": 0}
        script = script.replace(url_line, f"client = Client({url!r}, verbose=False)").replace(
            config_line, config_line + f"\nconfig['model'] = {tiny_model!r}\n"
            f"config['train'].update({ {k: v for k, v in tiny.items() if k != 'model'} !r})")
        result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parent.parent,
                                capture_output=True, text=True, timeout=600,
                                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "stopped at step 5" in result.stdout
    run_dir = next((tmp_path / "home" / "runs").iterdir())
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["step"] == 10 and status["resumed_from"] == 5
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 11))  # every step once, in the file itself
    zip_line = [line for line in result.stdout.splitlines() if line.endswith(".zip")]
    assert zip_line and zipfile.ZipFile(zip_line[-1]).namelist()


def test_the_estimate_waits_for_a_model_met_for_the_first_time(tiny_model, tmp_path, monkeypatch):
    """The app reads a new model's structure in a child process; the page asks again on its timer, an API client
    gets the estimate once it is read (it got the error "reading the structure of ..." on a fresh clone)."""
    from engine.core import describe
    from ui import api

    monkeypatch.setenv("TUNELOOM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TUNELOOM_STRUCTURES", str(tmp_path / "structures"))  # nothing read yet
    monkeypatch.setattr(describe, "IN_PROCESS", False)  # as in the app: read by a child process
    summary = api.estimate(json.dumps(tiny_config(tiny_model, "first")))
    assert summary["ok"] and summary["total_bytes"] > 0
    assert list((tmp_path / "structures").glob("*.json"))  # read once, by the child, and cached
