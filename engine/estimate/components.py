"""The components of peak training memory, one function each, as docs/memory.md writes them out.

Every function takes the resolved `Setup` (what the run is: model shape, method traits, dtypes,
tokens, sharding) and returns bytes; engine/estimate/memory.py adds them up into the two phases of
a step. Pure: config.json and the run config only, no torch, no weights.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.core import optimizers
from engine.core.arch import Arch
from engine.core.precision import resolve
from engine.core.runs import is_run_folder

MiB = 2**20
GiB = 2**30

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
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
# allocator the trainer runs on (engine/core/allocator.py), fitted on the matrix of real runs
# (bench/results/memory_accuracy_cpu.md with tcmalloc, memory_accuracy_cpu_system_malloc.md with
# glibc). jemalloc behaved like tcmalloc in bench/results/allocator_cpu.md.
CPU_HEAP_RETENTION = {"system": 0.6, "tcmalloc": 0.05, "jemalloc": 0.05}
FUSED_LOSS_CHUNK = 1024  # rows per chunk in engine/training/fused_loss.py


@dataclass
class Setup:
    """What one training step of this run is, resolved once from the config and the method's traits."""

    arch: Arch
    cfg: object  # RunConfig
    method: object  # engine.methods.base.Method
    params: dict
    device: str  # "cpu" | "cuda"
    world: int
    sharding: str
    attention: str
    precision: str  # compute dtype
    weight_dtype: str  # dtype the base weights are stored in
    p: int  # bytes of the compute dtype
    wb: int  # bytes of the stored weights
    autocast: bool  # half-precision compute over fp32 weights
    quantize: str | None
    trainable: int
    deepspeed: bool
    notes: list[str] = field(default_factory=list)

    @property
    def train(self):
        return self.cfg.train

    @property
    def shard_params(self) -> bool:
        return self.sharding in ("zero3", "fsdp")

    @property
    def shard_states(self) -> bool:
        return self.sharding in ("zero1", "zero2", "zero3", "fsdp")

    @property
    def shard_grads(self) -> bool:
        return self.sharding in ("zero2", "zero3", "fsdp")

    @property
    def virtual(self) -> int:
        return int(self.method.virtual_tokens(self.params) or 0)

    @property
    def objective(self):
        """The training objective's declaration (engine/training/objectives.py, through its registry)."""
        from engine.core.registry import OBJECTIVES

        return OBJECTIVES.get(getattr(self.train, "objective", "sft") or "sft")

    @property
    def packing(self) -> bool:
        return self.train.packing and self.virtual == 0 and not self.objective.preference  # TRL pads

    @property
    def seq(self) -> int:
        return self.train.max_seq_len + self.virtual

    @property
    def tokens(self) -> int:
        # worst case: every example fills max_seq_len; a preference step forwards each answer (chosen + rejected)
        return self.train.batch_size * self.seq * self.objective.sequences

    @property
    def fused(self) -> bool:
        if self.objective.preference:  # DPO/KTO: TRL's chunked log-probs; ORPO/SimPO: full logits
            return self.objective.fused_logps and self.virtual == 0
        return self.train.fused_loss and self.virtual == 0

    @property
    def grad_layers(self) -> int:
        return max(0, min(self.arch.layers, int(self.method.grad_layers(self.arch, self.params))))


def precision_for(cfg, device: str) -> str:
    return resolve(cfg.train.precision, device)  # an estimate for a GPU assumes a recent one (bf16)


def adapted_modules(arch: Arch, params: dict) -> dict[str, int]:
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


# ---- weights -----------------------------------------------------------------------------------
def base_weight_bytes(arch: Arch, quantize: str | None, dtype_bytes: int, double_quant: bool = True) -> dict:
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


@dataclass
class Weights:
    frozen: float
    trainable: float
    master: float
    param_bytes: float  # bytes of one trainable parameter (before sharding)


