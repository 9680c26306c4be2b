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


def trl_arguments(cfg, objective) -> tuple[type, dict]:
    """The TRL config class the objective declares, and its settings from the run config."""
    from engine.training.setup import resolve

    return resolve(objective.trl_config), objective.settings(cfg)


def reference_model(model, method, objective, log=print):
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


def _pairs(items) -> dict:
    return {"prompt_ids": [e.prompt_ids for e in items], "chosen_ids": [e.chosen_ids for e in items],
            "rejected_ids": [e.rejected_ids for e in items]}


def _unpaired(items) -> dict:
    return {"prompt_ids": [e.prompt_ids for e in items], "completion_ids": [e.chosen_ids for e in items],
            "label": [bool(e.label) for e in items]}


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


def build_trl_trainer(setup, trainer_class, columns, reference: bool):
    """A TRL trainer on our encoded preference data (engine/data/pairwise.py), `columns` of each split; the
    tokenizer has its pad token already (engine/core/models.load_tokenizer)."""
    from datasets import Dataset

    tokenizer, data = setup.tokenizer, setup.data
    kwargs = dict(model=setup.model, args=setup.args, train_dataset=Dataset.from_dict(columns(data.train)),
                  eval_dataset=Dataset.from_dict(columns(data.validation)) if data.validation else None,
                  processing_class=tokenizer, callbacks=setup.callbacks, optimizers=setup.optimizers)
    ref = reference_model(setup.model, setup.method, setup.objective, setup.log)  # logs which reference, if any
    if reference:
        kwargs["ref_model"] = ref
    return trainer_class(**kwargs)


def build_dpo(setup):
    from trl import DPOTrainer

    class TuneloomDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset  # prompt_ids / chosen_ids / rejected_ids from engine/data/pairwise.py

    return build_trl_trainer(setup, TuneloomDPOTrainer, _pairs, reference=True)


def build_kto(setup):
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

    return build_trl_trainer(setup, TuneloomKTOTrainer, _unpaired, reference=True)


def _legacy(base):
    class TuneloomLegacyTrainer(base):
        def tokenize_row(self, feature, model=None):
            return _legacy_row(feature)

    return TuneloomLegacyTrainer


def build_orpo(setup):
    from trl.experimental.orpo import ORPOTrainer

    return build_trl_trainer(setup, _legacy(ORPOTrainer), _pairs, reference=False)


def build_simpo(setup):
    from trl.experimental.cpo import CPOTrainer

    return build_trl_trainer(setup, _legacy(CPOTrainer), _pairs, reference=False)


def drop_reference_adapter(model) -> None:
    """The result is the trained adapter only: TRL's frozen "ref" copy (kept in checkpoints for resuming) is
    removed before the run saves it; a no-op where no objective added one."""
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")
