"""Peak training memory per device, from config.json and the run config alone (no torch, no weights).

The model is written out component by component, with sources, in docs/memory.md. In short:

    static  = framework + frozen weights + trainable weights (+ master copies) + optimizer states
              (+ DDP gradient buckets)
    phase 1 (end of forward / start of backward)
            = static + activations kept for backward + autocast weight copies + logits/loss peak
              + gradients that already exist (all of them with gradient accumulation > 1, else the
              ones the loss produces at once) + transient buffers of one layer
    phase 2 (optimizer step) = static + all gradients + the optimizer's temporaries
    peak    = max(phase 1, phase 2); total = peak + allocator allowance

Everything is generic over the method registry: a method contributes only through its traits
(count_trainable, quantize, trains_base_weights, virtual_tokens, grad_layers and, for adapters,
the modules its `target_modules` parameter selects). Import-light: the UI imports this module.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from engine.arch import Arch

MiB = 2**20
GiB = 2**30

# Components in the order the UI stacks them, with the labels it shows.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("framework", "Framework / CUDA context"),
    ("frozen_weights", "Frozen weights"),
    ("trainable_weights", "Trainable parameters"),
    ("master_weights", "Master weights (fp32)"),
    ("weight_copies", "Half-precision weight copies (autocast)"),
    ("gradients", "Gradients"),
    ("optimizer", "Optimizer states"),
    ("activations", "Activations"),
    ("logits_loss", "Logits and loss"),
    ("teacher", "Teacher model (distillation)"),
    ("temporary", "Temporary buffers"),
    ("fragmentation", "Allocator allowance"),
)
LABELS = dict(COMPONENTS)

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}

# Optimizer state bytes per trainable parameter, as a multiple of the parameter's own bytes
# ("rel") plus fixed bytes ("abs"); "temp": the step's temporary, in parameter-sized copies.
# Sources: torch.optim source (state dicts), bitsandbytes docs (8-bit blockwise states, block 256),
# transformers.Adafactor (factored second moment, no first moment by default). HF's "sgd" is
# torch.optim.SGD with momentum 0: no state; "sgd_momentum" keeps one buffer.
OPTIMIZERS: dict[str, dict] = {
    "adamw": {"rel": 2.0, "abs": 0.0, "temp": 1.0, "label": "AdamW (2 fp32 moments)"},
    "adamw_8bit": {"rel": 0.0, "abs": 2 * (1 + 4 / 256), "temp": 0.0, "label": "8-bit AdamW"},
    "paged_adamw_8bit": {"rel": 0.0, "abs": 2 * (1 + 4 / 256), "temp": 0.0, "paged": True,
                         "label": "paged 8-bit AdamW"},
    "sgd": {"rel": 0.0, "abs": 0.0, "temp": 0.0, "label": "SGD (no momentum)"},
    "sgd_momentum": {"rel": 1.0, "abs": 0.0, "temp": 0.0, "label": "SGD with momentum"},
    "adagrad": {"rel": 1.0, "abs": 0.0, "temp": 1.0, "label": "Adagrad"},
    "rmsprop": {"rel": 1.0, "abs": 0.0, "temp": 1.0, "label": "RMSprop"},
    # factored: rows + columns per matrix; ~1/8 of the parameters for rank-8 adapters, far less for
    # full matrices; 1/8 is the conservative end
    "adafactor": {"rel": 1 / 8, "abs": 0.0, "temp": 1.0, "label": "Adafactor (factored)"},
}

SHARDING = ("none", "ddp", "zero1", "zero2", "zero3", "fsdp")

# Quantised storage, bytes per parameter (bitsandbytes): NF4/FP4 pack two weights per byte with one
# absmax per 64-weight block (fp32, or 8-bit + one fp32 per 256 blocks with double quantisation);
# LLM.int8 stores int8 weights plus one fp32 scale per output row.
NF4_BLOCK, NF4_DQ_BLOCK = 64, 256

# Fixed costs. CPU: measured here (see bench/results/memory_accuracy_cpu.md): RSS of importing torch,
# transformers, peft, datasets and accelerate, the tokenizer and the Trainer, above the trainer's
# baseline. CUDA: the CUDA context of torch 2.x with lazy module loading on an H100 (~500 MiB,
# PyTorch forum/docs; see docs/memory.md) plus cuBLAS workspaces.
CPU_FRAMEWORK_BYTES = 560 * MiB
CUDA_CONTEXT_BYTES = 512 * MiB
CUBLAS_WORKSPACE_BYTES = 32 * MiB
CUDA_ALLOCATOR_ALLOWANCE = 0.10  # caching allocator: reserved above allocated (fragmentation)
# Share of the activations the CPU allocator keeps resident above the live tensors at the peak, per
# allocator the trainer runs on (engine/allocator.py), fitted on the matrix of real runs
# (bench/results/memory_accuracy_cpu.md with tcmalloc, memory_accuracy_cpu_system_malloc.md with
# glibc). jemalloc behaved like tcmalloc in bench/results/allocator_cpu.md.
CPU_HEAP_RETENTION = {"system": 0.6, "tcmalloc": 0.05, "jemalloc": 0.05}
FUSED_LOSS_CHUNK = 1024  # rows per chunk in engine/loss.py


@dataclass
class Estimate:
    total_bytes: int  # what the device must have (peak + allocator allowance)
    peak_bytes: int  # what the trainer's peak_memory_bytes should read
    components: dict[str, int]
    trainable_params: int
    total_params: int
    phase: str  # which moment of the step is the peak
    device: str
    world_size: int = 1
    sharding: str = "none"
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "total_bytes": self.total_bytes, "peak_bytes": self.peak_bytes,
            "components": dict(self.components),
            "labels": {k: LABELS[k] for k in self.components},
            "trainable_params": self.trainable_params, "total_params": self.total_params,
            "phase": self.phase, "device": self.device, "world_size": self.world_size,
            "sharding": self.sharding, "notes": list(self.notes), "details": dict(self.details),
        }


# ---------------------------------------------------------------------------------------------
def _method_and_params(cfg):
    from engine.methods import METHODS

    method = METHODS.get(cfg.method.name)
    params = {**method.defaults(), **(cfg.method.params or {})}
    return method, params


def _adapted_modules(arch: Arch, params: dict) -> dict[str, int]:
    """Linear module kinds an added-parameter method attaches to -> how many layers have each."""
    spec = params.get("target_modules")
    if not isinstance(spec, str) or not spec.strip():
        return {}
    from engine.methods import targets

    try:
        names = targets.matched(spec, arch)
    except Exception:
        return {}
    found: dict[str, int] = {}
    for name in names:
        kind = name.rsplit(".", 1)[1]
        found[kind] = found.get(kind, 0) + 1
    return found


def _precision(cfg, device: str) -> str:
    precision = cfg.train.precision
    if precision == "auto":  # as engine.train.resolve_precision: bf16 on a (recent) GPU, fp32 on CPU
        return "bf16" if device == "cuda" else "fp32"
    return precision


def _weight_bytes(arch: Arch, quantize: str | None, dtype_bytes: int, double_quant: bool = True) -> dict:
    """Frozen storage of the whole model: decoder linears possibly quantised; embeddings, lm_head,
    norms and biases stay in the load dtype (transformers never quantises them)."""
    linear = arch.layers * sum(i * o for i, o in arch.linear_shapes().values())
    other = arch.total_params - linear
    if quantize == "4bit":
        per = 0.5 + (1 + 4 / NF4_DQ_BLOCK) / NF4_BLOCK if double_quant else 0.5 + 4 / NF4_BLOCK
        qbytes = linear * per
    elif quantize == "8bit":
        qbytes = arch.layers * sum(i * o + 4 * o for i, o in arch.linear_shapes().values())
    else:
        qbytes = linear * dtype_bytes
    return {"linear": qbytes, "other": other * dtype_bytes, "linear_params": linear, "other_params": other}


def estimate(arch, cfg=None, device: str = "cuda", world_size: int = 1, sharding: str = "none",
             attention: str = "sdpa", weight_dtype: str | None = None, framework_bytes: int | None = None,
             cpu_allocator: str | None = None) -> Estimate:
    """Peak memory per device for training `cfg` on `arch`.

    `arch` may also be a RunConfig (then the model's config.json is read): estimate(cfg) works.
    weight_dtype: the dtype the base weights are loaded in; by default what Tuneloom's trainer does
    (Method.load_dtype: frozen weights in the compute dtype, trained base weights in fp32).
    attention: sdpa (default; flash/memory-efficient kernels, no score matrix), flash, or eager.
    cpu_allocator: the malloc a CPU trainer runs on (engine/allocator.py); by default the one a trainer
    started now would get.
    """
    if cfg is None:
        cfg, arch = arch, arch_for_config(arch)
    if sharding not in SHARDING:
        raise ValueError(f"sharding {sharding!r} is not one of {', '.join(SHARDING)}")
    if world_size < 1:
        raise ValueError("world_size must be at least 1")
    if world_size == 1 and sharding != "none":
        sharding = "none"
    method, params = _method_and_params(cfg)
    t = cfg.train
    notes: list[str] = []
    N = world_size
    precision = _precision(cfg, device)
    p = DTYPE_BYTES[precision]  # compute (activation) dtype
    weight_dtype = weight_dtype or method.load_dtype(precision)
    wb = DTYPE_BYTES.get(weight_dtype, 4)  # stored weight dtype
    autocast = p < wb  # half-precision compute over fp32 weights
    quantize = method.quantize(params)
    trainable = int(method.count_trainable(arch, params))
    total_params = (arch.total_params + (0 if method.trains_base_weights else trainable)
                    + method.count_added_frozen(arch, params))
    deepspeed = sharding in ("zero1", "zero2", "zero3")
    if deepspeed and precision != "fp32" and not quantize:
        wb = 2  # DeepSpeed keeps half-precision model weights and fp32 master weights
        autocast = False

    # ---- weights ---------------------------------------------------------------------------
    weights = _weight_bytes(arch, quantize, wb, bool(params.get("double_quant", True)))
    frozen_w = weights["linear"] + weights["other"]
    if method.trains_base_weights:
        # trainable base weights keep their dtype (never quantised); subtract them from the frozen store
        trainable_w = trainable * wb
        frozen_w = max(0.0, frozen_w - trainable_w)
    else:
        trainable_w = trainable * 4  # peft creates adapter weights in fp32 (autocast_adapter_dtype)
    param_bytes = trainable_w / trainable if trainable else 4
    master = 0.0
    if wb < 4 and precision != "fp32" and (deepspeed or sharding == "fsdp"):
        master = trainable * 4
    shard_params = sharding in ("zero3", "fsdp")
    if shard_params:
        frozen_w /= N
        trainable_w /= N
    shard_states = sharding in ("zero1", "zero2", "zero3", "fsdp")
    shard_grads = sharding in ("zero2", "zero3", "fsdp")
    if shard_states:
        master /= N

    # ---- gradients and optimizer ------------------------------------------------------------
    grad_bytes = 2 if deepspeed and precision != "fp32" else param_bytes
    grads_all = trainable * grad_bytes / (N if shard_grads else 1)
    opt = OPTIMIZERS.get(t.optimizer, OPTIMIZERS["adamw"])
    state_bytes = 4 if master else param_bytes  # optimizer states and its step temporary follow the masters
    opt_state = trainable * (opt["rel"] * state_bytes + opt["abs"])
    opt_state /= N if shard_states else 1
    opt_temp = opt["temp"] * trainable * state_bytes / (N if shard_states else 1)
    if device == "cpu" and opt["temp"]:
        # torch uses the for-each (one big temporary) path on CUDA only; on CPU a parameter at a time
        largest = arch.embedding_params if method.trains_base_weights else max(
            (i * o for i, o in arch.linear_shapes().values()), default=0)
        opt_temp = min(opt_temp, opt["temp"] * largest * state_bytes)
    if opt.get("paged"):
        notes.append("paged optimizer states live in unified memory and can spill to CPU RAM under pressure")
    ddp_buckets = grads_all if sharding == "ddp" or (N > 1 and sharding == "none") else 0.0
    if N > 1 and sharding == "none":
        sharding = "ddp"

    # ---- tokens ----------------------------------------------------------------------------
    virtual = int(method.virtual_tokens(params) or 0)
    packing = t.packing and virtual == 0
    seq = t.max_seq_len + virtual
    tokens = t.batch_size * seq  # worst case: every example fills max_seq_len
    masked = packing or t.batch_size > 1  # SDPA then gets an explicit mask (and expands GQA heads)

    # ---- activations ------------------------------------------------------------------------
    h, i, L = arch.hidden, arch.intermediate, arch.layers
    q = arch.heads * arch.head_dim
    kv = arch.kv_heads * arch.head_dim
    kv_saved = q if masked or attention == "eager" else kv  # repeat_kv when a mask is given
    r = wb  # residual stream and norms run in the weights' dtype (fp32 under autocast)
    grad_layers = max(0, min(L, int(method.grad_layers(arch, params))))
    base_trainable = method.trains_base_weights
    adapted = _adapted_modules(arch, params) if not base_trainable else {}
    shapes = arch.linear_shapes()

    def layer_bytes_per_token(adapter_layer: bool) -> float:
        """Bytes saved for backward by one decoder layer, per token (see docs/memory.md)."""
        # both RMSNorms keep their input upcast to fp32 (HF LlamaRMSNorm computes in fp32, whatever
        # the residual dtype; with fp32 weights that upcast is the residual itself)
        total = 2 * h * 4
        if base_trainable:
            total += 2 * h * r  # normalised values kept for the norm weights' gradient
        attention_part = (q + 2 * kv_saved) * p + q * p + arch.heads * 4  # q, k, v, output, logsumexp
        if attention == "eager":
            attention_part += arch.heads * seq * (p + p)  # scores/probabilities per query row
        total += attention_part
        total += 3 * i * p  # gate output, SiLU output, up output (SwiGLU)
        # inputs kept by linear layers whose weights (base or adapter) need a gradient
        groups = {"attn_in": ("q_proj", "k_proj", "v_proj"), "o_in": ("o_proj",),
                  "mlp_in": ("gate_proj", "up_proj"), "down_in": ("down_proj",)}
        for names in groups.values():
            width = shapes[names[0]][0]
            savers = [n for n in names if base_trainable or (adapter_layer and n in adapted)]
            if not savers:
                continue
            if names[0] in ("q_proj", "gate_proj"):
                # input comes from an fp32 norm: autocast casts it once per linear (own copy each)
                total += width * (p * len(savers) if autocast else r)
            else:
                total += width * p
            if not base_trainable and float(params.get("dropout", 0) or 0) > 0:
                total += len(savers) * width * (p + 1)  # dropout output + its mask, per adapter
        return total

    per_layer = layer_bytes_per_token(bool(adapted))
    extra = tokens * (h * r + h * 4)  # embedding output + final norm input (fp32 upcast)
    if t.gradient_checkpointing and grad_layers:
        # each checkpointed layer keeps its input; one layer at a time is recomputed in backward
        activations = grad_layers * tokens * h * r + tokens * per_layer + extra
    else:
        activations = grad_layers * tokens * per_layer + extra
    if grad_layers == 0:
        activations = 0.0
    # attention mask SDPA/eager get when padding (bool, batch x seq x seq), or eager when packing
    # (tokens x tokens); packed rows on SDPA/flash are attended per example without a mask
    # (engine/packed_attention.py). transformers builds it as float32 on CPU, two copies kept.
    if packing:
        mask = tokens * tokens if attention == "eager" else 0
    else:
        mask = t.batch_size * seq * seq if masked else 0
    mask *= 8 if device == "cpu" else 1

    # ---- autocast weight copies -------------------------------------------------------------
    copies = 0.0
    if autocast:
        unquantised_linear_per_layer = 0 if quantize else sum(a * b for a, b in shapes.values())
        layers_kept = 1 if t.gradient_checkpointing else grad_layers
        copies = unquantised_linear_per_layer * p * max(layers_kept, 1)
        copies += arch.embedding_params * p  # lm_head cast for the logits
        if shard_params:
            copies /= N

    # ---- logits and loss --------------------------------------------------------------------
    V = arch.vocab
    lm_head_trainable = base_trainable and trainable >= arch.embedding_params  # full-style methods
    head_grad = arch.embedding_params * param_bytes if lm_head_trainable else 0.0
    fused = t.fused_loss and virtual == 0
    if fused:
        chunk = min(tokens, FUSED_LOSS_CHUNK)
        loss_peak = (tokens * h * 4  # selected hidden rows
                     + tokens * h * 4  # gradient of the hidden states, computed in forward
                     + chunk * V * (4 + 4 + (p if p < 4 else 0)) + chunk * h * p)
        loss_kept = tokens * h * 4 + head_grad
    else:
        # at the start of backward: logits (compute dtype) and their fp32 upcast (the same tensor in
        # fp32), log-softmax output, and the gradients of log-softmax and of the logits. Measured on
        # CPU (prefix tuning, 2,128 x 49,152 fp32): 4 vocab-sized fp32 tensors at the peak
        loss_peak = tokens * V * (p + 4 + 4 + 4 + 4 if p < 4 else 4 * 4)
        loss_kept = tokens * V * 4
    # ---- temporaries ------------------------------------------------------------------------
    largest_w = max(a * b for a, b in shapes.values())
    temp = mask + tokens * max(i, h) * p * 2  # one layer's backward working set
    if quantize:
        temp += largest_w * p  # a linear's weight dequantised for its matmul
    if shard_params:
        # the gathered full parameters of about two layers (current + prefetched)
        temp += 2 * (arch.layer_params() * wb)

    # ---- phases -----------------------------------------------------------------------------
    if device == "cpu":
        framework = CPU_FRAMEWORK_BYTES if framework_bytes is None else framework_bytes
    else:
        framework = CUDA_CONTEXT_BYTES + CUBLAS_WORKSPACE_BYTES if framework_bytes is None else framework_bytes
    static = framework + frozen_w + trainable_w + master + opt_state + ddp_buckets
    grads_phase1 = grads_all if t.gradient_accumulation > 1 else min(head_grad, grads_all)
    phase1 = {"activations": activations, "weight_copies": copies,
              "logits_loss": max(loss_peak, loss_kept), "gradients": grads_phase1, "temporary": temp}
    phase2 = {"activations": 0.0, "weight_copies": 0.0, "logits_loss": 0.0, "gradients": grads_all,
              "temporary": opt_temp}
    first_is_peak = sum(phase1.values()) >= sum(phase2.values())
    dynamic = phase1 if first_is_peak else phase2
    components = {
        "framework": framework, "frozen_weights": frozen_w, "trainable_weights": trainable_w,
        "master_weights": master, "weight_copies": dynamic["weight_copies"],
        "gradients": dynamic["gradients"] + ddp_buckets, "optimizer": opt_state,
        "activations": dynamic["activations"], "logits_loss": dynamic["logits_loss"],
        "temporary": dynamic["temporary"], "teacher": _teacher_bytes(cfg, device, notes),
    }
    peak = sum(components.values())
    if device == "cuda":
        # the caching allocator reserves more than it hands out; the trainer's measured peak
        # (max_memory_allocated + context) does not include this
        components["fragmentation"] = CUDA_ALLOCATOR_ALLOWANCE * (peak - framework)
    else:
        # malloc keeps some freed memory resident: glibc's heap keeps the saved activations freed in
        # backward while gradient buffers grow it (engine/allocator.py says why). RSS includes it, so
        # it is part of peak_bytes on CPU.
        if cpu_allocator is None:
            from engine.allocator import planned

            cpu_allocator = planned()[0]
        components["fragmentation"] = CPU_HEAP_RETENTION.get(cpu_allocator, CPU_HEAP_RETENTION["system"]) \
            * dynamic["activations"]
        peak += components["fragmentation"]
        if cpu_allocator == "system":
            notes.append("the trainer runs on the system malloc, which keeps freed memory resident: a higher "
                         "peak and a less precise estimate (on Linux: apt-get install libtcmalloc-minimal4)")
    phase = "forward/backward" if first_is_peak else "optimizer step"
    if device == "cpu" and quantize:
        # loading: transformers maps the whole checkpoint file (its saved dtype) while it quantises.
        # The trainer lets the mapping go once loaded (engine/models.release_checkpoint_mapping), but
        # the process's peak resident memory keeps the moment; with a small batch it is the peak
        loading = framework + frozen_w + arch.total_params * arch.checkpoint_dtype_bytes
        if loading > peak:
            components = {k: 0.0 for k, _ in COMPONENTS}
            components.update(framework=framework, frozen_weights=frozen_w,
                              temporary=arch.total_params * arch.checkpoint_dtype_bytes)
            peak, phase = loading, "loading"
            notes.append("the peak is while loading: the full-precision checkpoint is read while it is quantised")
    components = {k: int(round(components[k])) for k, _ in COMPONENTS}
    total = sum(components.values())
    if virtual:
        notes.append(f"{virtual} virtual tokens are added to every sequence (packing is off for this method)")
    return Estimate(
        total_bytes=total, peak_bytes=int(round(peak)), components=components,
        trainable_params=trainable, total_params=int(total_params),
        phase=phase, device=device,
        world_size=N, sharding=sharding, notes=notes,
        details={"precision": precision, "weight_dtype": weight_dtype, "quantize": quantize,
                 "tokens_per_micro_batch": tokens, "grad_layers": grad_layers, "packing": packing,
                 "fused_loss": fused, "activation_bytes_per_token_per_layer": per_layer,
                 "optimizer": opt["label"], "cpu_allocator": cpu_allocator},
    )


# ---------------------------------------------------------------------------------------------
def arch_for_config(cfg) -> Arch:
    """The Arch of cfg.model from its config.json (alias, local folder; no weights are read)."""
    from engine.workspace import resolve_model

    path = Path(resolve_model(cfg.model)) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the estimate needs the model's config.json "
                                "(prepare the model or give a folder that holds config.json)")
    return Arch.from_config(json.loads(path.read_text(encoding="utf-8")))


def _teacher_bytes(cfg, device: str, notes: list[str]) -> float:
    """A distillation teacher's weights and the two vocabulary-sized logits it adds (engine/distill.py)."""
    distill = getattr(cfg, "distill", None)
    if distill is None or not distill.teacher.strip():
        return 0.0
    from engine.distill import teacher_memory_bytes

    try:
        return float(teacher_memory_bytes(cfg, device))
    except (OSError, ValueError, KeyError) as err:
        notes.append(f"the teacher's size is unknown ({err}); it is not included")
        return 0.0


def estimate_for_config(cfg, **kwargs) -> Estimate:
    return estimate(arch_for_config(cfg), cfg, **kwargs)


# ---- verdict and cheaper options ---------------------------------------------------------------
TIGHT_FRACTION = 0.90  # above 90% of what is available: may fit, but little headroom


def _available(device) -> int | None:
    if device is None:
        return None
    if isinstance(device, (int, float)):
        return int(device)
    return device.get("available_bytes") or device.get("free_bytes") or device.get("total_bytes")


def verdict(estimate_bytes: int, device) -> str:
    """'fits', 'tight' or 'does not fit' for `device` (a detect() dict or a byte count)."""
    available = _available(device)
    if not available:
        return "unknown"
    if estimate_bytes <= TIGHT_FRACTION * available:
        return "fits"
    if estimate_bytes <= available:
        return "tight"
    return "does not fit"


def _with(cfg, overrides: dict):
    from engine.config import RunConfig, apply_overrides

    raw = cfg.to_dict()
    apply_overrides(raw, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])
    return RunConfig.from_dict(raw)


