"""Resident memory on CPU: the trainer's malloc (engine/core/allocator.py: what is chosen, that a preloaded
one is really in use, that the estimate follows it) and quantised models letting go of the checkpoint."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core.allocator import planned
from engine.core.config import RunConfig
from engine.core.describe import structure_of
from engine.estimate import estimate

ROOT = Path(__file__).resolve().parent.parent
IN_USE = [sys.executable, "-c", "from engine.core.allocator import in_use; print(in_use())"]


def test_system_and_missing_libraries_fall_back_to_the_system_malloc(tmp_path):
    assert planned("system") == ("system", None)
    assert planned(str(tmp_path / "libtcmalloc.so.4")) == ("system", None)  # no such file


@pytest.mark.skipif(planned("auto")[1] is None, reason="neither tcmalloc nor jemalloc is installed")
def test_a_preloaded_allocator_is_detected_and_the_default_is_not():
    name, library = planned("auto")
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    plain = subprocess.run(IN_USE, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    preloaded = subprocess.run(IN_USE, cwd=ROOT, env={**env, "LD_PRELOAD": library}, capture_output=True,
                               text=True, check=True)
    assert plain.stdout.strip() == "system" and preloaded.stdout.strip() == name


def test_cpu_estimate_follows_the_allocator(tiny_model):
    cfg = RunConfig.from_dict({"model": tiny_model, "data": {"train": "x.jsonl"}, "method": {"name": "lora"},
                               "train": {"batch_size": 4, "max_seq_len": 256}})
    arch = structure_of(tiny_model)
    system = estimate(arch, cfg, device="cpu", cpu_allocator="system")
    tcmalloc = estimate(arch, cfg, device="cpu", cpu_allocator="tcmalloc")
    assert system.components["fragmentation"] > tcmalloc.components["fragmentation"]
    assert system.peak_bytes > tcmalloc.peak_bytes
    assert any("system malloc" in note for note in system.notes)
    assert not any("system malloc" in note for note in tcmalloc.notes)
    assert tcmalloc.details["cpu_allocator"] == "tcmalloc"


def test_a_quantised_model_does_not_keep_the_checkpoint_file_mapped(tiny_model, tmp_path):
    from engine.core.models import load_model

    folder = tmp_path / "model"  # a file no other test has mapped
    shutil.copytree(tiny_model, folder)
    model = load_model(str(folder), quantize="4bit")
    maps = Path("/proc/self/maps").read_text()
    assert str(folder) not in maps  # the full-precision file would otherwise stay resident
    assert type(model.model.layers[0].mlp.down_proj.weight).__name__ == "Params4bit"
    assert model.model.embed_tokens.weight is model.lm_head.weight or not model.config.tie_word_embeddings
