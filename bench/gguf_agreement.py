"""GGUF export of a run, checked as a user would: each file loaded back (transformers' GGUF loader) and
compared with the merged model on prompts rendered with the chat template.

    python bench/gguf_agreement.py RUN_DIR [--types f16,q8_0]
Writes bench/results/gguf_agreement_cpu.{md,json} (the export itself goes to a temporary folder).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--types", default="f16,q8_0")
    args = parser.parse_args()
    from bench.machine import describe
    from engine.inference.gguf import CHECK_FILE, export_gguf

    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        out = export_gguf(Path(args.run_dir), Path(tmp) / "gguf", args.types.split(","))
        checks = json.loads((out / CHECK_FILE).read_text())
        sizes = {p.name: p.stat().st_size for p in out.glob("*.gguf")}
        modelfile = (out / "Modelfile").read_text()
    seconds = time.time() - started
    record = {"run": args.run_dir, "date": time.strftime("%Y-%m-%d"), "machine": describe(), "seconds": round(seconds),
              "sizes": sizes, "checks": checks, "modelfile": modelfile}
    target = ROOT / "bench" / "results" / "gguf_agreement_cpu"
    target.with_suffix(".json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
    lines = ["# GGUF export checked by loading it back", "",
             f"`python bench/gguf_agreement.py RUN --types {args.types}` on `{Path(args.run_dir).name}` "
             "(the DPO run of bench/results/dpo_polite_cpu.md, LoRA merged into SmolLM2-135M-Instruct); "
             f"{record['date']}; "
             f"{record['machine']}; {seconds:.0f} s in all (merge, conversions, checks).", "",
             "Each GGUF (llama.cpp's convert_hf_to_gguf.py) is loaded back with transformers' GGUF loader and compared "
             f"with the merged model on {checks[0]['prompts']} chat prompts: the largest logit difference, the share "
             "of prompt positions whose most likely next token agrees, and greedy replies of "
             f"{checks[0]['max_new_tokens']} new tokens.", "",
             "| file | size | max abs logit diff | next-token agreement | identical greedy replies "
             "| same tokenization |",
             "|---|---|---|---|---|---|",
             *[f"| {c['gguf']} | {sizes[c['gguf']] / 2**20:,.1f} MB | {c['max_abs_logit_diff']:.4f} | "
               f"{c['top1_agreement']:.2%} | {c['identical_greedy_replies']}/{c['prompts']} | "
               f"{c['identical_tokenization']}/{c['prompts']} |" for c in checks], "",
             "Replies (merged model / Q8_0 GGUF):", "",
             *[f"- {r['prompt']} → {r['reply']!r} / {r['gguf_reply']!r}" for r in checks[-1]["replies"]], "",
             "The Modelfile written beside them:", "", "```", modelfile.strip(), "```"]
    target.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
