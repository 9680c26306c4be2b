"""Merging runs (engine/inference/merge_runs.py) on the tiny model: refusals by name, a TIES merge that is a run
like any other, and an adapter that plain peft loads."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core import runs

ROOT = Path(__file__).resolve().parent.parent


def engine_cli(*args, home, timeout=300):
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def train(home, model, name, data, *extra):
    result = engine_cli("train", "presets/quickstart.yaml", "--set", f"model={model}", "--set", f"name={name}",
                        "--set", f"data.train={data}", "--set", "train.max_steps=3", "--set", "train.eval_steps=0",
                        "--set", "train.save_steps=0", "--set", "train.max_seq_len=96", *extra, home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parents(tiny_model, tmp_path_factory):
    home = tmp_path_factory.mktemp("merge-home")
    a = train(home, tiny_model, "identity", "presets/data/identity.jsonl")
    b = train(home, tiny_model, "planets", "presets/data/planets.jsonl")
    return home, a, b


def test_ties_merge_is_a_run_that_plain_peft_loads(parents, tiny_model, monkeypatch):
    home, a, b = parents
    result = engine_cli("merge", a.name, b.name, "--how", "ties", "--weights", "0.5,0.5", "--density", "0.5",
                        "--name", "both", home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    merged = Path(result.stdout.strip().splitlines()[-1])
    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    assert runs.is_run_folder(merged) and runs.read_status(merged)["state"] == "done"
    card = json.loads((merged / "merge.json").read_text())
    assert [p["run"] for p in card["parents"]] == [a.name, b.name] and card["how"] == "ties"
    assert card["density"] == 0.5 and card["weights"] == [0.5, 0.5]
    assert any(r["id"] == merged.name for r in runs.list_runs())  # the run list (Chat, Evaluate, Export) shows it

    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    # plain peft, no Tuneloom: the adapter loads onto the base and changes its output
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    before = base(ids).logits.detach().clone()
    model = PeftModel.from_pretrained(base, str(merged / "adapter"))
    after = model(ids).logits.detach()
    assert not torch.allclose(before, after)
    # TIES at density 0.5 keeps about half of each parent's weights: the merged tensors differ from both parents
    saved = load_file(str(merged / "adapter" / "adapter_model.safetensors"))
    parent = load_file(str(a / "adapter" / "adapter_model.safetensors"))
    assert set(saved) == set(parent)
    assert any(not torch.equal(saved[k], parent[k]) for k in saved)

    # Evaluate and Export take it as a run
    evaluated = engine_cli("evaluate", str(merged), "--samples", "1", "--max-new-tokens", "4", "--json", home=home)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads(evaluated.stdout.strip().splitlines()[-1])["eval_loss"] > 0
    exported = engine_cli("export", str(merged), "--adapter", "--out", str(home / "exports" / "both"), home=home)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "merge" in (home / "exports" / "both" / "README.md").read_text().lower()


def test_refused_by_name_before_loading(parents, tiny_model, tmp_path, monkeypatch):
    home, a, b = parents
    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    from engine.inference.merge_runs import merge_problems

    assert merge_problems([a.name, b.name], "ties", [0.5, 0.5], 0.5) == []
    assert any("two or more" in p for p in merge_problems([a.name], "ties", None, 0.5))
    assert any("--weights" in p for p in merge_problems([a.name, b.name], "ties", [1.0], 0.5))
    assert any("--density" in p for p in merge_problems([a.name, b.name], "ties", None, 1.5))
    assert any("--how svd" in p for p in merge_problems([a.name, b.name], "svd", None, 0.5))
    # another base model: copy a run and point its config at another model
    other = tmp_path / "other-base"
    import shutil

    shutil.copytree(b, other)
    text = (other / "config.yaml").read_text().replace(tiny_model, "/somewhere/else")
    (other / "config.yaml").write_text(text)
    problems = merge_problems([str(a), str(other)], "ties", None, 0.5)
    assert any("different base models" in p and a.name in p and "other-base" in p for p in problems), problems
    # a method peft cannot merge that way: IA3 takes only linear
    ia3 = tmp_path / "ia3-run"
    shutil.copytree(a, ia3)
    config = json.loads((ia3 / "adapter" / "adapter_config.json").read_text())
    (ia3 / "adapter" / "adapter_config.json").write_text(json.dumps({**config, "peft_type": "IA3"}))
    problems = merge_problems([str(a), str(ia3)], "ties", None, 0.5)
    assert any("ia3-run" in p and "IA3" in p and "linear" in p for p in problems), problems
    # different ranks cannot be merged with ties (peft keeps one rank), cat can
    wide = tmp_path / "wide"
    shutil.copytree(b, wide)
    (wide / "adapter" / "adapter_config.json").write_text(json.dumps({**config, "r": 2 * config["r"]}))
    assert any("one LoRA rank" in p and "wide r=" in p for p in merge_problems([str(a), str(wide)], "ties", None, .5))
    assert merge_problems([str(a), str(wide)], "cat", None, None) == []
    # the CLI refuses with exit 2, naming the run
    result = engine_cli("merge", a.name, str(ia3), "--how", "ties", home=home)
    assert result.returncode == 2 and "ia3-run" in result.stderr, result.stderr


# ---- full-weight runs, merged by mergekit ------------------------------------------------------------
@pytest.fixture(scope="module")
def full_parents(tiny_model, tmp_path_factory):
    home = tmp_path_factory.mktemp("merge-full-home")
    full = ("--set", "method.name=full", "--set", "train.learning_rate=1e-3")
    a = train(home, tiny_model, "identity-full", "presets/data/identity.jsonl", *full)
    b = train(home, tiny_model, "planets-full", "presets/data/planets.jsonl", *full)
    return home, a, b


def weights_of(folder: Path) -> dict:
    from safetensors.torch import load_file

    tensors = {}
    for shard in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(shard)))
    return tensors


def test_full_weight_runs_merge_with_mergekit(full_parents, tiny_model, monkeypatch):
    import torch

    home, a, b = full_parents
    parent_a, parent_b = weights_of(a / "model"), weights_of(b / "model")
    changed = [k for k in parent_a if not torch.equal(parent_a[k], parent_b[k])]
    assert changed  # the two runs trained on different data: their weights differ

    # linear at 0.5 / 0.5 is, by definition, the mean of the two parents' tensors
    result = engine_cli("merge", a.name, b.name, "--how", "linear", "--weights", "0.5,0.5", "--name", "mean",
                        home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    mean = Path(result.stdout.strip().splitlines()[-1])
    merged = weights_of(mean / "model")
    for key in changed:
        assert torch.allclose(merged[key].float(), (parent_a[key].float() + parent_b[key].float()) / 2, atol=1e-6)
    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    assert runs.read_status(mean)["state"] == "done"
    card = json.loads((mean / "merge.json").read_text())
    assert card["library"] == "mergekit" and [p["run"] for p in card["parents"]] == [a.name, b.name]
    assert (mean / "model" / "tokenizer_config.json").is_file()  # the parents' tokenizer and chat template

    # SLERP walks from the first run (t = 0: its weights) to the second (t = 1)
    for weights, expected in (("1,0", parent_a), ("0,1", parent_b)):
        result = engine_cli("merge", a.name, b.name, "--how", "slerp", "--weights", weights, home=home)
        assert result.returncode == 0, result.stderr[-3000:]
        end = weights_of(Path(result.stdout.strip().splitlines()[-1]) / "model")
        assert all(torch.allclose(end[k].float(), expected[k].float(), atol=1e-5) for k in changed)

    # TIES (task vectors against the base model) gives a model that Evaluate takes like any run
    result = engine_cli("merge", a.name, b.name, "--how", "ties", "--density", "0.5", "--name", "ties", home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    ties = Path(result.stdout.strip().splitlines()[-1])
    ties_weights = weights_of(ties / "model")
    assert any(not torch.equal(ties_weights[k], parent_a[k]) and not torch.equal(ties_weights[k], parent_b[k])
               for k in changed)
    evaluated = engine_cli("evaluate", str(ties), "--samples", "1", "--max-new-tokens", "4", "--json", home=home)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads(evaluated.stdout.strip().splitlines()[-1])["eval_loss"] > 0


def test_full_weight_merges_refused_by_name(full_parents, parents, monkeypatch):
    home, a, b = full_parents
    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    from engine.inference.merge_runs import merge_problems

    assert merge_problems([str(a), str(b)], "slerp", None, None) == []
    problems = merge_problems([str(a), str(b)], "cat", None, None)
    assert any(a.name in p and "mergekit" in p and "linear, ties, slerp" in p for p in problems), problems
    assert any("exactly two" in p for p in merge_problems([str(a), str(b), str(a)], "slerp", None, None))
    lora = parents[1]  # a LoRA run on the same tiny base: an adapter beside a full-weight run
    assert any("different kinds" in p for p in merge_problems([str(a), str(lora)], "linear", None, None))
    assert any("slerp" in p and lora.name in p for p in merge_problems([str(a), str(lora)], "slerp", None, None))


def test_slerp_weights_are_checked_before_loading(full_parents, monkeypatch):
    home, a, b = full_parents
    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    from engine.inference.merge_runs import merge_problems

    for weights in ([0.0, 0.0], [-1.0, 2.0]):
        assert any("slerp takes two weights" in p for p in merge_problems([str(a), str(b)], "slerp", weights, None))
    # linear and TIES divide by the weights' sum: at 0 every merged tensor would be inf or NaN
    for how in ("linear", "ties"):
        assert any("above 0" in p for p in merge_problems([str(a), str(b)], how, [1.0, -1.0], 0.5))
        assert merge_problems([str(a), str(b)], how, [1.0, 0.5], 0.5) == []


def test_a_merge_that_would_lose_trained_tensors_is_refused_or_fails_leaving_nothing_half_made(
        full_parents, tiny_model, monkeypatch):
    """BitFit adds bias tensors that mergekit's Llama table does not list: merged, they would be dropped without
    a word. Against a local base that is seen before anything runs (the tensors are named); against a base that
    cannot be read up front (a Hub id) the merge itself fails, names them, and leaves a failed run without a
    half-written model."""
    home, a, _ = full_parents
    bitfit = train(home, tiny_model, "identity-bitfit", "presets/data/identity.jsonl", "--set", "method.name=bitfit")
    result = engine_cli("merge", a.name, bitfit.name, "--how", "linear", "--name", "with-biases", home=home)
    assert result.returncode != 0 and "lacks" in result.stderr and ".bias" in result.stderr, result.stderr[-2000:]
    monkeypatch.setenv("TUNELOOM_HOME", str(home))
    assert not any("with-biases" in r["id"] for r in runs.list_runs())  # refused before a run folder was made

    from engine.inference import merge_runs

    monkeypatch.setattr(merge_runs, "_added_tensor_problems", lambda *args: [])  # as for a base on the Hub
    with pytest.raises(RuntimeError, match=r"left out .*\.bias"):
        merge_runs.merge([str(a), str(bitfit)], "linear", name="with-biases")
    merged = next(Path(r["path"]) for r in runs.list_runs() if "with-biases" in r["id"])
    assert runs.read_status(merged)["state"] == "failed"
    assert not (merged / "model").exists() and not (merged / ".merging").exists()


def test_mergekit_dies_with_a_merge_killed_from_outside(tmp_path):
    """The page's timeout SIGKILLs `engine merge`, which cannot pass it on: mergekit (a child in its own process
    group) is started to die with its parent. A sleeping child stands in for mergekit here."""
    import signal
    import time

    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "from engine.inference.merge_full import _die_with_parent\n"
        "child = subprocess.Popen(['sleep', '60'], start_new_session=True, preexec_fn=_die_with_parent)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n")], cwd=str(ROOT), stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()

    def running(pid: int) -> bool:  # a zombie (state Z) has died and waits for its reaper
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except OSError:
            return False

    deadline = time.time() + 10
    while time.time() < deadline and running(child):
        time.sleep(0.1)
    alive = running(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, "the child outlived its killed parent"
