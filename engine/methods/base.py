"""What a fine-tuning method is: its declared parameters and how it changes a model.

A `Method` module stays import-light at import time (the UI imports the registry); torch and
peft are imported inside `apply` only. Everything a method knows about the model comes from its
Structure (engine/core/structure.py: read from the model itself, cached as JSON), never from
assumed module names.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.core.precision import PURE
from engine.core.registry import METHODS, Param  # noqa: F401  (METHODS: re-exported for the method modules)
from engine.core.structure import Structure


def _always_available(structure: Structure) -> str | None:
    return None


def _no_problems(params: dict, train, structure: Structure | None, steps: int | None) -> list[str]:
    return []


@dataclass(frozen=True)
class Method:
    key: str
    title: str
    summary: str  # one line: what it trains and when to use it
    params: tuple[Param, ...]
    # apply(model, params, structure) -> model with exactly the intended parameters trainable
    apply: Callable[[Any, dict, Structure], Any]
    # count_trainable(structure, params) -> trainable parameters, from the structure alone (pure)
    count_trainable: Callable[[Structure, dict], int]
    mergeable: bool = False
    # quantize(params) -> "4bit" / "8bit" / None: the base model's load-time quantisation
    quantize: Callable[[dict], str | None] = lambda params: None
    # why the method cannot run on this model at all, or None
    unavailable: Callable[[Structure], str | None] = _always_available
    # problems(params, train, structure, steps) -> what is wrong with these settings on this model and run,
    # checked before anything is loaded (engine/training/preflight.py). `structure` is None when the model
    # is not on disk yet; `steps` is the run's number of optimizer steps (max_steps), an upper bound from
    # the data file's size when training for epochs, or None when unknown.
    problems: Callable[[dict, Any, Structure | None, int | None], list[str]] = _no_problems
    # True when `problems` needs the run's number of steps (counted from the data when training for epochs)
    needs_steps: bool = False
    # adapted(structure, params) -> full names of the modules (or expert tensors, or parameters) the method
    # adapts or trains: the log and status name them, the estimate counts their saved inputs
    adapted: Callable[[Structure, dict], list[str]] = lambda structure, params: []
    # notes(structure, params) -> what the user should know (e.g. routed experts left unadapted)
    notes: Callable[[Structure, dict], list[str]] = lambda structure, params: []
    not_mergeable_reason: str = ""
    # load_adapter(base_model, folder) -> model, for methods peft cannot reload itself
    load_adapter: Callable[[Any, Any], Any] | None = None
    # callbacks(model, params, structure) -> extra transformers TrainerCallbacks (e.g. an unfreezing schedule)
    callbacks: Callable[[Any, dict, Structure], list] | None = None
    # optimizer(model, params, training_args, structure) -> a torch optimizer, or None for the Trainer's own
    # (LoRA+ learning-rate groups; layerwise unfreezing needs every layer in the optimizer from the start)
    optimizer: Callable[[Any, dict, Any, Structure], Any] | None = None
    # save_adapter(model, folder): for results peft cannot save itself (ours, or converted on save)
    save_adapter: Callable[[Any, Any], None] | None = None
    # quantize_options(params) -> keyword options for engine.core.models.quantization_config
    quantize_options: Callable[[dict], dict] = lambda params: {}

    # ---- traits the memory estimator reads (pure; from the structure and params only) ----------
    # extra positions the method adds to every sequence (prompt / prefix tokens)
    virtual_tokens: Callable[[dict], int] = lambda params: 0
    # True when those positions are only keys/values of every attention layer (prefix methods), so the
    # layers still run max_seq_len queries; False when they are prepended input embeddings (prompt tuning)
    virtual_keys_only: bool = False
    # how many decoder layers, counted from the top, need activations kept for backward
    grad_layers: Callable[[Structure, dict], int] = lambda structure, params: structure.layers
    # True when the trainable parameters are base weights (full, freeze, bitfit), not added ones
    trains_base_weights: bool = False
    # why gradient checkpointing cannot be used with this method ("" when it can)
    no_checkpointing_reason: str = ""
    # frozen parameters the method adds besides its trainable ones (AdaLoRA's per-module rank counter)
    count_added_frozen: Callable[[Structure, dict], int] = lambda structure, params: 0
    # base-model parameters the method adds and trains (BitFit's zero biases on a bias-free model)
    count_added_base: Callable[[Structure, dict], int] = lambda structure, params: 0
    # ---- traits a training objective may refuse (engine/core/objectives.py TrainingObjective.refuses) ----
    # True when the virtual tokens are input embeddings put before every input (prompt tuning, P-tuning): the
    # logits then no longer line up with the labels position by position
    prepends_input_tokens: bool = False
    # True when peft allows one adapter per model (AdaLoRA): no second, frozen adapter can serve as a reference
    single_adapter: bool = False
    # False when the training loss logged adds a regulariser to the token loss (AdaLoRA: peft's orthogonality
    # term), so it cannot be set beside an eval loss (engine/training/base_reference.verdict)
    logged_loss_is_token_loss: bool = True
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

    def check(self, params: dict, train, structure: Structure | None, steps: int | None = None) -> list[str]:
        """Every reason these settings cannot train this model, before anything is loaded (empty: fine)."""
        where = f"method.name: {self.key}"
        if structure is not None and structure.unmappable:
            return [f"{where}: {structure.unmappable}"]
        if structure is not None:
            reason = self.unavailable(structure)
            if reason:
                return [f"{where} cannot train this {structure.model_type} model: {reason}"]
        found = []
        if train is not None and train.gradient_checkpointing and self.no_checkpointing_reason:
            found.append(f"train.gradient_checkpointing: {self.key} cannot train with gradient checkpointing: "
                         f"{self.no_checkpointing_reason}. Turn gradient checkpointing off, or pick LoRA or prompt "
                         "tuning to save memory")
        return found + self.problems({**self.defaults(), **params}, train, structure, steps)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key, "title": self.title, "summary": self.summary,
            "mergeable": self.mergeable, "params": [p.describe() for p in self.params],
        }