def weights(s: Setup) -> Weights:
    """Frozen weights, trainable weights and fp32 master copies, per device."""
    stored = base_weight_bytes(s.arch, s.quantize, s.wb, bool(s.params.get("double_quant", True)))
    frozen = stored["linear"] + stored["other"]
    if s.method.trains_base_weights:
        # trainable base weights keep their dtype (never quantised); subtract them from the frozen store
        trainable = s.trainable * s.wb
        frozen = max(0.0, frozen - trainable)
    else:
        trainable = s.trainable * 4  # peft creates adapter weights in fp32 (autocast_adapter_dtype)
    param_bytes = trainable / s.trainable if s.trainable else 4
    master = 0.0
    if s.wb < 4 and s.precision != "fp32" and (s.deepspeed or s.sharding == "fsdp"):
        master = s.trainable * 4
    if s.shard_params:
        frozen /= s.world
        trainable /= s.world
    if s.shard_states:
        master /= s.world
    return Weights(frozen, trainable, master, param_bytes)


# ---- gradients and optimizer --------------------------------------------------------------------
@dataclass
class Optimization:
    gradients: float  # every trainable parameter's gradient (per device)
    optimizer: float  # optimizer states
    step_temp: float  # the optimizer step's temporary
    ddp_buckets: float  # DDP's gradient bucket copy


def optimization(s: Setup, w: Weights) -> Optimization:
    grad_bytes = 2 if s.deepspeed and s.precision != "fp32" else w.param_bytes
    grads = s.trainable * grad_bytes / (s.world if s.shard_grads else 1)
    optimizer = optimizers.get(s.train.optimizer)
    state_bytes = 4 if w.master else w.param_bytes  # optimizer states and its step temporary follow the masters
    states = s.trainable * optimizers.state_bytes(optimizer.key, state_bytes)
    states /= s.world if s.shard_states else 1
    temp = optimizer.step_temp * s.trainable * state_bytes / (s.world if s.shard_states else 1)
    if s.device == "cpu" and optimizer.step_temp:
        # torch uses the for-each (one big temporary) path on CUDA only; on CPU a parameter at a time
        largest = s.arch.embedding_params if s.method.trains_base_weights else max(
            (i * o for i, o in s.arch.linear_shapes().values()), default=0)
        temp = min(temp, optimizer.step_temp * largest * state_bytes)
    if optimizer.paged:
        s.notes.append("paged optimizer states live in unified memory and can spill to CPU RAM under pressure")
    buckets = grads if s.sharding == "ddp" else 0.0
    return Optimization(grads, states, temp, buckets)


# ---- activations -------------------------------------------------------------------------------
def layer_bytes_per_token(s: Setup, adapted: dict[str, int]) -> float:
    """Bytes saved for backward by one decoder layer, per token (see docs/memory.md)."""
    arch, p = s.arch, s.p
    h, i = arch.hidden, arch.intermediate
    q = arch.heads * arch.head_dim
    kv = arch.kv_heads * arch.head_dim
    masked = s.packing or s.train.batch_size > 1  # SDPA then gets an explicit mask (and expands GQA heads)
    kv_saved = q if masked or s.attention == "eager" else kv  # repeat_kv when a mask is given
    r = s.wb  # residual stream and norms run in the weights' dtype (fp32 under autocast)
    base_trainable = s.method.trains_base_weights
    shapes = arch.linear_shapes()
    # both RMSNorms keep their input upcast to fp32 (HF LlamaRMSNorm computes in fp32, whatever
    # the residual dtype; with fp32 weights that upcast is the residual itself)
    total = 2 * h * 4
    if base_trainable:
        total += 2 * h * r  # normalised values kept for the norm weights' gradient
    attention_part = (q + 2 * kv_saved) * p + q * p + arch.heads * 4  # q, k, v, output, logsumexp
    if s.attention == "eager":
        attention_part += arch.heads * s.seq * (p + p)  # scores/probabilities per query row
    total += attention_part
    total += 3 * i * p  # gate output, SiLU output, up output (SwiGLU)
    # inputs kept by linear layers whose weights (base or adapter) need a gradient
    groups = {"attn_in": ("q_proj", "k_proj", "v_proj"), "o_in": ("o_proj",),
              "mlp_in": ("gate_proj", "up_proj"), "down_in": ("down_proj",)}
    for names in groups.values():
        width = shapes[names[0]][0]
        savers = [n for n in names if base_trainable or (bool(adapted) and n in adapted)]
        if not savers:
            continue
        if names[0] in ("q_proj", "gate_proj"):
            # input comes from an fp32 norm: autocast casts it once per linear (own copy each)
            total += width * (p * len(savers) if s.autocast else r)
        else:
            total += width * p
        if not base_trainable and float(s.params.get("dropout", 0) or 0) > 0:
            total += len(savers) * width * (p + 1)  # dropout output + its mask, per adapter
    return total


