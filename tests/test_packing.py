"""Packed (padding-free) batches give exactly the loss of the same examples trained one by one."""
import torch
from transformers import AutoModelForCausalLM, DataCollatorWithFlattening

from engine.training.fused_loss import fused_forward_loss


def test_packed_examples_do_not_see_each_other(tiny_model):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    examples = []
    for length in (11, 23, 7):
        ids = torch.randint(0, model.config.vocab_size, (length,)).tolist()
        labels = [-100] * 3 + ids[3:]
        examples.append({"input_ids": ids, "labels": labels})

    summed, counted = 0.0, 0
    with torch.no_grad():
        for ex in examples:  # one at a time: sum of token losses
            out = model(input_ids=torch.tensor([ex["input_ids"]]), labels=torch.tensor([ex["labels"]]))
            n = sum(1 for x in ex["labels"][1:] if x != -100)
            summed += out.loss.item() * n
            counted += n
        packed = DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)(examples)
        assert "attention_mask" not in packed and packed["input_ids"].shape == (1, 41)
        assert packed["position_ids"][0, :12].tolist() == list(range(11)) + [0]  # positions restart
        # use_cache=False as the trainer passes it: a cache object disables packed-sequence masks
        plain = model(**packed, use_cache=False).loss.item()
        fused = fused_forward_loss(model, packed).item()
    assert abs(plain - summed / counted) < 1e-5
    leaky = model(**packed).loss.item()  # the pitfall the trainer avoids: examples see each other
    assert abs(leaky - summed / counted) > 1e-3
    assert abs(fused - summed / counted) < 1e-5


def test_per_example_attention_matches_the_masked_path_and_its_gradients(tiny_model):
    """engine/training/packing.py: same loss and gradients as the block-diagonal mask, one SDPA call per example."""
    from engine.training import packing

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    examples = []
    for length in (11, 23, 7):
        ids = torch.randint(0, model.config.vocab_size, (length,)).tolist()
        examples.append({"input_ids": ids, "labels": [-100] * 3 + ids[3:]})
    packed = DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)(examples)

    def loss_and_grads():
        model.zero_grad()
        loss = fused_forward_loss(model, packed)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    masked_loss, masked_grads = loss_and_grads()
    assert model.config._attn_implementation == "sdpa"
    message = packing.enable(model, max_seq_len=64)
    assert model.config._attn_implementation == packing.NAME, message
    assert "one SDPA call per example" in message
    calls = []
    original = torch.nn.functional.scaled_dot_product_attention
    torch.nn.functional.scaled_dot_product_attention = \
        lambda q, *a, **k: calls.append(q.shape[2]) or original(q, *a, **k)
    try:
        split_loss, split_grads = loss_and_grads()
    finally:
        torch.nn.functional.scaled_dot_product_attention = original
    assert calls[:3] == [11, 23, 7]  # each example attends only within itself, no row x row work
    assert abs(split_loss - masked_loss) < 1e-5
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(split_grads, masked_grads))

    # a padded batch (chat, plain eval) under the same implementation still gets its padding mask
    padded = {"input_ids": torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]]),
              "attention_mask": torch.tensor([[1] * 4, [1, 1, 0, 0]])}
    with torch.no_grad():
        ours = model(**padded).logits
        packing.disable(model)
        assert model.config._attn_implementation == "sdpa"
        stock = model(**padded).logits
    assert torch.allclose(ours, stock, atol=1e-5)
