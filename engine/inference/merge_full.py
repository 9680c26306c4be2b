"""Merge full-weight runs (full, freeze, layer-wise, BitFit on a model with biases: a whole `model/` each) with
mergekit.

mergekit does the merging (linear, TIES, SLERP), as a child process (`python -m mergekit.scripts.run_yaml`) so
that its threads and memory stay out of the caller (the page's server). This module only writes its YAML recipe
from the runs and checks what came back; refusals happen before, in merge_runs.merge_problems.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from engine.core.workspace import stored_dtype

WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".index.json")


def recipe(models: list[Path], base: str, how: str, weights: list[float], density: float | None) -> dict:
    """mergekit's YAML config for `models` (their model/ folders). TIES takes task vectors against the runs' base
    model; SLERP walks from the first run (t = 0) to the second (t = 1), t = the second's share of the weights."""
    dtype = stored_dtype(models[0]) or "float32"
    if how == "slerp":
        return {"merge_method": "slerp", "base_model": str(models[0]),
                "models": [{"model": str(m)} for m in models],
                "parameters": {"t": weights[1] / sum(weights)}, "dtype": dtype}
    per_model = [{"model": str(m), "parameters": {"weight": w, **({"density": density} if how == "ties" else {})}}
                 for m, w in zip(models, weights)]
    config = {"merge_method": how, "models": per_model, "parameters": {"normalize": True}, "dtype": dtype}
    if how == "ties":
        config["base_model"] = base
    return config


def tensor_names(folder: Path) -> set[str]:
    """The tensor names in a folder's safetensors files, from their headers (8 bytes of length, then JSON)."""
    names = set()
    for shard in folder.glob("*.safetensors"):
        with shard.open("rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        names |= {k for k in header if k != "__metadata__"}
    return names


def _die_with_parent() -> None:
    """In the child before it runs mergekit: SIGKILL it when its parent dies (Linux prctl PR_SET_PDEATHSIG; no
    such call elsewhere, where only an interrupt of the parent ends it)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def merge_weights(models: list[Path], base: str, how: str, weights: list[float], density: float | None,
                  out: Path, log: Path, seed: int = 0) -> None:
    """Run mergekit into `out`; its whole output goes to `log`. The parents' tokenizer and chat template (what
    they trained with) replace whatever mergekit copied from the base. mergekit merges the tensors its
    architecture table lists: a run that added tensors (BitFit's new biases) would lose them without a word, so
    that is an error here."""
    from engine.core.messages import Message

    config = out.parent / "mergekit.yml"
    config.write_text(yaml.safe_dump(recipe(models, base, how, weights, density), sort_keys=False), encoding="utf-8")
    command = [sys.executable, "-m", "mergekit.scripts.run_yaml", str(config), str(out), "--random-seed", str(seed),
               "--quiet"]
    with log.open("w", encoding="utf-8") as sink:
        # its own process group, killed when this process is interrupted (Ctrl-C); and, on Linux, told to die with
        # this process, so a merge killed from outside (the page's timeout sends SIGKILL) leaves no mergekit behind
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=_die_with_parent)
        try:
            returncode = process.wait()
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    if returncode != 0 or not any(out.glob("*.safetensors")):
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(Message("merge.mergekit_failed", tail=tail[0][:300], log=str(log)))
    dropped = sorted(set().union(*(tensor_names(m) for m in models)) - tensor_names(out))
    if dropped:
        raise RuntimeError(Message("merge.dropped", count=len(dropped), names=", ".join(dropped[:3])))
    for item in models[0].iterdir():
        if item.is_file() and item.name != "config.json" and not item.name.endswith(WEIGHT_FILES):
            shutil.copy2(item, out / item.name)
