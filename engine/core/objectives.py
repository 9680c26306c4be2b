"""The training objectives (`train.objective`): what a run optimises, and what each needs.

One registry entry per objective (engine/core/registry.py OBJECTIVES), declaring everything the rest of
Tuneloom asks of it: the data kind it trains on, how its trainer is built (a `module:function` in
engine/training, resolved only when a run starts, so this declaration stays import-light and the core
depends on nothing above it), its TRL config and the settings read from the schema, the metrics it logs
beside the loss, what the memory estimate adds (sequences per example, a reference model), and the method
traits it cannot work with (engine/methods/base.py), each with the reason.

- sft: the supervised loss on the answers (TuneloomTrainer, engine/training/hf_trainer.py);
- dpo: Direct Preference Optimization (TRL DPOTrainer; losses sigmoid, ipo, hinge);
- orpo: Odds Ratio Preference Optimization, reference-free (TRL ORPOTrainer);
- simpo: Simple Preference Optimization, reference-free, length-normalised (TRL CPOTrainer, loss "simpo",
  cpo_alpha 0, as TRL documents SimPO);
- kto: Kahneman-Tversky Optimization on unpaired answers labelled desirable or not (TRL KTOTrainer);
- grpo: Group Relative Policy Optimization on prompts the model answers itself, scored by rewards (TRL
  GRPOTrainer; engine/training/grpo.py, rewards in engine/rewards).
Code asks the entry, never compares its key (tests/test_structure_rules.py checks it).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.core import grpo_settings as grpo
from engine.core.registry import METHODS, OBJECTIVES

# the metrics TRL's preference trainers log (train; "eval_" + these on evaluation), recorded in metrics.jsonl
PREFERENCE_REWARDS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")
LOGPS = ("logps/chosen", "logps/rejected")


def _no_settings(cfg) -> dict:
    return {}


def _nothing(*args) -> list:
    return []


def _never(cfg) -> bool:
    return False


def _no_tokens(cfg) -> int:
    return 0


@dataclass(frozen=True)
class TrainingObjective:
    key: str
    title: str
    summary: str
    data_kind: str  # conversation (instruction data) | pairwise | unpaired (engine/data/formats.py KINDS)
    # "module:function" that builds the trainer from a TrainingSetup (engine/training/setup.py); resolved at run time
    trainer: str
    # "module:function" that reads, checks and encodes the run's data:
    # (cfg.data, tokenizer, max_seq_len, seed, objective) -> engine.data.dataset.Prepared
    data: str = "engine.data.pairwise:prepare_preference"
    # "module:Class" of the TRL config the trainer takes ("" for transformers.TrainingArguments) ...
    trl_config: str = ""
    # ... and its settings from the run config (the schema's section of this objective)
    settings: Callable[[Any], dict] = _no_settings
    reference: bool = False  # needs the frozen starting model beside the trained one
    sequences: int = 1  # sequences forwarded per example (a pair: chosen + rejected; KTO: completion + KL pair)
    metrics: tuple[str, ...] = ()  # logged beside loss / eval_loss
    metric_prefixes: tuple[str, ...] = ()  # ... and every logged metric whose name starts so (GRPO's per-reward ones)
    # the reference model is kept for these settings too (GRPO: beta > 0)
    reference_if: Callable[[Any], bool] = _never
    # tokens each row gains while training (GRPO: the sampled completion after the prompt; the estimate reads it)
    completion_tokens: Callable[[Any], int] = _no_tokens
    # problems of the objective's own settings, with the config (GRPO: its rewards, batch size vs generations)
    check: Callable[[Any], list] = _nothing
    # problems of the data's first record for these settings (GRPO: the reference columns its rewards read)
    check_record: Callable[[Any, dict], list] = _nothing
    # (method trait, why a method that has it cannot train with this objective); traits: engine/methods/base.py
    refuses: tuple[tuple[str, str], ...] = ()
    fused_logps: bool = True  # the trainer computes log-probs in chunks, never the full logits (the estimate reads it)
    # the supervised loss is what trains: packing, the fused loss, EWC, distillation and replay apply
    supervised: bool = False
    # the loss is a likelihood-like quantity that runs away when training diverges (engine/training/divergence.py);
    # False for GRPO, whose loss is a policy-gradient surrogate near 0
    loss_rises_when_diverging: bool = True
    # the model's output: causal_lm (next-token logits) or sequence_classification (one score: a reward model)
    model_head: str = "causal_lm"

    def uses_reference(self, cfg) -> bool:
        return self.reference or self.reference_if(cfg)

    def reference_copy(self, method, cfg=None) -> bool:
        """True when the reference is a second copy of the model: methods that change the base weights, and
        adapters that are not peft's (ours). For a peft adapter TRL keeps a frozen copy of the adapter alone
        (adapter "ref") on the shared base weights: no second copy of the model."""
        reference = self.reference if cfg is None else self.uses_reference(cfg)
        return reference and (method.trains_base_weights or method.load_adapter is not None)

    def refusal(self, method) -> str:
        """Why `method` cannot train with this objective ("" when it can), from the method's traits."""
        return next((why for trait, why in self.refuses if getattr(method, trait)), "")

    def problems(self, cfg) -> list[str]:
        """Settings this objective cannot work with, each with the reason (checked with the config)."""
        found = []
        name = f"train.objective {self.key}"
        if not self.supervised:
            if str(cfg.distill.teacher).strip():
                found.append(f"distill.teacher: distillation adds a KL term to the supervised loss; {name} has its "
                             "own loss. Clear the teacher, or distil first and start this run from that one")
            if cfg.train.ewc_lambda > 0:
                found.append(f"train.ewc_lambda: the EWC penalty is added to the supervised loss only; set it to 0 "
                             f"for {name}")
            if str(cfg.data.replay).strip():
                found.append(f"data.replay: replay mixes earlier instruction examples into this run; {name} trains "
                             "on other data. Clear it")
        if cfg.method.name in METHODS:
            why = self.refusal(METHODS.get(cfg.method.name))
            if why:
                found.append(f"method.name: {cfg.method.name} cannot train with {name}: {why}")
        return found + self.check(cfg)


