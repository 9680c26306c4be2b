"""P-tuning v2's prefixes start from the model's own keys and values on init_text (engine/methods/p_tuning_v2.py):
by definition, the model with its fresh prefix gives the same logits as the base model reading init_text's
tokens first. On two families (Llama, Qwen2 with q/k/v biases and another head layout)."""
from __future__ import annotations

import pytest
import torch
from families import build_family
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine.core.describe import structure_of
from engine.methods import METHODS


@pytest.fixture(params=["llama", "qwen2"])
def model_dir(request, tiny_model) -> str:
    return str(build_family(request.param, tiny_model))


def fresh(model_dir: str, **params):
    method = METHODS.get("p_tuning_v2")
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    return method.apply(base, {**method.defaults(), **params}, structure_of(model_dir))


def test_a_fresh_prefix_is_the_model_reading_init_text_first(model_dir):
    torch.manual_seed(0)
    model = fresh(model_dir, num_virtual_tokens=7, init_text="Answer the question below, briefly.")
    ids = AutoTokenizer.from_pretrained(model_dir)("Answer the question below, briefly.",
                                                   add_special_tokens=False)["input_ids"]
    ids = (ids * 7)[:7]
    question = [5, 6, 7, 8, 9]
    with torch.no_grad():
        tuned = model(input_ids=torch.tensor([question])).logits[0]
        plain = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        read_first = plain(input_ids=torch.tensor([ids + question])).logits[0, -len(question):]
        assert torch.allclose(tuned, read_first, atol=1e-4)
        # peft's random start is another model altogether
        random_start = fresh(model_dir, num_virtual_tokens=7, init="random")
        assert not torch.allclose(random_start(input_ids=torch.tensor([question])).logits[0], read_first, atol=1e-2)
    table = model.prompt_encoder["default"].embedding.weight
    assert table.requires_grad and table.shape[0] == 7  # still the trained table, only its start changed


def test_empty_init_text_is_refused_by_name():
    problems = METHODS.get("p_tuning_v2").check({"init": "text", "init_text": "  "}, None, None, None)
    assert any("method.init_text" in p for p in problems)


def test_init_text_without_a_tokenizer_says_to_use_random():
    from transformers import LlamaConfig, LlamaForCausalLM

    bare = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, vocab_size=64))
    method = METHODS.get("p_tuning_v2")
    with pytest.raises(ValueError, match="method.init random"):
        method.apply(bare, method.defaults(), None)
