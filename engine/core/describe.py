"""Read a model's structure from the model itself: build it on the meta device from its config (no
weights are read or allocated) and walk its modules. The result is the pure description of
engine/core/structure.py, cached per config.json.

Heavy (torch, transformers, peft), imported inside the functions: the UI never imports this module's
dependencies; it runs `python -m engine model describe MODEL` in a child process instead
(describe_in_background). `obtain` is what the rest of the engine calls: cached, read here, or read in a child.
"""
from __future__ import annotations

import json
from pathlib import Path

from engine.core import structure as st
from engine.core.structure import ATTENTION, MLP, LayerKind, Linear, Structure

# names of projections that write a block's result back to the residual stream, for the square case
# (input width == output width == hidden) where shapes alone cannot tell q_proj from o_proj
OUTPUT_NAMES = {"o_proj", "out_proj", "dense", "c_proj", "wo", "o", "proj", "down_proj", "fc2", "dense_4h_to_h",
                "w2", "fc_out", "dense_out"}


def structure_of(model: str, trust_remote_code: bool = False) -> Structure:
    """The cached description of `model`, or read it now (and cache it)."""
    found = st.cached(model)
    if found is not None:
        return found
    described = describe(model, trust_remote_code)
    st.store(described)
    return described


def describe(model: str, trust_remote_code: bool = False) -> Structure:
    """Read `model` (alias or local folder with config.json) from its config, on the meta device."""
    path = st.config_path(model)
    if path is None:
        from engine.core.workspace import resolve_model

        raise FileNotFoundError(f"{Path(resolve_model(model)) / 'config.json'} not found: the model's structure is "
                                "read from its config.json (prepare the model or give a folder that holds it)")
    text = path.read_text(encoding="utf-8")
    key = st.config_key(text, st.installed_transformers())
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(path.parent), trust_remote_code=trust_remote_code)
    except Exception as err:  # an unknown model type, a config transformers cannot read
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return unreadable(key, json.loads(text).get("model_type", "?"),
                          f"transformers cannot read its config ({first[:200]})")
    return describe_config(config, key, raw=json.loads(text), trust_remote_code=trust_remote_code)


def describe_config(config, key: str = "", raw: dict | None = None, trust_remote_code: bool = False) -> Structure:
    """Describe the model a transformers config (or a config dict with model_type) builds."""
    config = _as_config(config)
    raw = raw if raw is not None else config.to_dict()
    try:
        model = _build_meta(config, trust_remote_code)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return unreadable(key, getattr(config, "model_type", "?"), "transformers cannot build it as a causal "
                          f"language model ({type(err).__name__}: {first[:200]})")
    return read(model, config, key, raw, trust_remote_code)


def unreadable(key: str, model_type: str, reason: str) -> Structure:
    return Structure(model_type=model_type, architecture="?", layers_prefix="", kinds=(), layer_kind=(), outside={},
                     outside_linears=(), outside_norms=(), embedding="", head="", lm_head="", hidden=0, heads=0,
                     kv_heads=0,
                     head_dim=0, vocab=0, max_positions=0, prefix_width=0, prompt_width=0,
                     unmappable=f"Tuneloom cannot map its methods onto this {model_type} model: {reason}", key=key)


def _as_config(config):
    if isinstance(config, dict):
        from transformers import AutoConfig

        values = dict(config)
        return AutoConfig.for_model(values.pop("model_type", "llama"), **values)
    return config


def _build_meta(config, trust_remote_code: bool = False):
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)


def read(model, config, key: str, raw: dict, trust_remote_code: bool = False) -> Structure:
    """Walk a (meta) model's modules into a Structure."""
    hidden = int(config.hidden_size)
    model_type = getattr(config, "model_type", "?")
    prefix, layers = _decoder_layers(model, getattr(config, "num_hidden_layers", None))
    if layers is None:
        return unreadable(key, model_type, "no list of decoder layers was found in it")
    kinds: list[LayerKind] = []
    layer_kind = []
    for layer in layers:
        kind = _read_layer(layer, hidden)
        if kind not in kinds:
            kinds.append(kind)
        layer_kind.append(kinds.index(kind))
    if not kinds[0].attention:
        return unreadable(key, model_type, "its decoder layers have no attention module Tuneloom recognises")
    inside = prefix + "."
    embedding = _module_name(model, model.get_input_embeddings())
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is model.get_input_embeddings().weight
    head_name = _module_name(model, head) if head is not None else ""
    outside = {n: p.numel() for n, p in model.named_parameters() if not n.startswith(inside)}
    outside_linears, outside_norms = [], []
    for name, module in model.named_modules():
        if name.startswith(inside) or name == prefix or not name:
            continue
        if _is_linear(module) and name != head_name:
            outside_linears.append(_linear(name, module, "", hidden))
        elif _is_norm(module):
            outside_norms.append(name)
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or (hidden // heads if heads else 0))
    experts = max((lin.experts for kind in kinds for lin in kind.linears), default=0)
    dtype = str(raw.get("dtype") or raw.get("torch_dtype") or "")
    return Structure(
        model_type=model_type, architecture=type(model).__name__, layers_prefix=prefix, kinds=tuple(kinds),
        layer_kind=tuple(layer_kind), outside=outside, outside_linears=tuple(outside_linears),
        outside_norms=tuple(outside_norms), embedding=f"{embedding}.weight", head=head_name,
        lm_head="" if tied or head is None else f"{head_name}.weight", hidden=hidden, heads=heads,
        kv_heads=kv_heads, head_dim=head_dim, vocab=int(config.vocab_size),
        max_positions=int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 0)
                          or 2048),
        prefix_width=_peft_token_dim(config, "prefix"), prompt_width=_peft_token_dim(config, "prompt"),
        experts=experts,
        experts_per_token=int(getattr(config, "num_experts_per_tok", 0) or 0) if experts else 0,
        bias_switches=_bias_switches(config, kinds[0], trust_remote_code),
        checkpoint_dtype_bytes=4 if dtype.endswith("float32") else 2, key=key,
    )


