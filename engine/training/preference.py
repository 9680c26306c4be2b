"""Preference objectives (DPO, ORPO, SimPO, KTO) as TRL trainers inside Tuneloom's trainer process.

TRL's trainers are transformers.Trainer subclasses, so the run-folder callback, checkpoints, resume,
the STOP file and accelerate all work as for supervised runs. What is ours:
- the data: examples are tokenised by engine/data/pairwise.py (the Data tab's preview is exactly what
  trains), so each trainer's own tokenisation is bypassed: DPO's and KTO's `_prepare_dataset`, and the
  experimental ORPO/CPO trainers' `tokenize_row`, return our token ids in the layout TRL expects;
- the reference model: for a peft adapter (LoRA family, IA3, prompt methods) TRL adds a frozen copy of the
  adapter as it starts ("ref") and runs the shared base weights with it: no second copy of the model; for
  methods that train the base weights, or adapters that are not peft's (ours), it is a frozen copy of the
  model as training starts (`reference_model`).
Losses, metrics and the reference forward are TRL's.
"""
from __future__ import annotations

from engine.data.masking import IGNORE_INDEX
from engine.training.objectives import TrainingObjective


def trl_arguments(cfg, objective: TrainingObjective) -> tuple[type, dict]:
    """The TRL config class of the objective and its settings from `cfg.preference`."""
    p, max_len = cfg.preference, cfg.train.max_seq_len
    if objective.key == "dpo":
        from trl import DPOConfig

        # the reference forward runs beside the policy's (precompute_ref_log_probs would need one more pass)
        return DPOConfig, dict(beta=p.beta, loss_type=[p.loss_type], max_length=max_len, disable_dropout=True,
                               precompute_ref_log_probs=False)
    if objective.key == "kto":
        from trl import KTOConfig

        return KTOConfig, dict(beta=p.beta, desirable_weight=p.desirable_weight,
                               undesirable_weight=p.undesirable_weight, max_length=max_len, disable_dropout=True)
    if objective.key == "orpo":
        from trl.experimental.orpo import ORPOConfig

        return ORPOConfig, dict(beta=p.beta, max_length=max_len, max_completion_length=max_len,
                                disable_dropout=True)
    if objective.key == "simpo":
        from trl.experimental.cpo import CPOConfig

        return CPOConfig, dict(loss_type="simpo", cpo_alpha=0.0, beta=p.beta, simpo_gamma=p.simpo_gamma,
                               max_length=max_len, max_completion_length=max_len, disable_dropout=True)
    raise ValueError(f"{objective.key} is not a preference objective")


def reference_model(model, method, objective: TrainingObjective, log=print):
    """The frozen reference, or None where TRL needs none (no reference, or a peft adapter it switches off)."""
    if not objective.reference:
        log(f"{objective.title}: no reference model")
        return None
    if not objective.reference_copy(method):
        log(f"{objective.title}: reference = the base weights with a frozen copy of the {method.key} adapter as it "
            "starts (TRL's 'ref' adapter; no second copy of the model)")
        return None
    import copy

    log(f"{objective.title}: reference = a frozen copy of the model as training starts ({method.key} changes "
        "weights that cannot be switched off)")
    reference = copy.deepcopy(model).eval()
    reference.requires_grad_(False)
    return reference


def _columns(items, objective: TrainingObjective) -> dict:
    if objective.data_kind == "unpaired":
        return {"prompt_ids": [e.prompt_ids for e in items], "completion_ids": [e.chosen_ids for e in items],
                "label": [bool(e.label) for e in items]}
    return {"prompt_ids": [e.prompt_ids for e in items], "chosen_ids": [e.chosen_ids for e in items],
            "rejected_ids": [e.rejected_ids for e in items]}


def _legacy_row(feature: dict) -> dict:
    """ORPO/CPO's tokenize_row output (prompt, prompt + chosen, prompt + rejected, prompt labels -100) from our ids;
    unlike TRL's it adds no BOS/EOS: the chat template already rendered them."""
    prompt = feature["prompt_ids"]
    row = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
    for side in ("chosen", "rejected"):
        answer = feature[f"{side}_ids"]
        row[f"{side}_input_ids"] = prompt + answer
        row[f"{side}_attention_mask"] = [1] * (len(prompt) + len(answer))
        row[f"{side}_labels"] = [IGNORE_INDEX] * len(prompt) + answer
    return row


def trainer_class(objective: TrainingObjective):
    """The TRL trainer of the objective, taking our token ids instead of tokenising text itself."""
    if objective.key == "dpo":
        from trl import DPOTrainer

        class TuneloomDPOTrainer(DPOTrainer):
            def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
                return dataset  # prompt_ids / chosen_ids / rejected_ids from engine/data/pairwise.py

        return TuneloomDPOTrainer
    if objective.key == "kto":
        from trl import KTOTrainer

        class TuneloomKTOTrainer(KTOTrainer):
            def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
                if not self.calculate_KL:
                    return dataset

                # written out because TRL's step is inside its tokenising _prepare_dataset: the KL term is
                # estimated on mismatched pairs, completions rotated by one within each batch
                def add_kl_completion_ids(examples):
                    examples["KL_completion_ids"] = [examples["completion_ids"][-1]] + examples["completion_ids"][:-1]
                    return examples

                return dataset.map(add_kl_completion_ids, batched=True, batch_size=args.per_device_train_batch_size)

        return TuneloomKTOTrainer
    if objective.key in ("orpo", "simpo"):
        if objective.key == "orpo":
            from trl.experimental.orpo import ORPOTrainer as Base
        else:
            from trl.experimental.cpo import CPOTrainer as Base

        class TuneloomLegacyTrainer(Base):
            def tokenize_row(self, feature, model=None):
                return _legacy_row(feature)

        return TuneloomLegacyTrainer
    raise ValueError(f"{objective.key} is not a preference objective")


def build_preference_trainer(objective: TrainingObjective, method, model, tokenizer, data, args, callbacks,
                             optimizers=(None, None), log=print):
    """A TRL trainer for `objective` on our encoded preference data (engine/data/pairwise.py)."""
    from datasets import Dataset

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train = Dataset.from_dict(_columns(data.train, objective))
    evaluation = Dataset.from_dict(_columns(data.validation, objective)) if data.validation else None
    kwargs = dict(model=model, args=args, train_dataset=train, eval_dataset=evaluation, processing_class=tokenizer,
                  callbacks=callbacks, optimizers=optimizers)
    if objective.key in ("dpo", "kto"):
        kwargs["ref_model"] = reference_model(model, method, objective, log)
    else:
        reference_model(model, method, objective, log)  # says there is none
    return trainer_class(objective)(**kwargs)


def drop_reference_adapter(model) -> None:
    """The result is the trained adapter only: TRL's frozen "ref" copy (kept in checkpoints for resuming) is
    removed before the run saves it."""
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")
