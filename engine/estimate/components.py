"""The components of peak training memory, one function each, as docs/memory.md writes them out.

Every function takes the resolved `Setup` (what the run is: the model's structure, method traits,
dtypes, tokens, sharding) and returns bytes; engine/estimate/memory.py adds them up into the two
phases of a step. Pure: the model's structure description (engine/core/structure.py) and the run
config only, no torch, no weights.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.core import device as device_facts
from engine.core import optimizers
from engine.core.describe import obtain
from engine.core.messages import Message
from engine.core.precision import resolve, resolve_on_cpu
from engine.core.runs import is_run_folder
from engine.core.sharding import shards
from engine.core.structure import MLP, NotReadYet, Structure
from engine.estimate.lengths import DataLengths

MiB = 2**20
GiB = 2**30

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}

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

    structure: Structure
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
    pure: bool = False  # pure half precision (bf16_pure): trained weights, gradients and states in half precision
    data: DataLengths | None = None  # the data's token lengths; None: every row is max_seq_len long
    notes: list[str] = field(default_factory=list)

    @property
    def train(self):
        return self.cfg.train

    @property
    def shard_params(self) -> bool:
        return shards(self.sharding, "weights")

    @property
    def shard_states(self) -> bool:
        return shards(self.sharding, "optimizer")

    @property
    def shard_grads(self) -> bool:
        return shards(self.sharding, "gradients")

    @property
    def virtual(self) -> int:
        return int(self.method.virtual_tokens(self.params) or 0)

    @property
    def objective(self):
        """The training objective's declaration (engine/core/objectives.py, through its registry)."""
        from engine.core.registry import OBJECTIVES

        return OBJECTIVES.get(getattr(self.train, "objective", "sft") or "sft")

    @property
    def packing(self) -> bool:
        return self.train.packing and self.virtual == 0 and self.objective.supervised  # TRL pads

    @property
    def rows(self) -> int:
        """Examples in the fullest micro-batch."""
        return self.data.rows(self.train.batch_size) if self.data else self.train.batch_size

    @property
    def row(self) -> int:
        """Data tokens of a padded row: the data's longest example, else (worst case) max_seq_len."""
        prompt = self.data.padded_row(self.train.max_seq_len) if self.data else self.train.max_seq_len
        return prompt + self.objective.completion_tokens(self.cfg)  # GRPO trains on prompt + sampled answer

    @property
    def seq(self) -> int:
        """Positions every row runs through the layers: the virtual tokens of prompt tuning and P-tuning
        are prepended input embeddings; prefix methods add keys/values only (key_seq)."""
        return self.row + (0 if self.method.virtual_keys_only else self.virtual)

    @property
    def key_seq(self) -> int:
        """Positions each query attends over: the row plus every virtual token."""
        return self.row + self.virtual

    @property
    def tokens(self) -> int:
        """Tokens of the longest micro-batch (engine/estimate/lengths.py): packed, the longest examples end to
        end; padded, every row as long as the longest; a preference step forwards each answer (chosen + rejected)."""
        if self.packing and self.data:
            return self.data.packed_tokens(self.train.batch_size, self.train.max_seq_len)
        return self.rows * self.seq * self.objective.sequences

    @property
    def fused(self) -> bool:
        if not self.objective.supervised:  # DPO/KTO: TRL's chunked log-probs; ORPO/SimPO: full logits
            return self.objective.fused_logps and self.virtual == 0
        return self.train.fused_loss and self.virtual == 0

    @property
    def grad_layers(self) -> int:
        return max(0, min(self.structure.layers, int(self.method.grad_layers(self.structure, self.params))))


def precision_for(cfg, device: str) -> str:
    """The run's resolved precision (engine/core/precision.py) on `device`: an estimate for a GPU assumes a
    recent one (bf16); for a CPU, this machine's (native bf16 and AMX or not, from its flags)."""
    if device == "cuda":
        return resolve(cfg.train.precision, device, True)
    return resolve_on_cpu(cfg.train.precision, device_facts.cpu_flags())


