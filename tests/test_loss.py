"""The chunked loss gives the same loss and gradients as transformers' own loss."""
import pytest
import torch
from transformers import AutoModelForCausalLM

from engine.training.fused_loss import chunked_causal_lm_loss, fused_loss_available


@pytest.mark.parametrize("train_head", [False, True])
def test_same_loss_and_gradients_as_the_plain_loss(tiny_model, train_head):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert fused_loss_available(model)
    model.lm_head.weight.requires_grad_(train_head)
    ids = torch.randint(0, model.config.vocab_size, (2, 24))
    labels = ids.clone()
    labels[:, :9] = -100  # a masked prompt
    labels[1, 20:] = -100

    plain = model(input_ids=ids, labels=labels).loss
    plain.backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    hidden = model.model(input_ids=ids).last_hidden_state
    chunked = chunked_causal_lm_loss(hidden, model.lm_head.weight, labels, chunk_size=7)
    chunked.backward()
    torch.testing.assert_close(chunked, plain, atol=1e-5, rtol=1e-5)
    assert set(reference) == {n for n, p in model.named_parameters() if p.grad is not None}
    for name, grad in reference.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-5, rtol=1e-4)


def test_bf16_autocast_matches_within_bf16_tolerance(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    ids = torch.randint(0, model.config.vocab_size, (1, 32))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = model(input_ids=ids, labels=ids).loss
        hidden = model.model(input_ids=ids).last_hidden_state
        chunked = chunked_causal_lm_loss(hidden, model.lm_head.weight, ids)
    torch.testing.assert_close(chunked.float(), plain.float(), atol=2e-2, rtol=1e-2)


def test_a_compiled_model_takes_the_plain_loss_so_compilation_is_not_bypassed(tiny_model):
    """The fused path calls the inner decoder; for a torch.compile'd model that would be the uncompiled one."""
    from engine.training.fused_loss import causal_lm

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert causal_lm(model) is model
    assert causal_lm(torch.compile(model)) is None  # wrapping is lazy: nothing is compiled here