# TRL's experimental ORPO/CPO trainers line the logits up with the labels position by position; methods that put
# virtual tokens in front of the input shift the logits. Every method was run with dpo and with orpo on the tiny
# model: prompt tuning and P-tuning failed with orpo ("Expected input batch_size (184) to match target batch_size
# (144)"), and simpo runs the same code (CPOTrainer); adalora failed with dpo (below), and kto keeps its reference
# the same way.
VIRTUAL_INPUT_TOKENS = ("prepends_input_tokens", "their virtual tokens are prepended to the input, which TRL's "
                        "ORPO/CPO trainers do not account for; use dpo or kto, or a LoRA-family method")
VIRTUAL_INPUT_TOKENS_GRPO = ("prepends_input_tokens", "their virtual tokens are prepended to the input, which TRL's "
                             "GRPO trainer does not account for when it reads the completion's log-probabilities; "
                             "use a LoRA-family method")
# TRL keeps the reference of a peft model as a second adapter ("ref", a frozen copy of the trained one)
ONE_ADAPTER = ("single_adapter", "peft's AdaLoRA allows one adapter per model, and TRL keeps the reference as a "
                                 "second, frozen adapter; use lora")


def for_config(cfg) -> TrainingObjective:
    return OBJECTIVES.get(cfg.train.objective)


def _dpo(cfg) -> dict:
    # the reference forward runs beside the policy's (precompute_ref_log_probs would need one more pass)
    p = cfg.preference
    return dict(beta=p.beta, loss_type=[p.loss_type], max_length=cfg.train.max_seq_len, disable_dropout=True,
                precompute_ref_log_probs=False)


def _kto(cfg) -> dict:
    p = cfg.preference
    return dict(beta=p.beta, desirable_weight=p.desirable_weight, undesirable_weight=p.undesirable_weight,
                max_length=cfg.train.max_seq_len, disable_dropout=True)


def _orpo(cfg) -> dict:
    n = cfg.train.max_seq_len
    return dict(beta=cfg.preference.beta, max_length=n, max_completion_length=n, disable_dropout=True)


def _simpo(cfg) -> dict:
    n, p = cfg.train.max_seq_len, cfg.preference
    return dict(loss_type="simpo", cpo_alpha=0.0, beta=p.beta, simpo_gamma=p.simpo_gamma, max_length=n,
                max_completion_length=n, disable_dropout=True)


