"""The trainer as users run it: `python -m engine train`, then export and chat with the result."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core import runs
from engine.core.allocator import planned

ROOT = Path(__file__).resolve().parent.parent
METRIC_KEYS = {"step", "epoch", "loss", "learning_rate", "tokens_per_second", "elapsed_s", "peak_memory_bytes"}


def engine_cli(*args, home, timeout=600):
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained_run(tiny_model, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    result = engine_cli("train", "presets/quickstart.yaml", "--set", f"model={tiny_model}",
                        "--set", "train.max_steps=12", "--set", "train.eval_steps=6", "--set", "train.save_steps=6",
                        "--set", "train.max_seq_len=128", "--set", "train.learning_rate=5e-3", home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1]), home


def test_train_writes_the_run_folder_contract(trained_run):
    run_dir, _ = trained_run
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["step"] == 12 and status["error"] is None
    assert isinstance(status["pid"], int)
    rows = runs.read_metrics(run_dir)
    train_rows = [r for r in rows if "loss" in r]
    assert len(train_rows) == 12 and all(METRIC_KEYS <= set(r) for r in train_rows)
    assert any("eval_loss" in r for r in rows)
    assert all(r["tokens_per_second"] > 0 for r in train_rows[1:])
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]  # it learns
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert (run_dir / "checkpoints").is_dir() and runs.last_checkpoint(run_dir) is not None
    assert "finished at step 12" in (run_dir / "train.log").read_text()
    assert "auto_gradient_checkpointing" not in status  # memory is plentiful for the tiny model
    # the trainer started itself again on tcmalloc/jemalloc where installed (engine/core/allocator.py)
    assert status["allocator"] == planned()[0] and rows[-1]["allocator"] == planned()[0]
    assert f"memory allocator: {planned()[0]}" in (run_dir / "train.log").read_text()


def test_gradient_checkpointing_turns_itself_on_when_memory_is_tight(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELOOM_MEMORY_LIMIT_MB", "64")  # far below the tiny run's estimate
    result = engine_cli("train", "presets/quickstart.yaml", "--set", f"model={tiny_model}",
                        "--set", "train.max_steps=2", "--set", "train.eval_steps=0", "--set", "train.save_steps=0",
                        "--set", "train.max_seq_len=64", home=tmp_path / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert runs.read_status(run_dir)["auto_gradient_checkpointing"] is True
    log = (run_dir / "train.log").read_text()
    assert "does not fit in memory" in log and "gradient checkpointing turned on" in log


def test_exports_reload_with_plain_transformers_and_peft(trained_run, tiny_model, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir, home = trained_run
    for kind in ("adapter", "merged"):
        result = engine_cli("export", str(run_dir), f"--{kind}", "--out", str(tmp_path / kind), home=home)
        assert result.returncode == 0, result.stderr[-3000:]
    card = (tmp_path / "adapter" / "README.md").read_text()
    assert "Base model" in card and "sha256" in card and "final train loss" in card and "lora" in card
    assert (tmp_path / "merged" / "model.safetensors").is_file()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "merged")
    assert tokenizer.chat_template  # the merged export keeps the chat template

    ids = tokenizer("Who are you?", return_tensors="pt").input_ids
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        base_logits = base(ids).logits
        adapted = PeftModel.from_pretrained(base, tmp_path / "adapter")(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")(ids).logits
    assert not torch.allclose(base_logits, adapted)  # the adapter changes the model
    torch.testing.assert_close(merged, adapted, atol=1e-4, rtol=1e-4)


def test_chat_worker_streams_a_reply_and_unload_ends_the_process(trained_run, monkeypatch):
    from engine.core.runs import pid_alive
    from engine.inference.chat_client import ChatWorker

    run_dir, home = trained_run
    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    worker = ChatWorker()
    note = worker.load(run_dir.name, run=str(run_dir))
    assert "merged" in note
    pieces = list(worker.generate([{"role": "user", "content": "Who are you?"}], {"max_new_tokens": 8}))
    assert pieces and "".join(pieces).strip()
    pid = worker.pid
    worker.unload()
    assert not pid_alive(pid)


def test_cli_preview_json_marks_trained_tokens(tiny_model, tmp_path):
    result = engine_cli("data", "preview", "presets/data/chat_multiturn.jsonl", "--model", tiny_model,
                        "--json", "--limit", "2", home=tmp_path)
    assert result.returncode == 0, result.stderr
    examples = json.loads(result.stdout)
    assert len(examples) == 2
    assert set(examples[0][0]) == {"token", "trained"}
    trained = "".join(t["token"] for t in examples[0] if t["trained"])
    assert "6 minutes" in trained and "boil an egg" not in trained


def test_rerunning_a_runs_config_reproduces_it_in_a_new_folder(trained_run):
    run_dir, home = trained_run
    before = {"metrics": (run_dir / "metrics.jsonl").read_bytes(), "status": runs.read_status(run_dir),
              "adapter": (run_dir / "adapter" / "adapter_model.safetensors").read_bytes()}
    result = engine_cli("train", str(run_dir / "config.yaml"), home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    copy = Path(result.stdout.strip().splitlines()[-1])
    assert copy != run_dir and copy.parent == run_dir.parent and run_dir.name in copy.name
    assert runs.read_status(copy)["reproduces"] == run_dir.name
    assert f"(reproduces {run_dir.name})" in result.stderr
    assert len([r for r in runs.read_metrics(copy) if "loss" in r]) == 12
    # the original is untouched: same metrics file, same adapter, same status
    assert (run_dir / "metrics.jsonl").read_bytes() == before["metrics"]
    assert (run_dir / "adapter" / "adapter_model.safetensors").read_bytes() == before["adapter"]
    assert runs.read_status(run_dir) == before["status"]


def test_exported_adapter_zip_loads_elsewhere_with_plain_peft_and_the_base_alone(trained_run, tiny_model, tmp_path):
    import shutil
    import zipfile

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir, home = trained_run
    result = engine_cli("export", str(run_dir), "--adapter", "--out", str(tmp_path / "export" / "adapter"), "--zip",
                        home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    archive = Path(result.stdout.strip().splitlines()[-1])
    assert archive.suffix == ".zip"
    elsewhere, base_copy = tmp_path / "elsewhere" / "adapter", tmp_path / "elsewhere" / "tiny-smollm2"
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(elsewhere)
    shutil.copytree(tiny_model, base_copy)  # "the base alone", in another folder than the one trained on
    config = json.loads((elsewhere / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny-smollm2"  # the folder's name, not this machine's path
    card = (elsewhere / "README.md").read_text()
    assert "tuneloom_config.yaml" in card and (elsewhere / "tuneloom_config.yaml").is_file()
    assert "config.yaml`" not in card.replace("tuneloom_config.yaml`", "")
    assert "loss:** None" not in card and "final eval loss:** " in card  # the run had an eval: its real value
    assert "/path/to/tiny-smollm2" in card  # how to point it at a local copy

    ids = AutoTokenizer.from_pretrained(elsewhere)("Who are you?", return_tensors="pt").input_ids
    with torch.no_grad():
        there = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_copy), elsewhere)(ids).logits
        here = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model),
                                         run_dir / "adapter")(ids).logits
    torch.testing.assert_close(there, here)


def test_merged_export_of_a_method_that_cannot_merge_is_a_one_line_refusal(tiny_model, tmp_path):
    home = tmp_path / "home"
    trained = engine_cli("train", "presets/prompt_tuning.yaml", "--set", f"model={tiny_model}", "--set",
                         "train.max_steps=2", "--set", "train.eval_steps=0",
                         "--set", "train.save_steps=0", "--set", "train.max_seq_len=64", "--set",
                         "data.validation_split=0", home=home)
    assert trained.returncode == 0, trained.stderr[-3000:]
    run_dir = trained.stdout.strip().splitlines()[-1]
    result = engine_cli("export", run_dir, "--merged", "--out", str(tmp_path / "merged"), home=home)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: Prompt tuning cannot be merged into the base weights")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "merged").exists()
