"""The UI process never loads torch, transformers, peft or datasets: not on import, not in handlers."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r'''
import importlib.abc, sys
BLOCKED = ("torch", "transformers", "peft", "datasets")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: the UI must not import it")
        return None

sys.meta_path.insert(0, Block())

# a method registered from outside the UI gets controls without UI code (one per Param type)
from engine.methods import METHODS, Method
from engine.core.registry import Param
METHODS.register("probe", Method(key="probe", title="Probe", summary="a test-only method", apply=None,
    count_trainable=lambda arch, params: 0, params=(
        Param("depth", int, 3, "an int", min=1, max=8), Param("scale", float, 0.5, "a float", min=0.0),
        Param("flag", bool, True, "a bool"), Param("mode", str, "a", "a choice", choices=("a", "b")),
        Param("spec", str, "x", "free text"))))

import app, ui
from engine.core.config import ConfigError
from ui import chat_tab, data_tab, export_tab, train_tab
from ui.app import build_ui, launch_options, model_note

demo = build_ui()
kinds = {b.elem_id: type(b).__name__ for b in demo.blocks.values() if (b.elem_id or "").startswith("probe-")}
assert kinds == {"probe-depth": "Slider", "probe-scale": "Number", "probe-flag": "Checkbox",
                 "probe-mode": "Dropdown", "probe-spec": "Textbox"}, kinds
assert set(demo.get_api_info()["named_endpoints"]) == {
    "/upload_data", "/start_training", "/run_status", "/stop_training", "/resume_training", "/list_runs",
    "/delete_run", "/estimate", "/evaluate", "/chat", "/export", "/evaluate_judged", "/start_sweep", "/sweep_status",
    "/stop_sweep", "/resume_sweep", "/train_best_longer", "/merge_runs"}
launch_options()

# a fresh workspace has not read the default model's structure: the estimate says so (no number) and asks
# again on a timer; a child process reads it, and then the estimate and the model's own names show
from types import SimpleNamespace
from engine.core import describe
from engine.core.device import detect
from ui import estimate_panel
panel = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "estimate-panel")
assert "Reading the model" in panel.value and "GiB" not in panel.value, panel.value
describe.obtain("smollm2-135m-instruct")
shown = estimate_panel.update(SimpleNamespace(device=detect()), train_tab.preset_defaults().to_dict(), "en")
assert "GiB" in shown[0] and "LlamaForCausalLM" in shown[0] and "q_proj" in shown[0], shown[0]

# handlers that run in the UI process, called for real (errors must be messages, not crashes)
model_note("smollm2-135m-instruct")
assert data_tab.parse_columns("question=instruction, answer=output") == {"question": "instruction", "answer": "output"}
try:
    train_tab.start_config({"model": "x", "data": {"train": "missing.jsonl"}, "train": {"batch_size": 0}})
    raise AssertionError("a bad config started")
except ConfigError as err:
    assert any("batch_size" in p for p in err.problems) and any("missing.jsonl" in p for p in err.problems), err
train_tab.tick(None, {})
train_tab.pick_on_load()
chat_tab.target_choices()
export_tab.run_choices()
from ui import eval_tab
eval_tab.data_choices()
export_tab.serve_text("nope")
from ui import judge_panel, sweep_tab  # sweeps, merging and the judge: checks and views without torch
sweep_tab.config_choices()
sweep_tab.show_sweep(None)
assert "tl-error" in sweep_tab.on_start("presets/quickstart.yaml", "", "train.nope=1:2", 2, "tpe", "eval_loss", "")[0]
assert "tl-error" in sweep_tab.on_merge([], "ties", "", 0.5, "")
judge_panel.judge_choice("http://127.0.0.1:8000/v1", "pairwise")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("LOADED", loaded)
'''


def test_ui_imports_without_torch(tmp_path):
    env = {**os.environ, "TUNELOOM_HOME": str(tmp_path / "home"), "GRADIO_ANALYTICS_ENABLED": "False",
           "TUNELOOM_STRUCTURES": str(tmp_path / "structures")}  # nothing read yet
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=str(ROOT), env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LOADED []" in result.stdout, result.stdout


def test_app_refuses_exposure_without_auth(tmp_path):
    env = {**os.environ, "TUNELOOM_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "app.py", "--host", "0.0.0.0"], cwd=str(ROOT), env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--auth" in result.stderr
