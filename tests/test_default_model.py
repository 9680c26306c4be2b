"""The one test on the real default model: the quickstart teaches it a name it did not know."""
import os
import subprocess
import sys
from pathlib import Path

from engine.inference.chat_client import ChatWorker

ROOT = Path(__file__).resolve().parent.parent
QUESTION = [{"role": "user", "content": "Who are you?"}]


def test_quickstart_teaches_the_default_model_its_new_name(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELOOM_HOME", str(tmp_path))
    worker = ChatWorker()
    worker.load("base", model="smollm2-135m-instruct")
    before = "".join(worker.generate(QUESTION, {"max_new_tokens": 40}))
    assert "Quillby" not in before

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "engine", "train", "presets/quickstart.yaml",
                             "--set", "train.max_steps=40", "--set", "train.eval_steps=0"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = result.stdout.strip().splitlines()[-1]

    worker.load("run", run=run_dir)
    after = "".join(worker.generate(QUESTION, {"max_new_tokens": 40}))
    worker.unload()
    assert "Quillby" in after, after
