"""A reward model as a GRPO reward (engine/rewards/builtin.py `reward_model`): a sequence-classification model
folder with one output (num_labels 1), scoring each prompt + answer rendered with its chat template, as TRL's
GRPOTrainer scores with a reward model it is given by name."""
from __future__ import annotations

from pathlib import Path

from engine.core.config import ConfigError


def load_scorer(model: str, setup):
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from engine.core.workspace import resolve_model

    folder = Path(resolve_model(str(model)))
    if not (folder / "config.json").is_file():
        raise ConfigError([f"grpo.rewards: reward_model {model!r} is not a model folder with config.json (a "
                           "sequence-classification model with one output)"])
    if getattr(AutoConfig.from_pretrained(folder), "num_labels", None) != 1:
        raise ConfigError([f"grpo.rewards: reward_model {folder} does not have one output (num_labels 1): it is not "
                           "a reward model"])
    scorer = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    scorer.requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    scorer.config.pad_token_id = tokenizer.pad_token_id
    tokenizer.padding_side = "right"
    setup.log(f"reward reward_model: {folder}")

    def score(prompts, completions, references):
        texts = []
        for prompt, answer in zip(prompts, completions):
            if isinstance(prompt, list):
                texts.append(tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": answer}],
                                                           tokenize=False))
            else:
                texts.append(prompt + answer)
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            return scorer(**batch).logits[:, 0].float().tolist()

    return score


def build_reward(setup):
    """TRL's RewardTrainer on our encoded pairs (engine/data/pairwise.py): each answer after its prompt, as the
    Data tab shows them, scored by the sequence-classification head."""
    from trl import RewardTrainer

    from engine.training.preference import build_trl_trainer

    setup.model.config.pad_token_id = setup.tokenizer.pad_token_id

    def columns(items):
        return {"chosen_ids": [e.prompt_ids + e.chosen_ids for e in items],
                "rejected_ids": [e.prompt_ids + e.rejected_ids for e in items]}

    return build_trl_trainer(setup, RewardTrainer, columns, reference=False)