def cheaper_options(arch, cfg=None, device=None, limit: int = 5, **kwargs) -> list[dict]:
    """The cheapest changes that would fit: [{label, overrides ({'train.x': v}), bytes, fits}].

    Overrides are `--set`-style keys; a method switch replaces the whole `method` section. Sorted
    by how little they change (fewer keys, then bytes). `cheaper_options(cfg)` also works.
    """
    if cfg is None:
        cfg, arch = arch, arch_for_config(arch)
    if device is None:
        from engine.device import detect

        device = detect()
    elif isinstance(device, str):
        device = {"kind": device}
    kind = device.get("kind", "cpu")
    available = _available(device)
    t = cfg.train
    current = estimate(arch, cfg, device=kind, **kwargs).total_bytes
    candidates: list[tuple[str, dict]] = []
    from engine.methods import METHODS

    # checkpointing is offered only where the method can use it (not the prefix methods)
    can_checkpoint = not t.gradient_checkpointing and not METHODS.get(cfg.method.name).no_checkpointing_reason
    if can_checkpoint:
        candidates.append(("gradient checkpointing on", {"train.gradient_checkpointing": True}))
    b, ga = t.batch_size, t.gradient_accumulation
    while b > 1:
        b //= 2
        ga_new = max(1, (t.batch_size * t.gradient_accumulation) // b)
        candidates.append((f"batch {b} x accumulation {ga_new} (same global batch)",
                           {"train.batch_size": b, "train.gradient_accumulation": ga_new}))
        if can_checkpoint:
            candidates.append((f"gradient checkpointing on, batch {b} x accumulation {ga_new}",
                               {"train.gradient_checkpointing": True, "train.batch_size": b,
                                "train.gradient_accumulation": ga_new}))
    seq = t.max_seq_len
    while seq > 128:
        seq //= 2
        candidates.append((f"max_seq_len {seq} (longer examples are truncated or dropped)",
                           {"train.max_seq_len": seq}))
    if kind == "cuda":
        if t.precision == "fp32":
            candidates.append(("bf16 mixed precision", {"train.precision": "bf16"}))
        if t.optimizer == "adamw":
            candidates.append(("8-bit AdamW", {"train.optimizer": "adamw_8bit"}))
        candidates += _quantised_method_options(cfg)
    found = []
    for label, overrides in candidates:
        try:
            new = _with(cfg, overrides)
            est = estimate(arch, new, device=kind, **kwargs).total_bytes
        except Exception:
            continue
        if est >= current:
            continue
        fits = available is None or est <= TIGHT_FRACTION * available
        found.append({"label": label, "overrides": overrides, "bytes": int(est), "fits": bool(fits),
                      "summary": f"{label}: about {est / GiB:.2f} GiB"})
    fitting = [o for o in found if o["fits"]]
    pool = fitting or sorted(found, key=lambda o: o["bytes"])[:limit]
    pool.sort(key=lambda o: (len(o["overrides"]), o["bytes"]))
    return pool[:limit]


def _quantised_method_options(cfg) -> list[tuple[str, dict]]:
    """Switch to a registered method that loads the base model in 4 bits (e.g. QLoRA), carrying over
    the parameters it shares with the current method."""
    from engine.methods import METHODS

    current = METHODS.get(cfg.method.name)
    if current.quantize({**current.defaults(), **cfg.method.params}) == "4bit":
        return []
    out = []
    for key, method in METHODS.items():
        try:
            if method.quantize(method.defaults()) != "4bit":
                continue
        except Exception:
            continue
        declared = {p.name for p in method.params}
        section = {"name": key, **{k: v for k, v in cfg.method.params.items() if k in declared}}
        out.append((f"{method.title} (4-bit base) + gradient checkpointing",
                    {"method": section, "train.gradient_checkpointing": True}))
    return out


# ---- what the UI shows ---------------------------------------------------------------------------
def ui_summary(cfg_dict: dict, device_info: dict | None = None, **kwargs) -> dict:
    """Everything the Train tab's memory panel needs, as plain JSON-able data (import-light).

    Returns {ok, error, total_bytes, peak_bytes, components: [{key, label, bytes}], phase,
    trainable_params, total_params, device: {...}, available_bytes, verdict, options: [...], notes,
    text}. `ok` is False (with `error`) when the config is invalid or config.json is missing.
    """
    from engine.config import ConfigError, RunConfig

    if device_info is None:
        from engine.device import detect

        device_info = detect()
    kind = device_info.get("kind", "cpu")
    try:
        cfg = RunConfig.from_dict(cfg_dict)
        arch = arch_for_config(cfg)
        est = estimate(arch, cfg, device=kind, **kwargs)
    except (ConfigError, FileNotFoundError, ValueError, KeyError) as err:
        return {"ok": False, "error": str(err), "device": device_info, "components": [], "options": []}
    available = _available(device_info)
    v = verdict(est.total_bytes, device_info)
    options = cheaper_options(arch, cfg, device_info, **kwargs) if v != "fits" else []
    return {
        "ok": True, "error": None, "total_bytes": est.total_bytes, "peak_bytes": est.peak_bytes,
        "components": [{"key": k, "label": LABELS[k], "bytes": est.components[k]} for k, _ in COMPONENTS],
        "phase": est.phase, "trainable_params": est.trainable_params, "total_params": est.total_params,
        "device": device_info, "available_bytes": available, "verdict": v, "options": options,
        "notes": est.notes,
        "text": (f"about {est.total_bytes / GiB:.2f} GiB of "
                 f"{(available or 0) / GiB:.1f} GiB available on {device_info.get('name', kind)}: {v}"),
    }
