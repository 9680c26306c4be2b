"""What a fine-tuning method is: its declared parameters and how it changes a model.

A `Method` module stays import-light at import time (the UI imports the registry); torch and
peft are imported inside `apply` only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from engine.core.arch import Arch
from engine.core.precision import PURE
from engine.core.registry import METHODS, Param  # noqa: F401  (METHODS: re-exported for the method modules)


def _always_available(arch: Arch) -> str | None:
    return None


@dataclass(frozen=True)
class Method:
    key: str
    title: str
    summary: str  # one line: what it trains and when to use it
    params: tuple[Param, ...]
    # apply(model, params, arch) -> model with exactly the intended parameters trainable
    apply: Callable[[Any, dict, Arch], Any]
    # count_trainable(arch, params) -> trainable parameters, computed from config.json alone
    count_trainable: Callable[[Arch, dict], int]
    mergeable: bool = False
    # quantize(params) -> "4bit" / "8bit" / None: the base model's load-time quantisation
    quantize: Callable[[dict], str | None] = lambda params: None
    # why the method cannot run on this architecture, or None
    unavailable: Callable[[Arch], str | None] = _always_available
    not_mergeable_reason: str = ""
    # load_adapter(base_model, folder) -> model, for methods peft cannot reload itself
    load_adapter: Callable[[Any, Any], Any] | None = None
    # callbacks(model, params) -> extra transformers TrainerCallbacks (e.g. an unfreezing schedule)
    callbacks: Callable[[Any, dict], list] | None = None
    # optimizer(model, params, training_args) -> a torch optimizer, or None for the Trainer's own
    # (LoRA+ learning-rate groups; layerwise unfreezing needs every layer in the optimizer from the start)
    optimizer: Callable[[Any, dict, Any], Any] | None = None
    # save_adapter(model, folder): for results peft cannot save itself (ours, or converted on save)
    save_adapter: Callable[[Any, Any], None] | None = None
    # quantize_options(params) -> keyword options for engine.core.models.quantization_config
    quantize_options: Callable[[dict], dict] = lambda params: {}

    # ---- traits the memory estimator reads (pure; from config.json and params only) ----------
    # extra positions the method adds to every sequence (prompt / prefix tokens)
    virtual_tokens: Callable[[dict], int] = lambda params: 0
    # True when those positions are only keys/values of every attention layer (prefix methods), so the
    # layers still run max_seq_len queries; False when they are prepended input embeddings (prompt tuning)
    virtual_keys_only: bool = False
    # how many decoder layers, counted from the top, need activations kept for backward
    grad_layers: Callable[[Arch, dict], int] = lambda arch, params: arch.layers
    # True when the trainable parameters are base weights (full, freeze, bitfit), not added ones
    trains_base_weights: bool = False
    # why gradient checkpointing cannot be used with this method ("" when it can)
    no_checkpointing_reason: str = ""
    # frozen parameters the method adds besides its trainable ones (AdaLoRA's per-module rank counter)
    count_added_frozen: Callable[[Arch, dict], int] = lambda arch, params: 0
    # train settings this method starts from instead of the schema's defaults (engine/core/config.py):
    # the learning rate that suits it on the default model; `switch_method` applies them
    train_defaults: dict = field(default_factory=dict)

    def load_dtype(self, precision: str) -> str:
        """The dtype the base weights are loaded in: frozen weights are stored in the compute dtype
        under bf16/fp16 (half the memory, no casts in every matmul); methods that train base weights
        keep fp32 master weights and train under autocast, except in a pure mode (bf16_pure), where
        every weight is stored in half precision (engine/core/precision.py)."""
        if precision in PURE:
            return PURE[precision]
        if self.trains_base_weights or precision not in ("bf16", "fp16"):
            return "fp32"
        return precision

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key, "title": self.title, "summary": self.summary,
            "mergeable": self.mergeable, "params": [p.describe() for p in self.params],
        }

