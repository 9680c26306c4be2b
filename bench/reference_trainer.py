"""The reference training loop for bench/throughput.py: plain transformers.Trainer + peft LoRA with
dynamic padding, as the libraries' own examples do it. It trains on exactly the tokens and labels
Tuneloom would (same encoding), so only the training loop differs.

    python bench/reference_trainer.py CONFIG.yaml OUT.json
"""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(config_path: str, out_path: str) -> None:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    from engine.core.config import RunConfig
    from engine.core.describe import structure_of
    from engine.core.models import load_tokenizer, prepare_model
    from engine.data.dataset import prepare_dataset
    from engine.methods import targets

    cfg = RunConfig.load(config_path)
    tokenizer = load_tokenizer(cfg.model, template=cfg.data.template)
    data = prepare_dataset(cfg.data, tokenizer, cfg.train.max_seq_len, cfg.train.seed)
    dataset = Dataset.from_dict({"input_ids": [e.input_ids for e in data.train],
                                 "labels": [e.labels for e in data.train]})
    model = AutoModelForCausalLM.from_pretrained(str(prepare_model(cfg.model)), dtype=torch.float32)
    p = cfg.method.params
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=p["r"], lora_alpha=p["alpha"],
                                             lora_dropout=p["dropout"],
                                             target_modules=targets.resolve(
                                                 p["target_modules"], structure_of(cfg.model),
                                                 experts_ok=False).module_names()))
    marks = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            marks.append((state.global_step, time.time(), state.num_input_tokens_seen))

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append((state.global_step, logs["loss"]))

    losses: list = []
    t = cfg.train
    args = TrainingArguments(
        output_dir=str(Path(out_path).with_suffix(".ckpt")), max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size, gradient_accumulation_steps=t.gradient_accumulation,
        learning_rate=t.learning_rate, warmup_steps=t.warmup_steps, lr_scheduler_type=t.scheduler,
        bf16=t.precision == "bf16", logging_steps=1, save_strategy="no", report_to="none",
        seed=t.seed, data_seed=t.seed, include_num_input_tokens_seen="non_padding", use_cpu=True,
        disable_tqdm=True, remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
                      callbacks=[Clock()])
    trainer.train()
    Path(out_path).write_text(json.dumps({
        "marks": marks, "losses": losses,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
