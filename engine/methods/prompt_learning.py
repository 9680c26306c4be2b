"""Shared pieces of the virtual-token methods (prompt tuning, P-tuning, prefix tuning, P-tuning v2).

peft prepends the virtual tokens inside its forward: for prompt tuning and P-tuning it prepends
their embeddings, extends the attention mask with ones and the labels with -100, so the labels
stay aligned with the real tokens; prefix methods add key/value pairs to every layer and extend
only the attention mask. The trainer therefore keeps padded (unpacked) batches for these methods
(`virtual_tokens` > 0) and uses peft's own forward for the loss.
"""
from __future__ import annotations

from engine.core.registry import Param
from engine.core.structure import Structure

NOT_MERGEABLE = ("its virtual tokens are extra inputs to the model, not a change to its weights; "
                 "it is served and exported as an adapter on the base model")


def num_tokens_param(default: int = 20) -> Param:
    return Param("num_virtual_tokens", int, default, "Virtual tokens added to every sequence: more is more "
                 "capacity and a longer (slower) sequence.", min=1, max=1024)


def apply_config(model, config):
    from peft import get_peft_model

    return get_peft_model(model, config)


def kv_dim(structure: Structure) -> int:
    """Width of one layer's keys (or values) as peft sizes a prefix (grouped-query aware): per layer and token."""
    return structure.prefix_width


def virtual_tokens(params: dict) -> int:
    return params["num_virtual_tokens"]


def position_problems(params: dict, train, structure: Structure | None, steps: int | None) -> list[str]:
    """Virtual tokens take positions too: the longest sequence plus them must fit the model's positions."""
    if structure is None or train is None:
        return []
    longest = train.max_seq_len + params["num_virtual_tokens"]
    if longest <= structure.max_positions:
        return []
    return [f"method.num_virtual_tokens: train.max_seq_len ({train.max_seq_len}) + {params['num_virtual_tokens']} "
            f"virtual tokens = {longest} positions, above this model's {structure.max_positions}; lower one of them"]


def init_text_problems(params: dict, train, structure: Structure | None, steps: int | None) -> list[str]:
    """The position checks, and an init_text to start from when `init` is text (prompt tuning, P-tuning v2)."""
    found = position_problems(params, train, structure, steps)
    if params["init"] == "text" and not params["init_text"].strip():
        found.append("method.init_text: empty, but init is text; write the text or use init: random")
    return found


def prefix_unavailable(structure: Structure) -> str | None:
    if structure.prefix_width:
        return None
    return "peft cannot size a key/value prefix for this model from its config (no hidden size or head counts)"


# measured with bench/memory_accuracy.py (transformers 5.23, peft 0.21): every prefix run with
# checkpointing failed with "The size of tensor a (128) must match the size of tensor b (148)"
NO_CHECKPOINTING = ("its prefix reaches attention as a key/value cache, which transformers drops inside "
                    "checkpointed layers while the attention mask still counts it")
