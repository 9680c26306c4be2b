"""A client's own data file through the API (`upload_data`, gradio_client `handle_file`), and `start_training`'s data
check, which is the page's Start check: one running app for the whole module."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from app_server import running_app
from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parent.parent


def readme_upload_script() -> str:
    """The upload script of README's "Gradio API" section (its second python block), exactly as printed."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Gradio API"):readme.index("## Serving the tuned model")]
    return re.findall(r"```python\n(.*?)```", section, re.S)[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("upload") / "home"
    with running_app(home) as url:
        yield url, home


def test_the_readme_upload_script_runs_from_another_folder(app, tiny_model, tmp_path):
    url, home = app
    script = readme_upload_script()
    url_line, config_line = ('client = Client("http://127.0.0.1:7860/")',
                             'config = {"data": {"train": uploaded["data_train"]}, "train": {"max_steps": 3}}')
    assert url_line in script and config_line in script
    script = script.replace(url_line, f"client = Client({url!r}, verbose=False)").replace(
        config_line, config_line + f"\nconfig['model'] = {tiny_model!r}\n"
        "config['train'].update(batch_size=2, max_seq_len=96, save_steps=0)")
    client_dir = tmp_path / "client"  # the client's own folder: nothing of the project is beside it
    client_dir.mkdir()
    result = subprocess.run([sys.executable, "-c", script], cwd=client_dir, capture_output=True, text=True,
                            timeout=600, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "sums.jsonl alpaca 20 examples: ready"
    assert "done" in lines
    archive = lines[-1]
    assert archive.endswith(".zip") and "adapter_config.json" in zipfile.ZipFile(archive).namelist()

    # kept in the workspace's uploads under the name it was sent with, and the run names it so
    (stored,) = [p for p in (home / "uploads").rglob("sums.jsonl")]
    assert (stored.parent / "uploaded-as.txt").read_text() == "sums.jsonl"
    assert stored.read_bytes() == (client_dir / "sums.jsonl").read_bytes()
    listed = Client(url, verbose=False).predict(api_name="/list_runs")
    assert [r["data_file"] for r in listed] == ["sums.jsonl"] and listed[0]["state"] == "done"


def test_start_training_refuses_what_the_pages_start_refuses_with_its_words(app, tiny_model, tmp_path, monkeypatch):
    url, home = app
    client = Client(url, verbose=False)
    bad = tmp_path / "broken.jsonl"
    bad.write_text(json.dumps({"instruction": "Hi", "output": "Hello"}) + "\nthis line is not JSON\n")
    uploaded = client.predict(handle_file(str(bad)), tiny_model, api_name="/upload_data")
    assert uploaded["ok"] is False and uploaded["name"] == "broken.jsonl"
    assert "broken.jsonl" in uploaded["problem"] and "line 2" in uploaded["problem"]

    # the page's own check and words (ui/data_tab.py), for the same data read the same way
    from ui import data_tab
    from ui.api_data import plain_text

    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    key = data_tab.data_key(uploaded["data_train"], "auto", "", "assistant", False, tiny_model, 96)
    page = plain_text(data_tab.report_problem(data_tab.check_data(key), "en"))
    assert page == uploaded["problem"]

    runs_before = sorted(p.name for p in (home / "runs").iterdir()) if (home / "runs").is_dir() else []
    config = {"model": tiny_model, "data": {"train": uploaded["data_train"]}, "train": {"max_steps": 2,
                                                                                        "max_seq_len": 96}}
    with pytest.raises(Exception) as refused:
        client.predict(json.dumps(config), api_name="/start_training")
    assert page in str(refused.value)
    assert (sorted(p.name for p in (home / "runs").iterdir()) if (home / "runs").is_dir() else []) == runs_before


def test_uploads_the_page_would_refuse_are_refused(app, tmp_path):
    url, home = app
    client = Client(url, verbose=False)
    script = tmp_path / "notes.exe"
    script.write_text("MZ")
    with pytest.raises(Exception, match="notes.exe: use one of"):
        client.predict(handle_file(str(script)), api_name="/upload_data")
    data = tmp_path / "ok.jsonl"
    data.write_text(json.dumps({"instruction": "Hi", "output": "Hello"}) + "\n")
    with pytest.raises(Exception, match="outside the folders this server may read"):
        client.predict(handle_file(str(data)), "/etc", api_name="/upload_data")
    assert not list((home / "uploads").rglob("notes.exe"))
