"""The README's quickstart as printed: `python -m engine train presets/quickstart.yaml` on the default model,
then "Who are you?" to the trained run and to the base model.

    python bench/quickstart.py [--out bench/results/quickstart_cpu]

Records the wall time of the train command (start-up and loading included), the steps, the final train and eval
loss from the run's status.json, the machine and its load average (the CPU is often shared), and the greedy
replies (64 new tokens) through the chat worker, as `python -m engine chat RUN_DIR` gives them. Writes
OUT.json and OUT.md. The run trains in a temporary workspace; the prepared default model is read from the
workspace's model folder (TUNELOOM_MODELS, else ~/.tuneloom/models), as the CLI does.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

QUESTION = "Who are you?"


def reply(worker, name: str, **where) -> str:
    worker.load(name, **where)
    text = "".join(worker.generate([{"role": "user", "content": QUESTION}],
                                   {"max_new_tokens": 64, "temperature": 0.0}))
    worker.unload()
    return text.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "quickstart_cpu"))
    args = parser.parse_args()

    from machine import describe
    from throughput import temporary_workspace

    from engine.core import runs
    from engine.core.config import DEFAULT_MODEL

    temporary_workspace("tuneloom-quickstart-")
    load_before = os.getloadavg()
    began = time.time()
    trained = subprocess.run([sys.executable, "-m", "engine", "train", "presets/quickstart.yaml"], cwd=ROOT,
                             capture_output=True, text=True)
    wall = time.time() - began
    if trained.returncode != 0:
        print(trained.stderr[-3000:], file=sys.stderr)
        return 1
    run_dir = Path(trained.stdout.strip().splitlines()[-1])
    status = runs.read_status(run_dir)

    from engine.inference.chat_client import ChatWorker

    worker = ChatWorker()
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": describe(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "command": "python -m engine train presets/quickstart.yaml", "wall_s": round(wall, 1),
        "steps": status["step"], "final_loss": status["final_loss"], "final_eval_loss": status["final_eval_loss"],
        "question": QUESTION, "run_reply": reply(worker, run_dir.name, run=str(run_dir)),
        "base_reply": reply(worker, DEFAULT_MODEL, model=DEFAULT_MODEL),
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    load = lambda values: "/".join(f"{v:.1f}" for v in values)  # noqa: E731
    return f"""# The quickstart on the default model (CPU)

{r['date']} · {r['machine']} · load average (1/5/15 min) {load(r['load_average']['before'])} before, \
{load(r['load_average']['after'])} after.

`{r['command']}` (LoRA r16 on every linear layer, identity data, batch 4, max_seq_len 256, evaluation \
every 20 steps), timed from the command's start to its exit, loading included:

| steps | wall time | final train loss | final eval loss |
|---|---|---|---|
| {r['steps']} | {r['wall_s']:.0f} s | {r['final_loss']:.4f} | {r['final_eval_loss']:.4f} |

"{r['question']}", greedy, 64 new tokens, through the chat worker (`python -m engine chat RUN_DIR`):

- trained run: {json.dumps(r['run_reply'], ensure_ascii=False)}
- base model: {json.dumps(r['base_reply'], ensure_ascii=False)}

Reproduce: `python bench/quickstart.py`
"""


if __name__ == "__main__":
    sys.exit(main())
