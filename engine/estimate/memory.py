"""Peak training memory per device, from the model's structure and the run config alone (no torch, no weights).

The structure (engine/core/structure.py) is read from the model itself once, in a process that may import
torch, and cached per config.json; this module only reads the cached description.

The model is written out component by component, with sources, in docs/memory.md, and each
component is one function of engine/estimate/components.py. In short:

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
the modules it adapts). Import-light: the UI imports this module.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from engine.core import describe, optimizers
from engine.core import structure as st
from engine.core.messages import Message
from engine.core.precision import compute_dtype, is_pure
from engine.core.sharding import DEEPSPEED, SHARDING
from engine.core.structure import Structure
from engine.estimate import components as c
from engine.estimate.components import DTYPE_BYTES, Setup
from engine.estimate.generation import generation_bytes
from engine.estimate.lengths import DataLengths

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
    ("reference", "Reference model (preference objectives)"),
    ("generation", "Generation (sampled answers' KV cache and logits)"),
    ("temporary", "Temporary buffers"),
    ("fragmentation", "Allocator allowance"),
)
LABELS = dict(COMPONENTS)
# a CPU run has no CUDA context: its fixed cost is the Python process with torch and the libraries
CPU_LABELS = {"framework": "Framework (Python, torch, libraries)"}


def label(key: str, device: str) -> str:
    """A component's label for the device the run trains on."""
    return (LABELS if device == "cuda" else {**LABELS, **CPU_LABELS})[key]


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
            "labels": {k: label(k, self.device) for k in self.components},
            "trainable_params": self.trainable_params, "total_params": self.total_params,
            "phase": self.phase, "device": self.device, "world_size": self.world_size,
            "sharding": self.sharding, "notes": list(self.notes), "details": dict(self.details),
        }


def setup(structure: Structure, cfg, device: str, world_size: int, sharding: str, attention: str,
          weight_dtype: str | None) -> Setup:
    """Resolve what the run is (dtypes, quantisation, trainable count, sharding) once."""
    from engine.methods import METHODS

    if sharding not in SHARDING:
        raise ValueError(f"sharding {sharding!r} is not one of {', '.join(SHARDING)}")
    if world_size < 1:
        raise ValueError("world_size must be at least 1")
    if world_size == 1:
        sharding = "none"
    elif sharding == "none":
        sharding = "ddp"
    method = METHODS.get(cfg.method.name)
    params = {**method.defaults(), **(cfg.method.params or {})}
    resolved = c.precision_for(cfg, device)  # fp32 | bf16 | fp16 | bf16_pure
    precision = compute_dtype(resolved)
    p = DTYPE_BYTES[precision]
    weight_dtype = weight_dtype or method.load_dtype(resolved)
    wb = DTYPE_BYTES.get(weight_dtype, 4)
    autocast = p < wb
    quantize = method.quantize(params)
    deepspeed = sharding in DEEPSPEED
    if deepspeed and precision != "fp32" and not quantize:
        wb = 2  # DeepSpeed keeps half-precision model weights and fp32 master weights
        autocast = False
    return Setup(structure=structure, cfg=cfg, method=method, params=params, device=device, world=world_size,
                 sharding=sharding, attention=attention, precision=precision, weight_dtype=weight_dtype, p=p,
                 wb=wb, autocast=autocast, quantize=quantize, trainable=int(method.count_trainable(structure, params)),
                 deepspeed=deepspeed, pure=is_pure(resolved))


def estimate(structure, cfg=None, device: str = "cuda", world_size: int = 1, sharding: str = "none",
             attention: str = "sdpa", weight_dtype: str | None = None, framework_bytes: int | None = None,
             cpu_allocator: str | None = None, data: DataLengths | None = None) -> Estimate:
    """Peak memory per device for training `cfg` on the model `structure` describes.

    `structure` may also be a RunConfig (then the model's cached structure is read): estimate(cfg) works.
    weight_dtype: the dtype the base weights are loaded in; by default what Tuneloom's trainer does
    (Method.load_dtype: frozen weights in the compute dtype, trained base weights in fp32).
    attention: sdpa (default; flash/memory-efficient kernels, no score matrix), flash, or eager.
    cpu_allocator: the malloc a CPU trainer runs on (engine/core/allocator.py); by default the one a trainer
    started now would get.
    data: the data's token lengths (engine/estimate/lengths.py): the longest batch it really makes; without
    them every row is max_seq_len long (details["length_basis"] says which).
    """
    if cfg is None:
        cfg, structure = structure, structure_for_config(structure)
    if structure.unmappable:
        raise ValueError(structure.unmappable)
    s = setup(structure, cfg, device, world_size, sharding, attention, weight_dtype)
    s.data = data
    if device == "cpu" and cpu_allocator is None:
        from engine.core.allocator import planned

        cpu_allocator = planned()[0]
    est = _add_up(s, framework_bytes, cpu_allocator)
    if s.quantize:
        # a quantised base is meant to save memory; where it does not, say why (pure: same sum, base unquantised)
        plain = _add_up(replace(s, quantize=None, notes=[]), framework_bytes, cpu_allocator)
        if plain.total_bytes < est.total_bytes:
            est.details["quantized_above"] = {"bytes": est.total_bytes, "unquantised_bytes": plain.total_bytes,
                                              "phase": est.phase, "quantize": s.quantize}
    return est


