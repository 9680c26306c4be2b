"""P-tuning v2 (Liu et al., 2022): deep prompts, i.e. learned key/value prefixes on every layer,
trained directly without a reparameterisation MLP (peft's prefix tuning, prefix_projection off).

peft starts the prefixes from random normal values: the model then attends to noise on every layer, and on real
instructions its loss starts far above the base model's (5.36 against 1.728 on alpaca_en_demo) and had not caught
up after 60 steps (bench/results/methods_real_cpu.md). `init: text` starts them instead from the model's own keys
and values on the tokens of `init_text` (the initialisation Li & Liang found stable for prefix tuning): the model
begins as if it had read that text first. peft has no such option, so it is written here (`activation_init`).
"""
from __future__ import annotations

from engine.core.registry import Param
from engine.core.structure import Structure
from engine.methods import prefix_tuning
from engine.methods import prompt_learning as pl
from engine.methods.base import METHODS, Method

PARAMS = (
    pl.num_tokens_param(20),
    Param("init", str, "text", "Start the prefixes from the model's own keys and values on init_text, or from "
          "random values (peft's default).", choices=("text", "random")),
    Param("init_text", str, "Below is an instruction that describes a task. Write a response that appropriately "
          "completes the request.", "Text whose keys and values start the prefixes (init: text); repeated or cut "
          "to the number of virtual tokens."),
)


def activation_init(peft_model, text: str) -> None:
    """Fill the prefix table with the base model's keys and values of `text`'s first tokens.

    peft reads the table (num_virtual_tokens x num_layers*2*width) as, for virtual token t, [layer 0 keys, layer 0
    values, layer 1 keys, ...], each heads x head_dim (peft_model.get_prompt). The keys are taken from the cache
    after the model's own position encoding at positions 0..n-1, where the prefix sits."""
    import torch
    from transformers import AutoTokenizer

    config = peft_model.active_peft_config
    n, heads = config.num_virtual_tokens, config.num_attention_heads
    source = peft_model.get_base_model().name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:  # a model built from a bare config has no name, hence no tokenizer
        raise ValueError(f"method.init text reads init_text with the model's tokenizer, and none loads from "
                         f"{source!r} ({error}); use method.init random") from error
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = (ids * (n // max(len(ids), 1) + 1))[:n]
    table = peft_model.prompt_encoder[peft_model.active_adapter].embedding.weight
    with torch.no_grad(), peft_model.disable_adapter():
        cache = peft_model.get_base_model()(input_ids=torch.tensor([ids], device=table.device),
                                            use_cache=True).past_key_values
        layers = [(layer.keys[0], layer.values[0]) for layer in cache.layers]  # each heads x n x head_dim
        prefix = torch.stack([kv for pair in layers for kv in pair])  # layers*2 x heads x n x head_dim
        if prefix.shape[1] != heads or prefix.shape[0] != config.num_layers * 2:
            raise ValueError(f"the model's cache ({tuple(prefix.shape)}) does not match peft's prefix layout "
                             f"({config.num_layers * 2} x {heads} heads); use method.init random")
        table.copy_(prefix.permute(2, 0, 1, 3).reshape(n, -1).to(table.dtype))


def apply(model, params: dict, structure: Structure):
    peft_model = pl.apply_config(model, prefix_tuning.prefix_config(params, False))
    if params["init"] == "text":
        activation_init(peft_model, params["init_text"])
    return peft_model


METHODS.register("p_tuning_v2", Method(
    key="p_tuning_v2", title="P-tuning v2 (deep prompts)",
    summary="Learned prompts on every layer, trained directly (no MLP); close to LoRA on many tasks "
            "with the model untouched.",
    params=PARAMS, apply=apply, problems=pl.init_text_problems,
    count_trainable=lambda structure, p: prefix_tuning.prefix_count(structure, p["num_virtual_tokens"], False, 0),
    not_mergeable_reason=pl.NOT_MERGEABLE, virtual_tokens=pl.virtual_tokens, virtual_keys_only=True,
    no_checkpointing_reason=pl.NO_CHECKPOINTING, unavailable=pl.prefix_unavailable,
    train_defaults={"learning_rate": 0.01},
))