PREFERENCE = "engine.training.preference"
OBJECTIVES.register("sft", TrainingObjective(
    "sft", "Supervised fine-tuning", "Learns the assistant's answers token by token (instruction or chat data).",
    "conversation", trainer="engine.training.hf_trainer:build_supervised",
    data="engine.data.dataset:prepare_dataset", supervised=True))
OBJECTIVES.register("dpo", TrainingObjective(
    "dpo", "DPO", "Direct Preference Optimization: raises the chosen answer's likelihood over the rejected one's, "
    "relative to the starting model (losses: sigmoid, ipo, hinge).", "pairwise", trainer=f"{PREFERENCE}:build_dpo",
    trl_config="trl:DPOConfig", settings=_dpo, reference=True, sequences=2, metrics=PREFERENCE_REWARDS + LOGPS,
    refuses=(ONE_ADAPTER,)))
OBJECTIVES.register("orpo", TrainingObjective(
    "orpo", "ORPO", "Odds Ratio Preference Optimization: the supervised loss on the chosen answer plus an "
    "odds-ratio term against the rejected one; no reference model.", "pairwise", trainer=f"{PREFERENCE}:build_orpo",
    trl_config="trl.experimental.orpo:ORPOConfig", settings=_orpo, sequences=2,
    metrics=PREFERENCE_REWARDS + LOGPS + ("nll_loss", "log_odds_ratio"), refuses=(VIRTUAL_INPUT_TOKENS,),
    fused_logps=False))
OBJECTIVES.register("simpo", TrainingObjective(
    "simpo", "SimPO", "Simple Preference Optimization: length-normalised log-likelihood margin with a target "
    "margin (gamma); no reference model.", "pairwise", trainer=f"{PREFERENCE}:build_simpo",
    trl_config="trl.experimental.cpo:CPOConfig", settings=_simpo, sequences=2, metrics=PREFERENCE_REWARDS + LOGPS,
    refuses=(VIRTUAL_INPUT_TOKENS,), fused_logps=False))
OBJECTIVES.register("kto", TrainingObjective(
    "kto", "KTO", "Kahneman-Tversky Optimization: learns from single answers marked desirable or undesirable, "
    "relative to the starting model.", "unpaired", trainer=f"{PREFERENCE}:build_kto", trl_config="trl:KTOConfig",
    settings=_kto, reference=True, sequences=2, metrics=PREFERENCE_REWARDS + LOGPS + ("kl",),
    refuses=(ONE_ADAPTER,)))
OBJECTIVES.register("grpo", TrainingObjective(
    "grpo", "GRPO", "Group Relative Policy Optimization: samples several answers per prompt, scores them with the "
    "rewards you pick, and raises the likelihood of the better ones (reinforcement learning; no answers needed).",
    "prompt", trainer="engine.training.grpo:build_grpo", data="engine.data.prompts:prepare_prompts",
    trl_config="trl:GRPOConfig", settings=grpo.trl_settings, metrics=grpo.METRICS, metric_prefixes=("rewards/",),
    reference_if=grpo.keeps_reference, completion_tokens=grpo.completion_tokens, check=grpo.problems,
    check_record=grpo.record_problems, refuses=(VIRTUAL_INPUT_TOKENS_GRPO,), fused_logps=False,
    loss_rises_when_diverging=False))


def _reward(cfg) -> dict:
    return dict(max_length=cfg.train.max_seq_len, disable_dropout=True)


def _reward_problems(cfg) -> list[str]:
    method = METHODS.get(cfg.method.name) if cfg.method.name in METHODS else None
    if method is not None and not method.trains_base_weights:
        return [f"method.name: {cfg.method.name} cannot train with train.objective reward: the reward model's score "
                "head is new and must train with it, and the result must load as a model folder; use full or freeze"]
    return []


OBJECTIVES.register("reward", TrainingObjective(
    "reward", "Reward model", "Trains a reward model on preference pairs: one score per answer, higher for the "
    "chosen one (Bradley-Terry); the result serves as GRPO's reward_model reward.", "pairwise",
    trainer="engine.training.reward_model:build_reward", trl_config="trl:RewardConfig", settings=_reward,
    sequences=2, metrics=("accuracy", "margin", "mean_reward"), check=_reward_problems,
    model_head="sequence_classification", fused_logps=False))