def activations(s: Setup, per_layer: float) -> float:
    """What the decoder layers that need gradients keep for backward (one layer with checkpointing)."""
    if s.grad_layers == 0:
        return 0.0
    h, r, tokens = s.arch.hidden, s.wb, s.tokens
    extra = tokens * (h * r + h * 4)  # embedding output + final norm input (fp32 upcast)
    if s.train.gradient_checkpointing:
        # each checkpointed layer keeps its input; one layer at a time is recomputed in backward
        return s.grad_layers * tokens * h * r + tokens * per_layer + extra
    return s.grad_layers * tokens * per_layer + extra


def attention_mask(s: Setup) -> float:
    """The attention mask SDPA/eager get when padding (bool, batch x seq x seq), or eager when packing
    (tokens x tokens); packed rows on SDPA/flash are attended per example without a mask
    (engine/training/packing.py). transformers builds it as float32 on CPU, two copies kept."""
    if s.packing:
        mask = s.tokens * s.tokens if s.attention == "eager" else 0
    else:
        masked = s.train.batch_size > 1
        mask = s.train.batch_size * s.seq * s.seq if masked else 0
    return mask * (8 if s.device == "cpu" else 1)


def weight_copies(s: Setup) -> float:
    """Under autocast, the half-precision casts of the fp32 weights autograd keeps for backward."""
    if not s.autocast:
        return 0.0
    unquantised_linear_per_layer = 0 if s.quantize else sum(a * b for a, b in s.arch.linear_shapes().values())
    layers_kept = 1 if s.train.gradient_checkpointing else s.grad_layers
    copies = unquantised_linear_per_layer * s.p * max(layers_kept, 1)
    copies += s.arch.embedding_params * s.p  # lm_head cast for the logits
    return copies / s.world if s.shard_params else copies


# ---- logits and loss ------------------------------------------------------------------------------
@dataclass
class Loss:
    peak: float  # while the loss and its gradient are computed
    kept: float  # what stays until backward reaches the head
    head_grad: float  # the lm_head's gradient when it trains


def logits_and_loss(s: Setup, w: Weights) -> Loss:
    arch, p, tokens = s.arch, s.p, s.tokens
    h, vocab = arch.hidden, arch.vocab
    lm_head_trainable = s.method.trains_base_weights and s.trainable >= arch.embedding_params  # full-style methods
    head_grad = arch.embedding_params * w.param_bytes if lm_head_trainable else 0.0
    if s.fused:
        chunk = min(tokens, FUSED_LOSS_CHUNK)
        peak = (tokens * h * 4  # selected hidden rows
                + tokens * h * 4  # gradient of the hidden states, computed in forward
                + chunk * vocab * (4 + 4 + (p if p < 4 else 0)) + chunk * h * p)
        kept = tokens * h * 4 + head_grad
    else:
        # at the start of backward: logits (compute dtype) and their fp32 upcast (the same tensor in
        # fp32), log-softmax output, and the gradients of log-softmax and of the logits. Measured on
        # CPU (prefix tuning, 2,128 x 49,152 fp32): 4 vocab-sized fp32 tensors at the peak
        peak = tokens * vocab * (p + 4 + 4 + 4 + 4 if p < 4 else 4 * 4)
        kept = tokens * vocab * 4
    return Loss(peak, kept, head_grad)


# ---- temporaries, framework, allocator ---------------------------------------------------------------
def temporaries(s: Setup) -> float:
    """The attention mask, one layer's backward working set, a dequantised weight, gathered shards."""
    arch = s.arch
    largest_w = max(a * b for a, b in arch.linear_shapes().values())
    temp = attention_mask(s) + s.tokens * max(arch.intermediate, arch.hidden) * s.p * 2
    if s.quantize:
        temp += largest_w * s.p  # a linear's weight dequantised for its matmul
    if s.shard_params:
        # the gathered full parameters of about two layers (current + prefetched)
        temp += 2 * (arch.layer_params() * s.wb)
    return temp


def framework(s: Setup, measured: int | None = None) -> float:
    if measured is not None:
        return measured
    return CPU_FRAMEWORK_BYTES if s.device == "cpu" else CUDA_CONTEXT_BYTES + CUBLAS_WORKSPACE_BYTES


