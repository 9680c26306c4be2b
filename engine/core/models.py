"""Load tokenizers and models; prepare the embedded default model from its GGUF file once.

Heavy (torch, transformers): only the trainer, the chat worker and the CLI import this.
"""
from __future__ import annotations

import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from engine.core.errors import ModelNotFound
from engine.core.model_source import gguf_path, is_local_path, model_problems
from engine.core.registry import TEMPLATES
from engine.core.workspace import ALIASES, PUBLISHED_DTYPES, is_prepared, resolve_model, stored_dtype


def prepare_model(model: str, log=print) -> Path:
    """Make sure `model` is loadable. An alias is converted once from its embedded GGUF file into a plain
    HF folder in the dtype it was published in (SmolLM2: bf16, half the disk and load time of fp32); a
    folder an older Tuneloom prepared in fp32 is re-stored once, in place."""
    target = Path(resolve_model(model))
    if model not in ALIASES:
        # a folder is loaded as it is (a tokenizer folder has no config.json); a missing folder or a Hub id
        # that is neither cached nor reachable gets one message that says why
        problems = [] if is_local_path(model) and target.is_dir() else model_problems(model)
        if problems:
            raise ModelNotFound(problems[0].removeprefix("model: "))
        return target
    if is_prepared(model):
        return target
    with _preparing(target):
        if is_prepared(model):  # another process prepared it while this one waited
            return target
        import torch

        dtype = PUBLISHED_DTYPES[model]
        if (target / "config.json").is_file():
            log(f"Re-storing {model} in {dtype} (one time; it was prepared in {stored_dtype(target)})...")
            plain, tokenizer = _load_plain(target)
        else:
            log(f"Preparing {model} from {gguf_path().name} (one time, about 30 s)...")
            plain, tokenizer = _convert_gguf(gguf_path())
        _save_in_place(plain.to(getattr(torch, dtype)), tokenizer, target)
    log(f"Prepared {model} at {target} ({dtype})")
    return target


def _convert_gguf(source: Path):
    """The GGUF file's weights de-quantised into a plain float model (fp32), and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are de-quantised: a plain float model now
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config.pad_token_id = tokenizer.pad_token_id
    return plain, tokenizer


def _load_plain(folder: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32), AutoTokenizer.from_pretrained(
        str(folder))


def _save_in_place(model, tokenizer, target: Path) -> None:
    """Write the folder beside `target`, then swap it in: a half-written folder is never mistaken for a model,
    and a process still reading the old files keeps them (unlinked files live while they are open)."""
    tmp, old = target.with_name(target.name + ".partial"), target.with_name(target.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _preparing(target: Path):
    """One preparation of a model folder at a time, across processes (the app, trainers, tests)."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(f".{target.name}.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def load_tokenizer(model: str, trust_remote_code: bool = False, template: str = "auto"):
    """The model's tokenizer with a chat template: the model's own (`auto`; ChatML when it has none) or a
    named one from the template registry (engine/data/templates.py)."""
    from transformers import AutoTokenizer

    path = prepare_model(model, log=lambda m: print(m, file=sys.stderr))
    tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    if template != "auto" or not tokenizer.chat_template:
        tokenizer.chat_template = TEMPLATES.get("chatml" if template == "auto" else template).jinja
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def torch_dtype(precision: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)


def cast_parameters(model, dtype: str) -> int:
    """Store every floating-point parameter of `model` in `dtype` (pure half precision: the added adapter
    weights too, which peft creates in fp32). Quantised storage is not floating point and stays as it is;
    buffers (e.g. rotary frequencies, kept in fp32 on purpose) are left alone. Returns how many were cast."""
    target, cast = torch_dtype(dtype), 0
    for param in model.parameters():
        if param.is_floating_point() and param.dtype != target:
            param.data = param.data.to(target)
            cast += 1
    return cast


