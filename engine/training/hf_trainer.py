"""The transformers.Trainer that the trainer process uses, with Tuneloom's speed options.

- packing: each batch is flattened into one padding-free row; position ids restart per example,
  so examples never see each other and no compute is spent on padding. On SDPA the row is
  attended example by example (engine/training/packing.py) rather than through a row x row
  block-diagonal mask; FlashAttention handles packed rows itself. Methods that add virtual tokens
  keep padded batches, grouped by length instead.
- fused loss: the causal-LM loss is computed chunk by chunk from the last hidden states, on
  trained positions only, without materialising the logits (engine/training/fused_loss.py).
"""
from __future__ import annotations


def uses_packing(cfg, method) -> bool:
    return cfg.train.packing and method.virtual_tokens(cfg.method.params) == 0


def build_trainer(cfg, method, model, tokenizer, data, args, callbacks, optimizers=(None, None), objective=None):
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening, Trainer

    from engine.data.masking import IGNORE_INDEX
    from engine.methods.adalora import token_loss_only
    from engine.training import cpu_fsdp
    from engine.training.fused_loss import fused_forward_loss

    class TuneloomTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if "position_ids" in inputs:
                # with a KV cache object transformers stops deriving block-diagonal masks from positions
                inputs = {**inputs, "use_cache": False}
            if objective and model.training and not return_outputs:
                # distillation and/or the EWC penalty (engine/training/loss_terms.py);
                # distillation needs logits: no fused loss
                return objective.loss(self, model, inputs, num_items_in_batch,
                                      lambda m, i, n: self._task_loss(m, i, False, n))
            return self._task_loss(model, inputs, return_outputs, num_items_in_batch)

        def _task_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if cfg.train.fused_loss and model.training and not return_outputs:
                loss = fused_forward_loss(model, inputs, num_items_in_batch)
                if loss is not None:
                    return loss
            if model.training:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            with token_loss_only(model):  # an eval loss is the token loss alone, for every method
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

        def log(self, logs, start_time=None):
            if objective:
                objective.add_to_logs(self, logs)  # task_loss / ewc_penalty / distill_kl beside loss
            super().log(logs, start_time)

    def to_dataset(items):
        return Dataset.from_dict({"input_ids": [e.input_ids for e in items], "labels": [e.labels for e in items]})

    if uses_packing(cfg, method):
        collator = DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE_INDEX)
        args.include_num_input_tokens_seen = "all"  # a packed batch holds no padding at all
    else:
        collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)
        args.group_by_length = True  # batches of similar length waste less on padding
    trainer = TuneloomTrainer(
        model=model, args=args, train_dataset=to_dataset(data.train),
        eval_dataset=to_dataset(data.validation) if data.validation else None,
        data_collator=collator, processing_class=tokenizer, callbacks=callbacks, optimizers=optimizers,
    )
    cpu_fsdp.attach(trainer)  # a model sharded over CPU processes: no DDP around it, full weights at the end
    return trainer


def build_supervised(setup):
    """The sft objective's trainer (engine/core/objectives.py), with the EWC / distillation terms of the run."""
    return build_trainer(setup.cfg, setup.method, setup.model, setup.tokenizer, setup.data, setup.args,
                         setup.callbacks, optimizers=setup.optimizers, objective=setup.loss_terms)
