"""The training objectives (`train.objective`): what a run optimises, and what each needs.

One registry entry per objective (engine/core/registry.py OBJECTIVES): the data kind it trains on,
whether it needs a reference model, the metrics it logs beside the loss, and what it cannot be
combined with (with the reason). Import-light: the schema, the UI and the estimator read these
declarations; the trainers themselves are built in engine/training/preference.py (TRL).

- sft: the supervised loss on the answers (TuneloomTrainer, engine/training/hf_trainer.py);
- dpo: Direct Preference Optimization (TRL DPOTrainer; losses sigmoid, ipo, hinge);
- orpo: Odds Ratio Preference Optimization, reference-free (TRL ORPOTrainer);
- simpo: Simple Preference Optimization, reference-free, length-normalised (TRL CPOTrainer, loss "simpo",
  cpo_alpha 0, as TRL documents SimPO);
- kto: Kahneman-Tversky Optimization on unpaired answers labelled desirable or not (TRL KTOTrainer).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.core.registry import OBJECTIVES

# the metrics TRL's preference trainers log (train; "eval_" + these on evaluation), recorded in metrics.jsonl
REWARDS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")
LOGPS = ("logps/chosen", "logps/rejected")


@dataclass(frozen=True)
class TrainingObjective:
    key: str
    title: str
    summary: str
    data_kind: str  # conversation (instruction data) | pairwise | unpaired (engine/data/formats.py KINDS)
    reference: bool = False  # needs the frozen starting model beside the trained one
    sequences: int = 1  # sequences forwarded per example (a pair: chosen + rejected; KTO: completion + KL pair)
    metrics: tuple[str, ...] = ()  # logged beside loss / eval_loss
    trainer: str = ""  # the TRL trainer class ("" for sft: TuneloomTrainer)
    refuses: tuple[tuple[str, str], ...] = ()  # (method key, why it cannot train with this objective)
    fused_logps: bool = True  # the trainer computes log-probs in chunks, never the full logits (the estimate reads it)

    @property
    def preference(self) -> bool:
        return self.data_kind != "conversation"

    def reference_copy(self, method) -> bool:
        """True when the reference is a second copy of the model: methods that change the base weights, and
        adapters that are not peft's (ours). For a peft adapter TRL keeps a frozen copy of the adapter alone
        (adapter "ref") on the shared base weights: no second copy of the model."""
        return self.reference and (method.trains_base_weights or method.load_adapter is not None)

    def problems(self, cfg) -> list[str]:
        """Settings this objective cannot work with, each with the reason (checked with the config)."""
        if not self.preference:
            return []
        found = []
        name = f"train.objective {self.key}"
        if str(cfg.distill.teacher).strip():
            found.append(f"distill.teacher: distillation adds a KL term to the supervised loss; {name} has its own "
                         "loss. Clear the teacher, or distil first and start this run from that one")
        if cfg.train.ewc_lambda > 0:
            found.append(f"train.ewc_lambda: the EWC penalty is added to the supervised loss only; set it to 0 for "
                         f"{name}")
        if str(cfg.data.replay).strip():
            found.append(f"data.replay: replay mixes earlier instruction examples into this run; {name} trains on "
                         "preference data. Clear it")
        refused = dict(self.refuses)
        if cfg.method.name in refused:
            found.append(f"method.name: {cfg.method.name} cannot train with {name}: {refused[cfg.method.name]}")
        return found


# TRL's experimental ORPO/CPO trainers line the logits up with the labels position by position; methods that put
# virtual tokens in front of the input shift the logits. Every method was run with dpo and with orpo on the tiny
# model: these two failed with orpo ("Expected input batch_size (184) to match target batch_size (144)"), and simpo
# runs the same code (CPOTrainer); adalora failed with dpo (below), and kto keeps its reference the same way.
VIRTUAL_INPUT_TOKENS = ("their virtual tokens are prepended to the input, which TRL's ORPO/CPO trainers do not "
                        "account for; use dpo or kto, or a LoRA-family method")
LEGACY_REFUSALS = (("prompt_tuning", VIRTUAL_INPUT_TOKENS), ("p_tuning", VIRTUAL_INPUT_TOKENS))
# TRL keeps the reference of a peft model as a second adapter ("ref", a frozen copy of the trained one)
REFERENCE_REFUSALS = (("adalora", "peft's AdaLoRA allows one adapter per model, and TRL keeps the reference as a "
                                  "second, frozen adapter; use lora"),)




def for_config(cfg) -> TrainingObjective:
    return OBJECTIVES.get(cfg.train.objective)


OBJECTIVES.register("sft", TrainingObjective(
    "sft", "Supervised fine-tuning", "Learns the assistant's answers token by token (instruction or chat data).",
    "conversation"))
OBJECTIVES.register("dpo", TrainingObjective(
    "dpo", "DPO", "Direct Preference Optimization: raises the chosen answer's likelihood over the rejected one's, "
    "relative to the starting model (losses: sigmoid, ipo, hinge).", "pairwise", reference=True, sequences=2,
    metrics=REWARDS + LOGPS, trainer="trl.DPOTrainer", refuses=REFERENCE_REFUSALS))
OBJECTIVES.register("orpo", TrainingObjective(
    "orpo", "ORPO", "Odds Ratio Preference Optimization: the supervised loss on the chosen answer plus an "
    "odds-ratio term against the rejected one; no reference model.", "pairwise", sequences=2,
    metrics=REWARDS + LOGPS + ("nll_loss", "log_odds_ratio"), trainer="trl.experimental.orpo.ORPOTrainer",
    refuses=LEGACY_REFUSALS, fused_logps=False))
OBJECTIVES.register("simpo", TrainingObjective(
    "simpo", "SimPO", "Simple Preference Optimization: length-normalised log-likelihood margin with a target "
    "margin (gamma); no reference model.", "pairwise", sequences=2, metrics=REWARDS + LOGPS,
    trainer="trl.experimental.cpo.CPOTrainer", refuses=LEGACY_REFUSALS, fused_logps=False))
OBJECTIVES.register("kto", TrainingObjective(
    "kto", "KTO", "Kahneman-Tversky Optimization: learns from single answers marked desirable or undesirable, "
    "relative to the starting model.", "unpaired", reference=True, sequences=2,
    metrics=REWARDS + LOGPS + ("kl",), trainer="trl.KTOTrainer", refuses=REFERENCE_REFUSALS))