def _add_up(s: Setup, framework_bytes: int | None, cpu_allocator: str | None) -> Estimate:
    """The components of one resolved setup, summed over the moments a step can peak at."""
    structure, cfg, device = s.structure, s.cfg, s.device
    w = c.weights(s)
    o = c.optimization(s, w)
    per_layer = c.layer_bytes_per_token(s, c.adapted_modules(s))
    activations = c.activations(s, per_layer)
    loss = c.logits_and_loss(s, w)
    framework = c.framework(s, framework_bytes)

    # the two moments a step can peak at: the end of forward, or the optimizer step
    grads_phase1 = o.gradients if s.train.gradient_accumulation > 1 else min(loss.head_grad, o.gradients)
    phase1 = {"activations": activations, "weight_copies": c.weight_copies(s),
              "logits_loss": max(loss.peak, loss.kept), "gradients": grads_phase1, "temporary": c.temporaries(s)}
    phase2 = {"activations": 0.0, "weight_copies": 0.0, "logits_loss": 0.0, "gradients": o.gradients,
              "temporary": o.step_temp}
    first_is_peak = sum(phase1.values()) >= sum(phase2.values())
    dynamic = phase1 if first_is_peak else phase2
    # GRPO samples before it trains (engine/estimate/generation.py): a third moment, when it is the largest
    sampling = generation_bytes(s)
    if sampling > sum(dynamic.values()):
        dynamic = {key: 0.0 for key in phase1}
        dynamic["gradients"] = o.gradients if s.train.gradient_accumulation > 1 else 0.0
    else:
        sampling = 0.0
    parts = {
        "framework": framework, "frozen_weights": w.frozen, "trainable_weights": w.trainable,
        "master_weights": w.master, "weight_copies": dynamic["weight_copies"],
        "gradients": dynamic["gradients"] + o.ddp_buckets, "optimizer": o.optimizer,
        "activations": dynamic["activations"], "logits_loss": dynamic["logits_loss"],
        "temporary": dynamic["temporary"], "teacher": c.teacher(s), "reference": c.reference(s, w),
        "generation": sampling,
    }
    peak = sum(parts.values())
    parts["fragmentation"] = c.allocator_allowance(s, peak, framework, dynamic["activations"], cpu_allocator)
    if device != "cuda":
        peak += parts["fragmentation"]  # resident memory includes what malloc keeps
    phase = "generation" if sampling else "forward/backward" if first_is_peak else "optimizer step"
    if device == "cpu" and s.quantize:
        loading = c.loading_bytes(s, framework, w.frozen)
        if loading > peak:
            parts = {k: 0.0 for k, _ in COMPONENTS}
            parts.update(framework=framework, frozen_weights=w.frozen,
                         temporary=structure.total_params * structure.checkpoint_dtype_bytes)
            peak, phase = loading, "loading"
            s.notes.append(Message("note.loading_peak"))
    parts = {k: int(round(parts[k])) for k, _ in COMPONENTS}
    if not s.objective.supervised:
        s.notes.append(Message("note.sequences_reference" if s.objective.uses_reference(cfg) else "note.sequences",
                               objective=s.objective.title, sequences=s.objective.sequences))
    if s.virtual:
        s.notes.append(Message("note.virtual_tokens", virtual=s.virtual))
    total_params = (structure.total_params + (0 if s.method.trains_base_weights else s.trainable)
                    + s.method.count_added_frozen(structure, s.params) + s.method.count_added_base(structure, s.params))
    s.notes.extend(s.method.notes(structure, s.params))
    return Estimate(
        total_bytes=sum(parts.values()), peak_bytes=int(round(peak)), components=parts,
        trainable_params=s.trainable, total_params=int(total_params),
        phase=phase, device=device, world_size=s.world, sharding=s.sharding, notes=s.notes,
        details={"precision": s.precision, "pure": s.pure, "weight_dtype": s.weight_dtype, "quantize": s.quantize,
                 "tokens_per_micro_batch": s.tokens, "grad_layers": s.grad_layers, "packing": s.packing,
                 "fused_loss": s.fused, "activation_bytes_per_token_per_layer": per_layer,
                 "optimizer": optimizers.get(s.train.optimizer).label, "cpu_allocator": cpu_allocator,
                 # what the batch's length rests on: the data's longest batch, or every row at max_seq_len
                 "length_basis": "data" if s.data else "max_seq_len", "batch_rows": s.rows, "row_tokens": s.row,
                 "max_seq_len": cfg.train.max_seq_len, "sequences": s.objective.sequences},
    )


StructurePending = st.NotReadYet  # the model's (or the teacher's) structure is still being read

def structure_for_config(cfg) -> Structure:
    """The structure of cfg.model, read in this process when it may import torch (the CLI, the trainer),
    else from the cache only (the UI: StructurePending until a child process has read it)."""
    from engine.core.workspace import resolve_model

    if st.config_path(cfg.model) is None:
        raise FileNotFoundError(f"{resolve_model(cfg.model)}/config.json not found: the estimate needs the model's "
                                "config.json (prepare the model or give a folder that holds config.json)")
    found = describe.obtain(cfg.model, cfg.trust_remote_code, wait=False)
    if found is None:
        raise StructurePending(f"reading the structure of {cfg.model}")
    return found


def estimate_for_config(cfg, **kwargs) -> Estimate:
    return estimate(structure_for_config(cfg), cfg, **kwargs)
