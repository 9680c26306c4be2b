"""On the default model: the tuned model served where other tools reach it (the `openai` client, offline), and
its exports as another machine uses them (the adapter through the Hub id it names, the merged model in the
base's published dtype)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from engine.core import runs
from engine.inference import serve_job

ROOT = Path(__file__).resolve().parent.parent
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def engine_cli(*args, home, env=None, timeout=600):
    full = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=full, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """Three LoRA steps of the quickstart on the default model (a real adapter on the real base)."""
    home = tmp_path_factory.mktemp("home")
    result = engine_cli("train", "presets/quickstart.yaml", "--set", "train.max_steps=3", "--set", "train.eval_steps=0",
                        "--set", "train.save_steps=0", "--set", "train.max_seq_len=128", "--set",
                        "data.validation_split=0", home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1]), home


def test_the_default_model_is_stored_in_its_published_bf16():
    from engine.core.models import prepare_model
    from engine.core.workspace import stored_dtype

    folder = prepare_model("smollm2-135m-instruct")
    assert stored_dtype(folder) == "bfloat16"
    size = (folder / "model.safetensors").stat().st_size
    assert 250e6 < size < 300e6, size  # 135M parameters at 2 bytes (fp32 was 538 MB)


def test_a_default_model_prepared_in_fp32_is_restored_in_bf16_once(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.core.models import prepare_model
    from engine.core.workspace import is_prepared, stored_dtype

    published = prepare_model("smollm2-135m-instruct")
    old = tmp_path / "models" / "smollm2-135m-instruct"  # what an older Tuneloom left on a user's machine
    AutoModelForCausalLM.from_pretrained(published, dtype=torch.float32).save_pretrained(old)
    AutoTokenizer.from_pretrained(published).save_pretrained(old)
    assert stored_dtype(old) == "float32"

    monkeypatch.setenv("TUNELOOM_MODELS", str(tmp_path / "models"))
    assert not is_prepared("smollm2-135m-instruct")  # the page offers the one-time preparation
    notes = []
    assert prepare_model("smollm2-135m-instruct", log=notes.append) == old
    assert "Re-storing smollm2-135m-instruct in bfloat16" in notes[0]
    assert is_prepared("smollm2-135m-instruct") and stored_dtype(old) == "bfloat16"
    assert sorted(p.name for p in old.parent.iterdir()) == [".smollm2-135m-instruct.lock", "smollm2-135m-instruct"]
    restored, original = load_file(old / "model.safetensors"), load_file(published / "model.safetensors")
    assert restored.keys() == original.keys() and all(torch.equal(restored[k], original[k]) for k in original)
    assert prepare_model("smollm2-135m-instruct", log=notes.append) == old and len(notes) == 2  # once only


def test_serve_answers_the_openai_client_offline(default_run, tmp_path):
    from openai import AuthenticationError, BadRequestError, OpenAI

    run_dir, home = default_run
    refused = engine_cli("serve", str(run_dir), "--host", "0.0.0.0", home=home, timeout=60)
    assert refused.returncode == 2 and "needs --auth" in refused.stderr and "Traceback" not in refused.stderr

    port = serve_job.free_port()
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "-m", "engine", "serve", str(run_dir), "--port", str(port), "--auth",
                               "ann:secret"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / "serve.log", "wb"))
    try:
        deadline = time.time() + 240
        while serve_job.read(run_dir).get("state") != "running":
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.time() < deadline, "the server did not come up"
            time.sleep(0.5)
        status = serve_job.read(run_dir)
        assert status["url"] == f"http://127.0.0.1:{port}/v1"
        assert status["note"] == "adapter merged into the base weights"

        client = OpenAI(base_url=status["url"], api_key="ann:secret")
        assert [m.id for m in client.models.list().data] == [run_dir.name]
        reply = client.chat.completions.create(model=run_dir.name, max_tokens=12, temperature=0,
                                               messages=[{"role": "user", "content": "Who are you?"}])
        assert reply.choices[0].message.content.strip() and reply.usage.completion_tokens > 0
        pieces = [chunk.choices[0].delta.content for chunk in client.chat.completions.create(
            model=run_dir.name, max_tokens=6, stream=True, messages=[{"role": "user", "content": "Hello"}])
            if chunk.choices and chunk.choices[0].delta.content]
        assert len(pieces) >= 2
        with pytest.raises(BadRequestError):
            client.chat.completions.create(model="some-other-model", max_tokens=4,
                                           messages=[{"role": "user", "content": "Hi"}])
        with pytest.raises(AuthenticationError):
            OpenAI(base_url=status["url"], api_key="ann:wrong").models.list()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert serve_job.read(run_dir)["state"] == "stopped"


def _fake_hub_cache(hf_home: Path, repo: str, folder: Path) -> None:
    """`repo` as another machine holds it in its Hugging Face cache (what a download leaves there)."""
    cache = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = cache / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        (snapshot / file.name).symlink_to(file)
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text("0" * 40)


def test_exported_adapter_finds_its_base_by_hub_id_on_another_machine(default_run, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.core.models import prepare_model

    run_dir, home = default_run
    result = engine_cli("export", str(run_dir), "--adapter", "--out", str(tmp_path / "exports" / "a"), "--zip",
                        home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    with zipfile.ZipFile(result.stdout.strip().splitlines()[-1]) as zipped:
        zipped.extractall(elsewhere)
    assert json.loads((elsewhere / "adapter_config.json").read_text())["base_model_name_or_path"] == HUB_ID
    assert f'from_pretrained("{HUB_ID}")' in (elsewhere / "README.md").read_text()

    # another machine: no Tuneloom workspace, the base in its Hugging Face cache, offline; plain peft
    hf_home = tmp_path / "hf"
    _fake_hub_cache(hf_home, HUB_ID, prepare_model("smollm2-135m-instruct"))
    probe = ("import sys, torch\nfrom peft import AutoPeftModelForCausalLM\n"
             "model = AutoPeftModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)\n"
             "torch.save(model(torch.tensor([[1, 2, 3, 4]])).logits, sys.argv[2])\n")
    env = {"PATH": os.environ["PATH"], "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)}
    loaded = subprocess.run([sys.executable, "-c", probe, str(elsewhere), str(tmp_path / "there.pt")], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]

    base = AutoModelForCausalLM.from_pretrained(prepare_model("smollm2-135m-instruct"), dtype=torch.float32)
    with torch.no_grad():
        here = PeftModel.from_pretrained(base, run_dir / "adapter")(torch.tensor([[1, 2, 3, 4]])).logits
    torch.testing.assert_close(torch.load(tmp_path / "there.pt", weights_only=True), here)


def test_merged_export_is_saved_in_the_bases_published_dtype(default_run, tmp_path):
    run_dir, home = default_run
    result = engine_cli("export", str(run_dir), "--merged", "--out", str(tmp_path / "merged"), "--zip", "--progress",
                        home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    progress = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [p["phase"] for p in progress][:1] == ["starting"] and progress[-1] == {"progress": 1.0, "phase": "zipping"}
    assert {"loading base", "merging", "saving"} <= {p["phase"] for p in progress}
    assert all(a["progress"] <= b["progress"] for a, b in zip(progress, progress[1:]))
    assert json.loads((tmp_path / "merged" / "config.json").read_text())["dtype"] == "bfloat16"
    size = (tmp_path / "merged" / "model.safetensors").stat().st_size
    assert 250e6 < size < 300e6, size  # bf16, as SmolLM2 is published (fp32: 538 MB)
    assert runs.read_status(run_dir)["state"] == "done"