def _decoder_layers(model, expected: int | None):
    """(name, module list) of the decoder layers: the ModuleList of `num_hidden_layers` layers with parameters."""
    import torch

    candidates = [(name, module) for name, module in model.named_modules()
                  if isinstance(module, torch.nn.ModuleList) and len(module)
                  and any(True for _ in module[0].parameters())]
    if expected:
        exact = [c for c in candidates if len(c[1]) == expected]
        candidates = exact or candidates
    if not candidates:
        return "", None
    name, layers = max(candidates, key=lambda c: sum(p.numel() for p in c[1].parameters()))
    return name, layers


def _module_name(model, module) -> str:
    return next((n for n, m in model.named_modules() if m is module), "")


def _is_linear(module) -> bool:
    """What peft's all-linear takes: nn.Linear and transformers' Conv1D (GPT-2)."""
    import torch
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, (torch.nn.Linear, Conv1D))


def _is_norm(module) -> bool:
    import torch

    return isinstance(module, (torch.nn.LayerNorm, torch.nn.GroupNorm)) or "norm" in type(module).__name__.lower()


def _shape(module) -> tuple[int, int]:
    """(inputs, outputs) of a Linear or of a Conv1D (whose weight is stored transposed)."""
    import torch

    if isinstance(module, torch.nn.Linear):
        return module.in_features, module.out_features
    return module.weight.shape[0], module.weight.shape[1]


def _role(name: str, inputs: int, outputs: int, hidden: int) -> str:
    if outputs != hidden:
        return "in"
    if inputs != hidden:
        return "out"
    return "out" if name.rsplit(".", 1)[-1] in OUTPUT_NAMES else "in"


def _linear(name: str, module, block: str, hidden: int) -> Linear:
    inputs, outputs = _shape(module)
    import torch

    return Linear(name=name, inputs=int(inputs), outputs=int(outputs), bias=module.bias is not None, block=block,
                  role=_role(name, inputs, outputs, hidden), conv1d=not isinstance(module, torch.nn.Linear))


def _read_layer(layer, hidden: int) -> LayerKind:
    modules = dict(layer.named_modules())
    attention = min((n for n, m in modules.items() if n and "attention" in type(m).__name__.lower()
                     and any(True for _ in m.parameters())), key=len, default="")

    def block_of(name: str) -> str:
        return ATTENTION if attention and (name == attention or name.startswith(attention + ".")) else MLP

    linears = []
    for name, module in modules.items():
        if name and _is_linear(module):
            linears.append(_linear(name, module, block_of(name), hidden))
        for param_name, param in module.named_parameters(recurse=False):
            if param.dim() == 3:  # fused experts: (experts, out, in), or (experts, in, out) when is_transposed
                experts, a, b = (int(x) for x in param.shape)
                inputs, outputs = (a, b) if getattr(module, "is_transposed", False) else (b, a)
                full = f"{name}.{param_name}" if name else param_name
                linears.append(Linear(name=full, inputs=inputs, outputs=outputs, bias=False, block=block_of(name),
                                      role=_role(full, inputs, outputs, hidden), experts=experts))
    mlp = _feed_forward_module([lin.name for lin in linears if lin.block == MLP])
    kind = LayerKind(params={n: p.numel() for n, p in layer.named_parameters()}, linears=tuple(linears),
                     norms=tuple(n for n, m in modules.items() if n and _is_norm(m)), attention=attention, mlp=mlp)
    return LayerKind(**{**kind.__dict__, "adapter_points": _adapter_points(kind)})


