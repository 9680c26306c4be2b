"""Shared pieces of the virtual-token methods (prompt tuning, P-tuning, prefix tuning, P-tuning v2).

peft prepends the virtual tokens inside its forward: for prompt tuning and P-tuning it prepends
their embeddings, extends the attention mask with ones and the labels with -100, so the labels
stay aligned with the real tokens; prefix methods add key/value pairs to every layer and extend
only the attention mask. The trainer therefore keeps padded (unpacked) batches for these methods
(`virtual_tokens` > 0) and uses peft's own forward for the loss.
"""
from __future__ import annotations

from engine.core.arch import Arch
from engine.core.registry import Param

NOT_MERGEABLE = ("its virtual tokens are extra inputs to the model, not a change to its weights; "
                 "it is served and exported as an adapter on the base model")


def num_tokens_param(default: int = 20) -> Param:
    return Param("num_virtual_tokens", int, default, "Virtual tokens added to every sequence: more is more "
                 "capacity and a longer (slower) sequence.", min=1, max=1024)


def apply_config(model, config):
    from peft import get_peft_model

    return get_peft_model(model, config)


def kv_dim(arch: Arch) -> int:
    """Width of one layer's keys (or values): what a prefix provides per layer and token."""
    return arch.kv_heads * arch.head_dim


def virtual_tokens(params: dict) -> int:
    return params["num_virtual_tokens"]


# measured with bench/memory_accuracy.py (transformers 5.23, peft 0.21): every prefix run with
# checkpointing failed with "The size of tensor a (128) must match the size of tensor b (148)"
NO_CHECKPOINTING = ("its prefix reaches attention as a key/value cache, which transformers drops inside "
                    "checkpointed layers while the attention mask still counts it")