def adapted_modules(s: Setup) -> set[str]:
    """Names (inside a decoder layer) of the linear layers an added-parameter method attaches to."""
    if s.method.trains_base_weights:
        return set()
    try:
        names = s.method.adapted(s.structure, s.params)
    except Exception:  # settings the method's own checks refuse: nothing adapted to count
        return set()
    prefix = s.structure.layers_prefix + "."
    return {name[len(prefix):].partition(".")[2] for name in names if name.startswith(prefix)}


# ---- weights -----------------------------------------------------------------------------------
def base_weight_bytes(structure: Structure, quantize: str | None, dtype_bytes: int, double_quant: bool = True) -> dict:
    """Frozen storage of the whole model: linear layers possibly quantised; embeddings, lm_head, norms,
    biases and fused expert tensors stay in the load dtype (bitsandbytes quantises Linear/Conv1D only)."""
    linear = structure.linear_weights()
    other = structure.total_params - linear
    if quantize == "4bit":
        per = 0.5 + (1 + 4 / NF4_DQ_BLOCK) / NF4_BLOCK if double_quant else 0.5 + 4 / NF4_BLOCK
        qbytes = linear * per
    elif quantize == "8bit":
        qbytes = linear + 4 * sum(lin.outputs for _, lin in structure.linears() if not lin.experts)
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
    stored = base_weight_bytes(s.structure, s.quantize, s.wb, bool(s.params.get("double_quant", True)))
    frozen = stored["linear"] + stored["other"]
    if s.method.trains_base_weights:
        # trainable base weights keep their dtype (never quantised); subtract them from the frozen store
        # (all but those the method adds, like BitFit's new zero biases, which were never in it)
        trainable = s.trainable * s.wb
        added = s.method.count_added_base(s.structure, s.params) * s.wb
        frozen = max(0.0, frozen - (trainable - added))
    else:
        # peft creates adapter weights in fp32 (autocast_adapter_dtype); pure half precision casts them
        trainable = s.trainable * (s.p if s.pure else 4)
    param_bytes = trainable / s.trainable if s.trainable else 4
    master = 0.0
    # DeepSpeed keeps fp32 masters of half-precision weights in any mode; FSDP unless the run is pure
    if s.wb < 4 and s.precision != "fp32" and (s.deepspeed or (s.sharding == "fsdp" and not s.pure)):
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
        largest = s.structure.embedding_params if s.method.trains_base_weights else s.structure.largest_linear()
        temp = min(temp, optimizer.step_temp * largest * state_bytes)
    if optimizer.paged:
        s.notes.append(Message("note.paged"))
    buckets = grads if s.sharding == "ddp" else 0.0
    return Optimization(grads, states, temp, buckets)