def _feed_forward_module(names: list[str]) -> str:
    """The layer's child that holds every feed-forward linear ("mlp"; for a mixture of experts the whole
    sparse block, router and shared expert included), or "" when they sit in the layer itself (OPT)."""
    tops = {n.split(".")[0] for n in names if "." in n}
    return tops.pop() if len(tops) == 1 and all("." in n for n in names) else ""


def _adapter_points(kind: LayerKind) -> dict[str, str]:
    """Where a bottleneck adapter reads each sublayer's output: the projection back to the residual stream,
    or (for a mixture of experts, whose output is a sum over experts) the whole feed-forward block."""
    points = {}
    attention_out = kind.of(ATTENTION, "out")
    if len(attention_out) == 1:
        points[ATTENTION] = attention_out[0].name
    if any(lin.experts for lin in kind.linears):
        if kind.mlp:
            points[MLP] = kind.mlp
    else:
        mlp_out = kind.of(MLP, "out")
        if len(mlp_out) == 1:
            points[MLP] = mlp_out[0].name
    return points


def _peft_token_dim(config, kind: str) -> int:
    """The per-token width peft gives prefix keys/values (GQA-aware) or virtual-token embeddings."""
    try:
        from peft import PrefixTuningConfig, PromptTuningConfig
        from peft.utils.other import _prepare_prompt_learning_config

        made = (PrefixTuningConfig if kind == "prefix" else PromptTuningConfig)(task_type="CAUSAL_LM",
                                                                                num_virtual_tokens=1)
        return int(_prepare_prompt_learning_config(made, config).token_dim)
    except Exception:
        return 0


def _bias_switches(config, kind: LayerKind, trust_remote_code: bool) -> dict[str, tuple[str, ...]]:
    """Config keys that give linear layers a bias when set True (Llama's attention_bias, mlp_bias):
    found by building the model with each such key flipped and looking for the new biases."""
    import copy

    switches = {}
    biased = {lin.name for lin in kind.linears if lin.bias}
    for key, value in config.to_dict().items():
        if "bias" not in key or value is not False:
            continue
        flipped = copy.deepcopy(config)
        setattr(flipped, key, True)
        try:
            model = _build_meta(flipped, trust_remote_code)
        except Exception:
            continue
        prefix, layers = _decoder_layers(model, getattr(flipped, "num_hidden_layers", None))
        if layers is None:
            continue
        added = tuple(n for n, m in layers[0].named_modules()
                      if n and _is_linear(m) and m.bias is not None and n not in biased)
        if added:
            switches[key] = added
    return switches


# ---- reading it: here when this process may import torch, else in a child process ---------------------
# The CLI (engine/__main__.py) and the trainer set this: they import torch anyway. The UI process never
# does (it must not import torch); it reads structures through `python -m engine model describe`.
IN_PROCESS = False

_children: dict[str, object] = {}  # cache key -> the child process reading it (subprocess.Popen)


def obtain(model: str, trust_remote_code: bool = False, wait: bool = True, timeout: float = 300,
           in_process: bool | None = None) -> Structure | None:
    """The structure of `model`: cached, read now (in this process, or in a child: IN_PROCESS unless
    `in_process` says), or None when config.json is missing, or when `wait` is False and a child process
    is still reading it. Raises ValueError when the child could not read it."""
    found = st.cached(model)
    if found is not None or st.config_path(model) is None:
        return found
    if IN_PROCESS if in_process is None else in_process:
        return structure_of(model, trust_remote_code)
    child = describe_in_background(model, trust_remote_code)
    if wait:
        try:
            child.wait(timeout=timeout)
        except Exception:  # subprocess.TimeoutExpired: still reading
            return None
    if child.poll() is None:
        return None
    found = st.cached(model)
    if found is None:
        raise ValueError(f"could not read the structure of {model}: {read_error(model)}")
    return found


def describe_in_background(model: str, trust_remote_code: bool = False):
    """Start (once per config.json content) `python -m engine model describe MODEL`, which caches the
    structure; its messages go to a log file beside the cache (read back when it fails)."""
    import subprocess
    import sys

    from engine.core.workspace import PROJECT_ROOT

    key = st.key_for(model) or model
    child = _children.get(key)
    if child is not None:
        return child  # running, or finished (a failure is not retried for the same config)
    command = [sys.executable, "-m", "engine", "model", "describe", model] + (
        ["--trust-remote-code"] if trust_remote_code else [])
    folder = st.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{key}.log", "w") as log:
        child = subprocess.Popen(command, cwd=str(PROJECT_ROOT), stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
    _children[key] = child
    return child


def read_error(model: str) -> str:
    """The last line a failed describe child wrote (its error), for the message."""
    try:
        log = st.cache_dir() / f"{st.key_for(model) or model}.log"
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return lines[-1] if lines else "the describe process failed"