def load_model(model: str, quantize: str | None = None, dtype: str = "fp32", trust_remote_code: bool = False,
               device_map=None, quant_options: dict | None = None, head: str = "causal_lm"):
    """A causal LM from safetensors only; `quantize` is None, '4bit' or '8bit' (bitsandbytes), with
    `quant_options` for quantization_config (quant_type, double_quant, compute_dtype). `head`
    "sequence_classification" loads it with one score output instead (a reward model, train.objective reward)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    path = prepare_model(model, log=lambda m: print(m, file=sys.stderr))
    require_safetensors(Path(path))
    kwargs = dict(dtype=torch_dtype(dtype), trust_remote_code=trust_remote_code, use_safetensors=True)
    if quantize:
        kwargs["quantization_config"] = quantization_config(quantize, **(quant_options or {}))
    if device_map is not None:
        kwargs["device_map"] = device_map
    if head == "sequence_classification":
        model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    if quantize:
        release_checkpoint_mapping(model)
        keep_training_layout(model)
    return model


def keep_training_layout(model) -> int:
    """Keep every 4-bit weight in the layout training needs, for the whole run; returns how many layers it set.

    bitsandbytes (0.49+) repacks a Linear4bit's weights into an AVX512-BF16 inference layout the first time
    the layer runs in eval mode without gradients on a CPU that has AVX512-BF16 (the trainer's packed-attention
    check, every evaluation). From then on every matmul, backward included, goes through `gemv_4bit`, which
    has no autograd kernel: torch warns "an autograd kernel was not registered", LoRA gradients of the first
    layers come out missing or wrong, and layers with biases crash. The layer's own switch
    (`support_avx512bf16_for_cpu`) turns the repack off; a layer already repacked is converted back with
    bitsandbytes' inverse conversion. Quantised models are loaded for training only (chat and export load
    the float base), so nothing loses the faster inference layout."""
    count = 0
    for module in model.modules():
        if not hasattr(module, "support_avx512bf16_for_cpu"):
            continue
        module.support_avx512bf16_for_cpu = False
        weight = module.weight
        if getattr(getattr(weight, "quant_state", None), "packing_format_for_cpu", False):
            from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

            weight.data, weight.quant_state = _convert_weight_packed_for_cpu_inverse(weight.data, weight.quant_state)
        count += 1
    return count


def release_checkpoint_mapping(model) -> int:
    """Copy the CPU tensors a quantised model still reads from the checkpoint's memory map.

    transformers maps the safetensors file and leaves unquantised tensors (embeddings, norms) as
    views into it, which keeps the whole file mapped: for QLoRA on CPU the full-precision weights
    stayed resident beside their 4-bit copies (+400 MiB on the default model, measured). Copying the
    few tensors that are not quantised lets the mapping go. Tied weights are one Parameter: copied once.
    Returns how many tensors were copied."""
    seen, copied = set(), 0
    for module in model.modules():
        for tensor in [*module._parameters.values(), *module._buffers.values()]:
            if tensor is None or id(tensor) in seen or tensor.device.type != "cpu":
                continue
            seen.add(id(tensor))
            if type(tensor).__name__ in ("Params4bit", "Int8Params"):  # bitsandbytes' own storage
                continue
            tensor.data = tensor.data.clone()
            copied += 1
    return copied


def require_safetensors(folder: Path) -> None:
    """Refuse pickle-based weights (.bin/.pt/.pth can run code when loaded) with a clear message."""
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
    if pickled:
        raise ValueError(f"{folder} has only PyTorch pickle weights ({', '.join(pickled)}); Tuneloom loads "
                         "safetensors only, because loading a pickle can run arbitrary code. Convert the model "
                         "where you trust it: AutoModelForCausalLM.from_pretrained(folder).save_pretrained(out)")


def quantization_config(kind: str, **options):
    import torch
    from transformers import BitsAndBytesConfig

    if kind == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type=options.get("quant_type", "nf4"),
        bnb_4bit_use_double_quant=options.get("double_quant", True),
        bnb_4bit_compute_dtype=torch_dtype(options.get("compute_dtype", "bf16")) if kind == "4bit" else torch.float32,
    )
