"""Finding English left in Chinese text (tests/test_ui_language.py, tests/test_e2e_zh.py).

What may stay: names (of models, files, formats, products, settings and their values: code), units, numbers.
Code-like tokens (paths, dotted keys, snake_case, anything with a digit) are names by their form; the rest are
listed in ALLOWED. Everything else of two or more Latin letters is English a Chinese reader should not meet.
"""
from __future__ import annotations

import re

ALLOWED = {
    # formats, file types, units and APIs
    "JSON", "JSONL", "CSV", "Parquet", "Arrow", "UTF", "GiB", "MB", "KB", "GB", "API", "OpenAI", "ID", "URL",
    "GGUF", "Modelfile", "README", "YAML", "HTTP", "CUDA", "GPU", "CPU", "AMX", "RAM", "FSDP", "DeepSpeed", "ZeRO",
    "TensorBoard", "MLflow", "W&B", "ROUGE-L", "BLEU", "EWC", "Fisher", "KL", "NF4", "QR", "datasets", "presets",
    # products and projects
    "Language", "English", "Tuneloom", "Gradio", "Python", "torch", "Hub", "Hugging", "Face", "HuggingFaceTB",
    "SmolLM2", "PyPI", "AMD", "EPYC", "Intel", "Xeon", "RSS",
    "Ollama", "LM", "Studio", "llama.cpp", "Llama", "LlamaForCausalLM", "TRL", "Anthropic", "HH", "SLiC", "Excel",
    # fine-tuning methods, optimizers, objectives and precisions (the names the settings take)
    "LoRA", "QLoRA", "DoRA", "rsLoRA", "LoRA+", "AdaLoRA", "LoHa", "LoKr", "OFT", "BOFT", "VeRA", "IA3", "BitFit",
    "PiSSA", "OLoRA", "DPO", "ORPO", "SimPO", "KTO", "SFT", "AdamW", "Adam", "SGD", "Adafactor", "Lion",
    "bf16", "fp16", "fp32", "top-k", "top-p", "Top-k", "Top-p", "do_sample", "logits", "logit", "alpha", "beta",
    "gamma", "dropout", "pid", "torch.compile", "accelerate", "re",
}


def english_words(text: str, allowed=frozenset()) -> list[str]:
    """Latin words of two letters or more in `text` that are neither code-like nor in ALLOWED nor in `allowed`.

    A token is a run of Latin letters, digits and code punctuation; one holding a digit, a dot, an underscore, a
    slash, a colon, an equals sign or brackets is code (a path, a file, a key, hub:owner/name, a=b)."""
    found = []
    for token in re.findall(r"[A-Za-z0-9_.'/+&:=\[\]{}|-]+", text):
        if re.search(r"[0-9_./:=\[\]{}|]", token):
            continue
        found += [w for w in re.findall(r"[A-Za-z][A-Za-z'+&-]*[A-Za-z+]", token)
                  if w not in ALLOWED and w not in allowed]
    return found