# ---- activations -------------------------------------------------------------------------------
def layer_bytes_per_token(s: Setup, adapted: set[str]) -> float:
    """Bytes saved for backward by one decoder layer (the first kind of layer), per token (see docs/memory.md)."""
    structure, p = s.structure, s.p
    kind = structure.first
    h = structure.hidden
    q = structure.heads * structure.head_dim
    kv = structure.kv_heads * structure.head_dim
    masked = s.packing or s.rows > 1  # SDPA then gets an explicit mask (and expands GQA heads)
    kv_saved = q if masked or s.attention == "eager" else kv  # repeat_kv when a mask is given
    r = s.wb  # residual stream and norms run in the weights' dtype (fp32 under autocast)
    base_trainable = s.method.trains_base_weights
    # every norm keeps its input upcast to fp32 (HF RMSNorm/LayerNorm compute in fp32, whatever the
    # residual dtype; with fp32 weights that upcast is the residual itself): two in a Llama layer
    norms = len(kind.norms)
    total = norms * h * 4
    if base_trainable:
        total += norms * h * r  # normalised values kept for the norm weights' gradient
    keys_per_query = s.key_seq / s.seq  # > 1 with a prefix: every layer attends over the virtual keys too
    attention_part = (q + 2 * kv_saved * keys_per_query) * p + q * p + structure.heads * 4  # q, k, v, output, logsumexp
    if s.method.virtual_keys_only and s.virtual:
        # peft hands the prefix over as a DynamicCache, which keeps every layer's concatenated keys and
        # values (kv width) besides the copies attention saves
        attention_part += 2 * kv * p * keys_per_query
    if s.attention == "eager":
        attention_part += structure.heads * s.key_seq * (p + p)  # scores/probabilities per query row
    total += attention_part
    total += feed_forward_bytes(s, kind)
    # inputs kept by linear layers whose weights (base or adapter) need a gradient; the input projections
    # of a block share one input, its output projection has its own
    for block in ("attention", MLP):
        for role in ("in", "out"):
            linears = kind.of(block, role)
            savers = [lin for lin in linears if base_trainable or lin.name in adapted]
            if not savers:
                continue
            width = savers[0].inputs
            routed = max(1, structure.experts_per_token) if any(lin.experts for lin in savers) else 1
            if role == "in":
                # input comes from an fp32 norm: autocast casts it once per linear (own copy each)
                total += routed * width * (p * len(savers) if s.autocast else r)
            else:
                total += routed * width * p
            if not base_trainable and float(s.params.get("dropout", 0) or 0) > 0:
                total += len(savers) * width * (p + 1)  # dropout output + its mask, per adapter
    return total


def feed_forward_bytes(s: Setup, kind) -> float:
    """The feed-forward block's saved outputs per token: its input projections' outputs and the activation
    (SwiGLU: gate, up and SiLU outputs = 3 x intermediate; a plain MLP: 2 x); routed experts per chosen expert."""
    inputs = kind.of(MLP, "in")
    dense = [lin for lin in inputs if not lin.experts and lin.outputs > 1]  # not a 1-wide gate (shared_expert_gate)
    experts = [lin for lin in inputs if lin.experts]
    total = 0.0
    if dense:
        inner = max((lin.inputs for lin in kind.of(MLP, "out") if not lin.experts), default=0)
        total += (sum(lin.outputs for lin in dense) + inner) * s.p
    if experts:
        inner = max((lin.inputs for lin in kind.of(MLP, "out") if lin.experts), default=0)
        total += s.structure.experts_per_token * (sum(lin.outputs for lin in experts) + inner) * s.p
        total += s.structure.experts * 4  # router logits and their softmax
    return total


def activations(s: Setup, per_layer: float) -> float:
    """What the decoder layers that need gradients keep for backward (one layer with checkpointing)."""
    if s.grad_layers == 0:
        return 0.0
    h, r, tokens = s.structure.hidden, s.wb, s.tokens
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
        masked = s.rows > 1
        mask = s.rows * s.seq * s.key_seq if masked else 0
    return mask * (8 if s.device == "cpu" else 1)


def weight_copies(s: Setup) -> float:
    """Under autocast, the half-precision casts of the fp32 weights autograd keeps for backward."""
    if not s.autocast:
        return 0.0
    unquantised_linear_per_layer = 0 if s.quantize else s.structure.first.linear_weights
    layers_kept = 1 if s.train.gradient_checkpointing else s.grad_layers
    copies = unquantised_linear_per_layer * s.p * max(layers_kept, 1)
    copies += s.structure.embedding_params * s.p  # lm_head cast for the logits
    return copies / s.world if s.shard_params else copies


# ---- logits and loss ------------------------------------------------------------------------------
@dataclass
class Loss:
    peak: float  # while the loss and its gradient are computed
    kept: float  # what stays until backward reaches the head
    head_grad: float  # the lm_head's gradient when it trains


