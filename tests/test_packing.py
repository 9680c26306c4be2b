"""Packed (padding-free) batches give exactly the loss of the same examples trained one by one."""
import torch
from transformers import AutoModelForCausalLM, DataCollatorWithFlattening

from engine.loss import fused_forward_loss


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
