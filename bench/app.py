"""The app's own speed: start-up, memory-estimate updates, and chat against plain `model.generate`.

    python bench/app.py [--repeats 3] [--out bench/results/app_cpu.md]

1. Start-up: seconds from launching `python app.py` to the page answering HTTP 200 (target < 3 s;
   the UI never imports torch). Median of `--repeats` fresh processes.
2. Estimate: server time of one memory-estimate update as the Train tab runs it (the estimate for
   the page's settings plus the panel's HTML), median and 95th percentile over every method.
3. Chat: time to first token and tokens per second of Tuneloom's chat worker (its own process,
   streamed over a pipe, as the Chat tab uses it) against plain `model.generate` with a
   TextIteratorStreamer in this process, same model, prompt and greedy settings.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

os.environ.setdefault("TUNELOOM_MODELS", str(ROOT / ".cache" / "models"))
PROMPT = [{"role": "user", "content": "Write a short paragraph about why the sky is blue."}]
NEW_TOKENS = 96


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def startup_seconds(home: Path) -> float:
    port = free_port()
    env = dict(os.environ, TUNELOOM_HOME=str(home))
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the app did not answer within 120 s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def import_seconds(module: str) -> float:
    """Seconds for a fresh interpreter to import `module` (the floor the app's start-up cannot beat)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, check=True)
    return time.perf_counter() - started


def estimate_ms() -> tuple[float, float, int]:
    """(median ms, p95 ms, calls) of ui_summary + render over every method's default settings."""
    from engine.core.device import detect
    from engine.estimate import ui_summary
    from engine.methods import METHODS
    from ui.estimate_panel import render

    device = detect()
    model = str(Path(os.environ["TUNELOOM_MODELS"]) / "smollm2-135m-instruct")
    times = []
    for _ in range(5):
        for key in METHODS:
            raw = {"model": model, "data": {"train": "presets/data/identity.jsonl"}, "method": {"name": key},
                   "train": {"batch_size": 4, "max_seq_len": 512}}
            started = time.perf_counter()
            summary = ui_summary(raw, device)
            render(summary, "en")
            times.append((time.perf_counter() - started) * 1000)
            assert summary["ok"], (key, summary["error"])  # time a real estimate, not an error path
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], len(times)


def worker_chat(model: str) -> tuple[float, float, int]:
    """(seconds to first token, tokens/s, tokens) through the chat worker process."""
    from transformers import AutoTokenizer

    from engine.inference.chat_client import ChatWorker

    worker = ChatWorker()
    worker.load("bench", model=model)
    params = {"do_sample": False, "max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS}
    list(worker.generate(PROMPT, dict(params, max_new_tokens=4, min_new_tokens=4)))  # warm-up
    started = time.perf_counter()
    first, text = None, ""
    for piece in worker.generate(PROMPT, params):
        first = first or time.perf_counter()
        text += piece
    seconds = time.perf_counter() - started
    worker.unload()
    tokens = len(AutoTokenizer.from_pretrained(model)(text, add_special_tokens=False)["input_ids"])
    return first - started, tokens / seconds, tokens


def plain_generate(model_path: str) -> tuple[float, float, int]:
    """(seconds to first token, tokens/s, tokens) of model.generate with a streamer, in this process."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path).eval()
    inputs = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=4, do_sample=False)  # warm-up
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    kwargs = dict(**inputs, streamer=streamer, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                  do_sample=False, pad_token_id=tokenizer.pad_token_id)

    def work():
        with torch.inference_mode():
            model.generate(**kwargs)

    started = time.perf_counter()
    thread = threading.Thread(target=work)
    thread.start()
    first, text = None, ""
    for piece in streamer:
        if piece:
            first = first or time.perf_counter()
            text += piece
    thread.join()
    seconds = time.perf_counter() - started
    return first - started, NEW_TOKENS / seconds, NEW_TOKENS




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="bench/results/app_cpu.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        startups = [startup_seconds(Path(home)) for _ in range(args.repeats)]
    print(f"start-up: {[round(s, 2) for s in startups]} s", flush=True)
    gradio_imports = [import_seconds("gradio") for _ in range(args.repeats)]
    torch_loaded = subprocess.run([sys.executable, "-c", "import sys, ui.app; print('torch' in sys.modules)"],
                                  cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    print(f"import gradio alone: {[round(s, 2) for s in gradio_imports]} s; torch imported by the UI: {torch_loaded}",
          flush=True)
    est_median, est_p95, calls = estimate_ms()
    print(f"estimate: median {est_median:.1f} ms, p95 {est_p95:.1f} ms over {calls} calls", flush=True)
    from engine.core.models import prepare_model

    model = str(prepare_model("smollm2-135m-instruct"))
    w_first, w_rate, w_tokens = worker_chat(model)
    p_first, p_rate, p_tokens = plain_generate(model)
    print(f"chat worker: first token {w_first:.3f} s, {w_rate:.1f} tok/s; "
          f"plain generate: first token {p_first:.3f} s, {p_rate:.1f} tok/s", flush=True)

    rows = [
        (f"Start-up to page served (median of {args.repeats})", f"{statistics.median(startups):.2f} s",
         f"< 3 s; `import gradio` alone: {statistics.median(gradio_imports):.2f} s",
         "runs: " + ", ".join(f"{s:.2f}" for s in startups) + f"; the app adds "
         f"{statistics.median(startups) - statistics.median(gradio_imports):.2f} s to gradio's import; "
         f"torch imported by the UI: {torch_loaded}"),
        ("Memory-estimate update, server time", f"{est_median:.1f} ms median, {est_p95:.1f} ms p95",
         "< 50 ms", f"{calls} updates over every method"),
        ("Chat: time to first token", f"{w_first * 1000:.0f} ms", f"plain generate: {p_first * 1000:.0f} ms",
         f"ratio {w_first / p_first:.2f}x"),
        ("Chat: tokens per second", f"{w_rate:.1f}", f"plain generate: {p_rate:.1f}",
         f"ratio {w_rate / p_rate:.2f}x ({w_tokens} vs {p_tokens} tokens, greedy)"),
    ]
    lines = [f"# App speed ({date.today()})", "", f"Machine: {describe()}. Model: SmolLM2-135M-Instruct (fp32).",
             "", "Reproduce: `python bench/app.py`", "",
             "| Measure | Tuneloom | Target / reference | Detail |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