def logits_and_loss(s: Setup, w: Weights) -> Loss:
    structure, p, tokens = s.structure, s.p, s.tokens
    h, vocab = structure.hidden, structure.vocab
    lm_head_trainable = s.method.trains_base_weights and s.trainable >= structure.embedding_params  # full-style
    head_grad = structure.embedding_params * w.param_bytes if lm_head_trainable else 0.0
    if s.fused:
        chunk = min(tokens, FUSED_LOSS_CHUNK)
        peak = (tokens * h * 4  # selected hidden rows
                + tokens * h * 4  # gradient of the hidden states, computed in forward
                + chunk * vocab * (4 + 4 + (p if p < 4 else 0)) + chunk * h * p)
        kept = tokens * h * 4 + head_grad
    else:
        # transformers' loss (ForCausalLMLoss): the logits in the compute dtype (kept by the output), their
        # fp32 upcast (freed after forward: log-softmax keeps only its output; in fp32 it is the logits
        # themselves), the log-softmax output, and in backward the gradients of the NLL and of log-softmax.
        # Measured on CPU (2,048 x 49,152, peak RSS, docs/prompt_family_memory.md): 16.0 bytes
        # per logit in fp32, 14.0 in bf16
        peak = tokens * vocab * (p + 4 + 4 + 4)
        kept = tokens * vocab * 4
    return Loss(peak, kept, head_grad)


# ---- temporaries, framework, allocator ---------------------------------------------------------------
def temporaries(s: Setup) -> float:
    """The attention mask, one layer's backward working set, a dequantised weight, gathered shards."""
    structure = s.structure
    largest_w = structure.largest_linear()
    temp = attention_mask(s) + s.tokens * max(structure.intermediate, structure.hidden) * s.p * 2
    if s.quantize:
        temp += largest_w * s.p  # a linear's weight dequantised for its matmul
    if s.shard_params:
        # the gathered full parameters of about two layers (current + prefetched)
        temp += 2 * (structure.first.total * s.wb)
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
        s.notes.append(Message("note.system_malloc"))
    return CPU_HEAP_RETENTION.get(cpu_allocator, CPU_HEAP_RETENTION["system"]) * activation_bytes


def loading_bytes(s: Setup, framework_bytes: float, frozen: float) -> float:
    """CPU, 4/8-bit: transformers maps the whole checkpoint file (its saved dtype) while it quantises.
    The trainer lets the mapping go once loaded (engine/core/models.release_checkpoint_mapping), but
    the process's peak resident memory keeps the moment; with a small batch it is the peak."""
    return framework_bytes + frozen + s.structure.total_params * s.structure.checkpoint_dtype_bytes


# ---- distillation teacher ----------------------------------------------------------------------------
def reference(s: Setup, w) -> float:
    """A preference objective's reference model (engine/training/preference.py): a frozen copy of the model for
    methods that change its weights (or adapters that are not peft's), else TRL's frozen copy of the adapter
    alone on the shared base weights. Its forward runs without gradients: no activations are kept."""
    objective = s.objective
    if not objective.uses_reference(s.cfg):
        return 0.0
    if objective.reference_copy(s.method, s.cfg):
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
        s.notes.append(Message("note.teacher_unknown", detail=str(err)))
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
        dtype_bytes = 2 if cfg.train.precision in ("bf16", "fp16", "bf16_pure") else 4
    else:
        folder = Path(resolve_model(teacher_model))
        dtype_bytes = None
    config = json.loads((folder / "config.json").read_text())
    described = obtain(str(folder), cfg.trust_remote_code, wait=False)
    if described is None:
        raise NotReadYet(f"reading the structure of the teacher {teacher_model}")
    params, vocab = described.total_params, described.vocab
    if dtype_bytes is None:
        dtype_bytes = {"float32": 4, "bfloat16": 2, "float16": 2}.get(str(config.get("torch_dtype", "float32")), 4)
        quant = config.get("quantization_config") or {}
        if quant.get("load_in_4bit"):
            dtype_bytes = 0.5
        elif quant.get("load_in_8bit"):
            dtype_bytes = 1
    tokens = cfg.train.batch_size * cfg.train.max_seq_len
    return int(params * dtype_bytes + 2 * tokens * vocab * 4)
