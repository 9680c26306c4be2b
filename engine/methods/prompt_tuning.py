"""Prompt tuning (Lester et al., 2021): learn the embeddings of a few virtual tokens prepended to
every input; the model itself is untouched. Initialised randomly or from the tokens of a text."""
from __future__ import annotations

from engine.core.registry import Param
from engine.core.structure import Structure
from engine.methods import prompt_learning as pl
from engine.methods.base import METHODS, Method

PARAMS = (
    pl.num_tokens_param(20),
    Param("init", str, "random", "Start from random embeddings or from the embeddings of init_text.",
          choices=("random", "text")),
    Param("init_text", str, "You are a helpful assistant. Answer the question.",
          "Text whose tokens initialise the virtual tokens (init: text); repeated or cut to their number."),
)


def apply(model, params: dict, structure: Structure):
    from peft import PromptTuningConfig, PromptTuningInit

    from_text = params["init"] == "text"
    return pl.apply_config(model, PromptTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=params["num_virtual_tokens"],
        prompt_tuning_init=PromptTuningInit.TEXT if from_text else PromptTuningInit.RANDOM,
        prompt_tuning_init_text=params["init_text"] if from_text else None,
        tokenizer_name_or_path=model.name_or_path if from_text else None,
    ))


METHODS.register("prompt_tuning", Method(
    key="prompt_tuning", title="Prompt tuning",
    summary="Learns only the embeddings of a few virtual tokens put before every input (thousands of "
            "parameters); works best on large models, for steering a task or format.",
    params=PARAMS, apply=apply, problems=pl.init_text_problems,
    count_trainable=lambda structure, p: p["num_virtual_tokens"] * structure.prompt_width,
    not_mergeable_reason=pl.NOT_MERGEABLE, virtual_tokens=pl.virtual_tokens, prepends_input_tokens=True,
    train_defaults={"learning_rate": 0.03},
))