def allocator_allowance(s: Setup, peak: float, framework_bytes: float, activation_bytes: float,
                        cpu_allocator: str) -> float:
    """CUDA: the caching allocator reserves more than it hands out (not in max_memory_allocated).
    CPU: malloc keeps some freed memory resident: glibc's heap keeps the saved activations freed in
    backward while gradient buffers grow it (engine/core/allocator.py says why); RSS includes it."""
    if s.device == "cuda":
        return CUDA_ALLOCATOR_ALLOWANCE * (peak - framework_bytes)
    if cpu_allocator == "system":
        s.notes.append("the trainer runs on the system malloc, which keeps freed memory resident: a higher "
                       "peak and a less precise estimate (on Linux: apt-get install libtcmalloc-minimal4)")
    return CPU_HEAP_RETENTION.get(cpu_allocator, CPU_HEAP_RETENTION["system"]) * activation_bytes


def loading_bytes(s: Setup, framework_bytes: float, frozen: float) -> float:
    """CPU, 4/8-bit: transformers maps the whole checkpoint file (its saved dtype) while it quantises.
    The trainer lets the mapping go once loaded (engine/core/models.release_checkpoint_mapping), but
    the process's peak resident memory keeps the moment; with a small batch it is the peak."""
    return framework_bytes + frozen + s.arch.total_params * s.arch.checkpoint_dtype_bytes


# ---- distillation teacher ----------------------------------------------------------------------------
def reference(s: Setup, w) -> float:
    """A preference objective's reference model (engine/training/preference.py): a frozen copy of the model for
    methods that change its weights (or adapters that are not peft's), else TRL's frozen copy of the adapter
    alone on the shared base weights. Its forward runs without gradients: no activations are kept."""
    objective = s.objective
    if not objective.reference:
        return 0.0
    if objective.reference_copy(s.method):
        return float(w.frozen + w.trainable)
    return float(s.trainable * s.wb)


def teacher(s: Setup) -> float:
    """A distillation teacher's weights and the two vocabulary-sized logits it adds (engine/training/distill.py)."""
    distill = getattr(s.cfg, "distill", None)
    if distill is None or not distill.teacher.strip():
        return 0.0
    try:
        return float(teacher_memory_bytes(s.cfg, s.device))
    except (OSError, ValueError, KeyError) as err:
        s.notes.append(f"the teacher's size is unknown ({err}); it is not included")
        return 0.0


def teacher_memory_bytes(cfg, device: str = "cuda") -> int:
    """Extra memory distillation needs per device: the teacher's weights (in its dtype) plus the teacher's
    and the student's full logits of one micro-batch in fp32 (pure: reads config.json files only)."""
    from engine.core.workspace import resolve_model

    teacher_model = cfg.distill.teacher
    if not teacher_model.strip():
        return 0
    if is_run_folder(teacher_model):
        from engine.core.config import RunConfig

        folder = Path(resolve_model(RunConfig.load(Path(teacher_model) / "config.yaml").model))
        dtype_bytes = 2 if cfg.train.precision in ("bf16", "fp16") else 4
    else:
        folder = Path(resolve_model(teacher_model))
        dtype_bytes = None
    config = json.loads((folder / "config.json").read_text())
    text = config.get("text_config", config)
    h, layers, inter, vocab = text["hidden_size"], text["num_hidden_layers"], text["intermediate_size"], text["vocab_size"]
    heads = text["num_attention_heads"]
    kv = text.get("num_key_value_heads", heads)
    head_dim = text.get("head_dim") or h // heads
    per_layer = h * heads * head_dim * 2 + h * kv * head_dim * 2 + 3 * h * inter + 2 * h
    params = layers * per_layer + vocab * h * (1 if text.get("tie_word_embeddings", False) else 2) + h
    if dtype_bytes is None:
        dtype_bytes = {"float32": 4, "bfloat16": 2, "float16": 2}.get(str(config.get("torch_dtype", "float32")), 4)
        quant = config.get("quantization_config") or {}
        if quant.get("load_in_4bit"):
            dtype_bytes = 0.5
        elif quant.get("load_in_8bit"):
            dtype_bytes = 1
    tokens = cfg.train.batch_size * cfg.train.max_seq_len
    return int(params * dtype_bytes + 2 * tokens * vocab * 4)
