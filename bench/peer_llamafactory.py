"""A peer for bench/throughput.py: LLaMA-Factory on the same model, data and settings, measured the same way.

    python bench/peer_llamafactory.py --data FILE --steps 30 --precision fp32      # or --precision bf16

--data: the instruction data, as for bench/throughput.py (the recorded results used alpaca_en_demo.json).

Install. The first run creates its own virtual environment at .cache/peer-llamafactory/venv (never
the project's .venv): `python3 -m venv`, then `pip install torch==2.13.0` (the CPU build this
machine's package index holds; an unpinned torch would pull a multi-GB CUDA build) and then
`pip install llamafactory==0.9.5 torch==2.13.0`. That resolves cleanly on Python 3.11 (pip check:
no broken requirements) to llamafactory 0.9.5 (the newest release), transformers 5.6.0, peft
0.18.1, accelerate 1.11.0, datasets 4.0.0, trl 0.24.0, but it also pulls PyPI's torchvision 0.28.0
and torchaudio 2.11.0, which are CUDA builds: their compiled ops link libtorch_cuda, so with the
CPU torch `import torchvision` fails (and transformers imports it whenever it is installed) and so
does `import torchaudio` (which llamafactory.data.mm_plugin imports unconditionally). Neither is
used by a text-only SFT run, so the install then uninstalls torchvision and deletes torchaudio's
compiled ops (torchaudio/lib/*.so), after which torchaudio imports as its pure-Python part, a case
torchaudio's own loader allows for. Nothing of LLaMA-Factory, transformers, peft or torch is
touched. A marker file records the install; delete the venv to redo it.
Nothing is fetched at run time: HF_HUB_OFFLINE / HF_DATASETS_OFFLINE / TRANSFORMERS_OFFLINE are
set and the model is the local folder.

Settings, as bench/throughput.py gives them to the reference and to Tuneloom: LoRA r16 alpha 32
dropout 0 on every linear layer (`lora_target: all`), batch 4, no gradient accumulation,
`cutoff_len` 512, lr 2e-4 constant, no warm-up, seed 0 (and data_seed 0, as the reference sets),
fp32 or bf16 (mixed: the local model folder is float32 and LLaMA-Factory loads it with
dtype "auto", so bf16 means the Trainer's CPU autocast, as for the reference), CPU only, no
evaluation, no checkpoints during training (LLaMA-Factory always saves the adapter once after
training, outside the timed steps), report_to none, `stage: sft`, `finetuning_type: lora`.
Two of LLaMA-Factory's defaults differ from ours and are set to match:
  * gradient checkpointing: LLaMA-Factory turns it on by default; Tuneloom and the reference
    train without it, so `disable_gradient_checkpointing: true` (pass --gradient-checkpointing to
    measure LLaMA-Factory's default instead; the settings in the result say which was used).
  * template: `template: smollm2` (ChatML, <|im_start|>role\\n...<|im_end|>\\n, the markup of the
    model's own chat template) with `default_system` set to the exact system line the model's
    chat template inserts ("... trained by Hugging Face", LLaMA-Factory's built-in one ends with
    a full stop the model's does not have). With that, a rendered example is character for
    character what the model's template (and so Tuneloom and the reference) renders.
LLaMA-Factory pads, it does not pack: `packing` defaults to false for stage sft, and its collator
pads each batch dynamically to the longest example, rounded up to a multiple of 8. The optimizer
and the rest are the Trainer's defaults, as for the reference; the result records them.

Measured the same way as bench/throughput.py. The training runs in a child process (the peer
venv's Python) whose peak RSS is os.wait4's ru_maxrss. The child is `llamafactory-cli train
CONFIG.yaml` minus the launcher: it calls the same `llamafactory.train.tuner.run_exp()` the CLI
calls for a single-process run, reading the same YAML from sys.argv, with one observe-only
TrainerCallback added (the CLI has no way to add one, and LLaMA-Factory's own trainer_log.jsonl
keeps elapsed time in whole seconds only). That callback records, at the end of each step, the
wall-clock time and the Trainer's `num_input_tokens_seen` with `include_num_input_tokens_seen:
non_padding`, exactly the counter and mode the reference uses; Tuneloom packs, so it has no
padding and counts every token. That is the headline "trained-on tokens/s (padding excluded)":
the non-padding tokens of each batch (prompt and answer), between the end of step 1 and the last
step, as bench/throughput.py computes it. The child also wraps LLaMA-Factory's SFT collator to
count, per batch, the tokens whose label is not -100 (the answer tokens the loss is taken on);
batches are collated in training order, so the k-th collated batch is step k's, and the result
also gives those answer tokens per second, plus steps/s and samples/s (batch 4 in all three
loops, so those compare directly).

Same data, same order. The alpaca file is registered in a dataset_info.json (prompt instruction,
query input, response output), shuffled by nothing but the Trainer's seeded sampler (accelerate's
SeedableRandomSampler, seed 0), which is also what orders the reference's 999 examples: same count,
same seed, same order. The per-example token counts still differ slightly from Tuneloom's encoding:
  * LLaMA-Factory joins instruction and input with one newline, Tuneloom with a blank line
    (prompt side only, affects the few examples with an input);
  * LLaMA-Factory tokenises the prompt and the answer separately and concatenates the ids,
    Tuneloom tokenises the rendered conversation once (can differ by a token at the seam);
  * above cutoff_len LLaMA-Factory truncates prompt and answer in proportion (infer_seqlen),
    Tuneloom keeps the first max_seq_len tokens. The result records how many of the examples
    the peer trained on reached the cutoff.
So the tokens counted are the tokens LLaMA-Factory actually fed, not a re-tokenised estimate.

Writes bench/results/peer_llamafactory_cpu_<precision>.{json,md}; when a
bench/results/throughput_cpu_<precision>.json from bench/throughput.py exists, the markdown puts
its reference and Tuneloom rows beside the peer's (they come from a separate run; its date is
shown). Run logs and LLaMA-Factory's output stay in .cache/peer-llamafactory/run-<precision>/.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT / ".cache" / "peer-llamafactory"
VENV = PEER / "venv"
PY = VENV / "bin" / "python"
TORCH = "torch==2.13.0"
LLAMAFACTORY = "llamafactory==0.9.5"
MARKER = VENV / "tuneloom-peer-installed.json"
# The system line SmolLM2-Instruct's chat template inserts when a conversation has none.
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
DATASET = "bench_alpaca"
PACKAGES = ("llamafactory", "torch", "transformers", "peft", "accelerate", "datasets", "trl", "tokenizers")


# --------------------------------------------------------------------------- parent side

def ensure_venv() -> dict:
    """Create the peer's venv and install into it once; return what is installed."""
    wanted = {"torch": TORCH, "llamafactory": LLAMAFACTORY, "recipe": 2}  # bump when the steps change
    if MARKER.is_file() and json.loads(MARKER.read_text()).get("wanted") == wanted:
        return json.loads(MARKER.read_text())
    PEER.mkdir(parents=True, exist_ok=True)
    if not PY.exists():
        python = shutil.which("python3") or sys.executable
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    pip = [str(PY), "-m", "pip", "install", "--quiet"]
    print(f"peer: installing {TORCH} into {VENV} ...", flush=True)
    subprocess.run(pip + [TORCH], check=True)
    print(f"peer: installing {LLAMAFACTORY} (torch held at {TORCH}) ...", flush=True)
    subprocess.run(pip + [LLAMAFACTORY, TORCH], check=True)
    # PyPI's Linux wheels of torchvision and torchaudio are CUDA builds (their ops libraries link
    # libtorch_cuda / libc10_cuda), so with the CPU torch they fail at import, and transformers
    # imports torchvision whenever it is installed. A text-only SFT needs neither: drop
    # torchvision, and remove torchaudio's compiled ops so it imports as its pure-Python part
    # (torchaudio's own loader skips extensions it does not find); llamafactory.data.mm_plugin
    # imports torchaudio unconditionally but calls it only to load audio files.
    subprocess.run([str(PY), "-m", "pip", "uninstall", "--quiet", "-y", "torchvision"], check=True)
    site = Path(subprocess.run([str(PY), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    for library in (site / "torchaudio" / "lib").glob("*.so"):
        library.unlink()
    subprocess.run([str(PY), "-c", "import llamafactory.data.mm_plugin, llamafactory.train.tuner"], check=True)
    versions = json.loads(subprocess.run(
        [str(PY), "-c", "import importlib.metadata as m, json, sys; "
                        "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))", *PACKAGES],
        check=True, capture_output=True, text=True).stdout)
    info = {"wanted": wanted, "versions": versions, "installed": time.strftime("%Y-%m-%d %H:%M"),
            "fixes": ["pip uninstall torchvision (CUDA build)", "removed torchaudio/lib/*.so (CUDA build)"]}
    MARKER.write_text(json.dumps(info, indent=2))
    return info


def _yaml(values: dict) -> str:
    """Flat YAML; JSON scalars are valid YAML scalars."""
    return "".join(f"{k}: {json.dumps(v)}\n" for k, v in values.items())


def write_config(args, work: Path) -> Path:
    data = Path(args.data).resolve()
    (work / "dataset_info.json").write_text(json.dumps({DATASET: {
        "file_name": str(data), "formatting": "alpaca",
        "columns": {"prompt": "instruction", "query": "input", "response": "output"},
    }}, indent=2))
    cfg = {
        # model
        "model_name_or_path": str(Path(args.model).resolve()),
        "disable_gradient_checkpointing": not args.gradient_checkpointing,
        # method
        "stage": "sft", "do_train": True, "finetuning_type": "lora",
        "lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.0, "lora_target": "all",
        # data
        "dataset": DATASET, "dataset_dir": str(work), "template": "smollm2",
        "default_system": SMOLLM2_SYSTEM, "cutoff_len": args.max_seq_len, "overwrite_cache": True,
        "val_size": 0.0,
        # training
        "output_dir": str(work / "output"), "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": 1, "learning_rate": 2.0e-4, "lr_scheduler_type": "constant",
        "warmup_steps": 0, "max_steps": args.steps, "logging_steps": 1, "seed": 0, "data_seed": 0,
        "bf16": args.precision == "bf16", "fp16": False, "use_cpu": True,
        "save_strategy": "no", "eval_strategy": "no", "report_to": "none", "plot_loss": False,
        "disable_tqdm": True, "include_num_input_tokens_seen": "non_padding",
    }
    path = work / "train.yaml"
    path.write_text(_yaml(cfg))
    return path


def run_measured(command: list[str], log: Path) -> tuple[int, float, int]:
    """(exit code, seconds, peak RSS bytes) of a child process, as bench/throughput.py measures."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env = {**env, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HOME": str(PEER / "hf-home"), "HF_DATASETS_CACHE": str(PEER / "hf-home" / "datasets"),
           "VIRTUAL_ENV": str(VENV),
           "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    started = time.time()
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    return os.waitstatus_to_exitcode(status), time.time() - started, usage.ru_maxrss * 1024


def rate(marks: list, index: int) -> float:
    """Per second of column `index` between the end of step 1 and the last step."""
    first, last = marks[0], marks[-1]
    return (last[index] - first[index]) / (last[1] - first[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-seq-len", type=int, default=512)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--model", default=str(ROOT / ".cache" / "models" / "smollm2-135m-instruct"))
    from throughput import DATA_HELP, require_data  # the same data rule as bench/throughput.py

    parser.add_argument("--data", default=None, metavar="FILE", help=DATA_HELP)
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="keep LLaMA-Factory's default (on); off by default, as Tuneloom and the reference")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "peer_llamafactory_cpu"))
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    require_data(parser, args)
    if args.steps < 2:
        parser.error("--steps must be at least 2 (step 1 is the warm-up)")

    install = ensure_venv()
    work = PEER / f"run-{args.precision}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cfg_path = write_config(args, work)
    measured = work / "measured.json"
    log = work / "train.log"
    print(f"peer: training ({args.steps} steps, {args.precision}); log {log}", flush=True)
    code, wall, rss = run_measured([str(PY), str(Path(__file__).resolve()), "--child", str(cfg_path),
                                    str(measured)], log)
    if code != 0 or not measured.is_file():
        sys.exit(f"LLaMA-Factory training failed (exit {code}); last lines of {log}:\n"
                 + log.read_text()[-4000:])
    m = json.loads(measured.read_text())
    marks = m["marks"]  # [step, time, non-padding tokens seen, answer tokens seen, peak RSS so far]
    steps_per_s = rate(marks, 0)
    last = 10
    losses = [loss for _, loss in m["losses"]]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU",
        "versions": m["versions"], "python": m["python"],
        "installed": install,
        "install": f"python3 -m venv {VENV.relative_to(ROOT)}; pip install {TORCH}; "
                   f"pip install {LLAMAFACTORY} {TORCH}; pip uninstall torchvision; "
                   "rm torchaudio/lib/*.so (PyPI's torchvision/torchaudio are CUDA builds; see the docstring)",
        "settings": {k: v for k, v in vars(args).items() if k not in ("child", "out")},
        "llamafactory_config": cfg_path.read_text(),
        "peer": {
            "tokens_per_second": rate(marks, 2), "answer_tokens_per_second": rate(marks, 3),
            "steps_per_second": steps_per_s, "samples_per_second": steps_per_s * args.batch_size,
            "peak_rss_bytes": rss, "final_loss": sum(losses[-last:]) / len(losses[-last:]),
            "wall_s": wall, "steps": marks[-1][0],
        },
        "observed": m["observed"],
        "losses": m["losses"],
        "marks": {"columns": ["step", "unix time at step end", "non-padding tokens seen", "answer tokens seen",
                              "peak RSS so far (bytes)"], "rows": marks},
    }
    out = Path(args.out + f"_{args.precision}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    text = _markdown(result, _ours(args.precision))
    out.with_suffix(".md").write_text(text)
    print(text)


def _ours(precision: str) -> dict | None:
    path = ROOT / "bench" / "results" / f"throughput_cpu_{precision}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _markdown(r: dict, ours: dict | None) -> str:
    s, p, o = r["settings"], r["peer"], r["observed"]
    gib = 1024 ** 3
    rows = [f"| LLaMA-Factory {r['versions']['llamafactory']} (padded) | {p['tokens_per_second']:.1f} | "
            f"{p['answer_tokens_per_second']:.1f} | {p['steps_per_second']:.3f} | {p['peak_rss_bytes'] / gib:.2f} | "
            f"{p['final_loss']:.4f} |"]
    note = ""
    if ours and ours.get("settings", {}).get("steps") == s["steps"]:
        for key, name in (("reference", "reference (Trainer + peft, padded)"), ("tuneloom", "Tuneloom (packed)")):
            row = ours[key]
            rows.append(f"| {name} | {row['tokens_per_second']:.1f} | – | – | "
                        f"{row['peak_rss_bytes'] / gib:.2f} | {row['final_loss']:.4f} |")
        note = (f"\nReference and Tuneloom rows: `bench/results/throughput_cpu_{s['precision']}.json` "
                f"({ours['date']}), a separate run of `bench/throughput.py`.\n")
    gc = "on (LLaMA-Factory's default)" if s["gradient_checkpointing"] else "off (as Tuneloom and the reference)"
    return f"""# Training throughput peer: LLaMA-Factory on the same data and settings

{r['date']} · {r['machine']} · {', '.join(f'{k} {v}' for k, v in r['versions'].items())}
Settings: {Path(s['model']).name}, LoRA r16 alpha 32 dropout 0 all-linear, {s['steps']} steps, batch \
{s['batch_size']}, cutoff_len {s['max_seq_len']}, {s['precision']}, lr 2e-4 constant, seed 0, data \
`{Path(s['data']).name}`, template `smollm2` with the model's own system line, gradient checkpointing {gc}.

| loop | trained-on tokens/s (padding excluded) | answer tokens/s | steps/s | peak RSS (GiB) | mean loss, last 10 |
|---|---|---|---|---|---|
{chr(10).join(rows)}
{note}
Tokens/s counts the non-padding tokens of each batch between the end of step 1 and the last step \
(the Trainer's `num_input_tokens_seen`, mode `non_padding`, as for the reference); answer tokens are \
those with a label (the loss is taken on them). LLaMA-Factory pads each batch to its longest example \
(rounded up to a multiple of 8); {o['examples']} examples, {o['truncated_examples']} of them at \
cutoff_len (truncated); peak RSS before the first step {o['peak_rss_bytes_at_train_begin'] / gib:.2f} GiB; \
optimizer {o['optim']}, base weights {o['base_dtype']}, LoRA weights {o['lora_dtype']}. \
Wall time {p['wall_s']:.0f} s in all (loading, tokenising, {p['steps']} steps, saving the adapter).

Reproduce: `python bench/peer_llamafactory.py --data {Path(s['data']).name} --steps {s['steps']} \
--precision {s['precision']}\
{' --gradient-checkpointing' if s['gradient_checkpointing'] else ''}`
"""


# --------------------------------------------------------------------------- child side (peer venv)

def child(config: str, out: str) -> None:
    """`llamafactory-cli train CONFIG` (single process) plus an observe-only callback."""
    import importlib.metadata as md

    from llamafactory.data.collator import SFTDataCollatorWith4DAttentionMask
    from llamafactory.train.tuner import run_exp
    from transformers import TrainerCallback

    batches: list[tuple[int, list[int], int]] = []  # per collated batch, in order: (answer tokens, per row, width)
    collate = SFTDataCollatorWith4DAttentionMask.__call__

    def counting(self, features):
        batch = collate(self, features)
        answer = (batch["labels"] != -100).sum(dim=1)
        batches.append((int(answer.sum()), answer.tolist(), int(batch["labels"].shape[1])))
        return batch

    SFTDataCollatorWith4DAttentionMask.__call__ = counting
    marks, losses, observed = [], [], {}
    settings = {k: json.loads(v) for k, v in (line.split(": ", 1) for line in Path(config).read_text().splitlines())}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
            assert args.gradient_accumulation_steps == 1, "one collated batch per step is assumed"
            params = list(model.named_parameters())
            dataset = train_dataloader.dataset if train_dataloader is not None else None
            lengths = [len(x) for x in dataset["input_ids"]] if dataset is not None else []
            observed.update(
                optim=getattr(args.optim, "value", str(args.optim)), weight_decay=args.weight_decay,
                max_grad_norm=args.max_grad_norm, device=str(args.device), bf16=args.bf16,
                gradient_checkpointing=bool(getattr(model, "is_gradient_checkpointing", False)),
                base_dtype=str(next(p.dtype for n, p in params if "lora_" not in n)).replace("torch.", ""),
                lora_dtype=str(next((p.dtype for n, p in params if "lora_" in n), None)).replace("torch.", ""),
                trainable_parameters=sum(p.numel() for _, p in params if p.requires_grad),
                examples=len(lengths), truncated_examples=sum(n >= settings["cutoff_len"] for n in lengths),
                tokens_in_dataset=sum(lengths),
            )
            observed["peak_rss_bytes_at_train_begin"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

        def on_step_end(self, args, state, control, **kwargs):
            now = time.time()
            answer = sum(n for n, _, _ in batches[:state.global_step])
            marks.append((state.global_step, now, int(state.num_input_tokens_seen), answer,
                          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append((state.global_step, logs["loss"]))

    sys.argv = ["llamafactory-cli", config]  # what `llamafactory-cli train CONFIG` leaves for run_exp()
    run_exp(callbacks=[Clock()])
    # per step: answer tokens of each row (to check the order against another loop) and padded width
    observed["batches"] = [{"answer_tokens": rows, "width": width} for _, rows, width in batches[:len(marks)]]
    Path(out).write_text(json.dumps({
        "marks": marks, "losses": losses, "observed": observed,
        "versions": {p: md.version(p) for p in PACKAGES}, "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
