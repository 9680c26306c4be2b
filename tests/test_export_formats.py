"""Export where people run models: GGUF files with an Ollama Modelfile (checked by loading them back), and a
push to the Hugging Face Hub that fails fast and clearly without a network."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, home, env=None, timeout=900):
    full = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=full, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def finished_run(tiny_model, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    result = cli("train", "presets/quickstart.yaml", "--set", f"model={tiny_model}", "--set", "train.max_steps=3",
                 "--set", "train.eval_steps=0", "--set", "train.save_steps=0", "--set", "train.max_seq_len=96",
                 "--set", "train.learning_rate=5e-3", "--set", "data.validation_split=0", home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1]), home


# ---- the Ollama Modelfile ------------------------------------------------------------------------------------
@pytest.mark.parametrize("template", ["auto", "chatml", "llama3", "zephyr", "alpaca"])
def test_modelfile_translates_the_chat_template_it_recognises(tiny_model, template):
    from engine.core.models import load_tokenizer
    from engine.inference.ollama import PROBE, family_of, modelfile

    tokenizer = load_tokenizer(tiny_model, template=template)
    family = family_of(tokenizer)
    assert family is not None and family.name == ("chatml" if template == "auto" else template)
    # the family's parts render the probe conversation exactly as the model's own Jinja template does
    assert family.render(PROBE, tokenizer) == tokenizer.apply_chat_template(PROBE, tokenize=False,
                                                                            add_generation_prompt=True)
    text, name = modelfile("model-q8_0.gguf", tokenizer)
    assert name == family.name and "FROM ./model-q8_0.gguf" in text and "{{ .Content }}" in text
    template_text = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    for before, after in (family.user, family.assistant):  # the Go template emits the same literal text
        assert family._fill(before, tokenizer) + "{{ .Content }}" + family._fill(after, tokenizer) in template_text
    assert template_text.endswith(family._fill(family.generation, tokenizer))
    stops = [line for line in text.splitlines() if line.startswith("PARAMETER stop")]
    assert f'PARAMETER stop "{tokenizer.eos_token}"' in stops
    if template == "auto":  # SmolLM2's template adds its own system prompt when a chat has none
        assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in text
        assert stops == ['PARAMETER stop "<|im_end|>"']


def test_an_unknown_template_is_left_to_the_gguf_metadata(tiny_model):
    from engine.core.models import load_tokenizer
    from engine.inference.ollama import modelfile

    tokenizer = load_tokenizer(tiny_model)
    tokenizer.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    text, name = modelfile("model-f16.gguf", tokenizer)
    assert name is None and "TEMPLATE" not in text and "tokenizer.chat_template" in text


# ---- GGUF --------------------------------------------------------------------------------------------------------
def test_gguf_export_loads_back_and_agrees_with_the_merged_model(finished_run, tmp_path):
    run_dir, home = finished_run
    out = tmp_path / "gguf"
    result = cli("export", str(run_dir), "--gguf", "--gguf-types", "f16,q8_0", "--out", str(out), home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == {"model-f16.gguf", "model-q8_0.gguf", "Modelfile", "README.md",
                                              "gguf_check.json"}
    checks = {c["gguf"]: c for c in json.loads((out / "gguf_check.json").read_text())}
    assert checks["model-f16.gguf"]["top1_agreement"] == 1.0 and checks["model-f16.gguf"]["max_abs_logit_diff"] < 0.01
    q8 = checks["model-q8_0.gguf"]
    assert q8["top1_agreement"] >= 0.95 and q8["identical_greedy_replies"] >= q8["prompts"] - 1
    assert all(c["identical_tokenization"] == c["prompts"] for c in checks.values())
    assert "next-token agreement" in result.stderr
    # what llama.cpp / Ollama read: the architecture, the chat template and the end-of-turn token
    from gguf import GGUFReader

    fields = GGUFReader(str(out / "model-q8_0.gguf")).fields

    def text(key):
        field = fields[key]
        return bytes(field.parts[field.data[0]]).decode()

    assert text("general.architecture") == "llama" and "<|im_start|>" in text("tokenizer.chat_template")
    modelfile = (out / "Modelfile").read_text()
    assert "FROM ./model-q8_0.gguf" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "ollama create" in (out / "README.md").read_text()


def test_gguf_export_refuses_an_unknown_type(finished_run, tmp_path):
    run_dir, home = finished_run
    result = cli("export", str(run_dir), "--gguf", "--gguf-types", "q4_k", "--out", str(tmp_path / "x"), home=home)
    assert result.returncode == 2 and "GGUF type 'q4_k': choose from f16, bf16, q8_0, f32" in result.stderr


# ---- the Hub, offline ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env, words", [
    ({"HF_HUB_OFFLINE": "1"}, "offline mode: HF_HUB_OFFLINE is set"),
    ({"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}, "no network: 127.0.0.1"),
])
def test_push_fails_fast_and_clearly_without_a_network(finished_run, env, words):
    run_dir, home = finished_run
    started = time.time()
    result = cli("push", str(run_dir), "--repo", "someone/polite-model", "--token", "hf_test", home=home, env=env,
                 timeout=120)
    assert result.returncode == 2
    assert "error: cannot push to the Hugging Face Hub: it is not reachable" in result.stderr and words in result.stderr
    assert time.time() - started < 30  # python start-up and imports; no retries, nothing exported


def test_push_names_a_malformed_repository(finished_run):
    run_dir, home = finished_run
    result = cli("push", str(run_dir), "--repo", "not a repo", home=home, env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2 and "write it as owner/name" in result.stderr
