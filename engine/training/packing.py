"""Padding-free attention for packed rows on SDPA: one causal SDPA call per example of the row.

When a packed row (position ids restarting at every example) reaches transformers' "sdpa"
attention, transformers builds a block-diagonal boolean mask from the positions and SDPA still
computes every (query, key) pair of the whole row before the mask discards the cross-example
ones: four examples of ~300 tokens packed into one row cost ~4x the attention work of attending
within each example, plus a row x row mask. FlashAttention's varlen kernels avoid this on CUDA;
SDPA (every CPU, and GPUs without flash-attn) has no varlen entry point. No library offers one, so
this module is ours: it registers an attention implementation that splits the row where the
positions restart and calls SDPA once per example with `is_causal=True` and no mask.

It is switched on only for packed training, only over plain "sdpa", and only after a check on
the model itself: two short examples packed into one row must give the same logits as each
alone, so a model that does not hand position ids to its attention keeps the masked path.
"""
from __future__ import annotations

# torch is imported inside the functions: engine.training.recipe imports this module, and a config with
# problems must be reported without importing torch (tests/test_runs_survive.py checks)
NAME = "tuneloom_packed_sdpa"
_registered = False


def packed_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """query (1, heads, row, dim), key/value (1, kv_heads, row, dim) -> ((1, row, heads, dim), None)."""
    import torch
    import torch.nn.functional as F
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    positions = kwargs.get("position_ids")
    if attention_mask is not None or positions is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        # padded batches, decoding with a cache: exactly what "sdpa" does
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    starts = (positions[0] == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0] + starts
    bounds = list(zip(starts, starts[1:] + [query.shape[2]]))
    grouped = query.shape[1] != key.shape[1]
    pieces = [F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], is_causal=True,
                                             dropout_p=dropout, scale=scaling, enable_gqa=grouped)
              for a, b in bounds]
    out = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)
    return out.transpose(1, 2).contiguous(), None


def _mask(*args, attention_mask=None, **kwargs):
    """No mask for an unpadded (packed) row: `packed_sdpa` keeps the examples apart; "sdpa"'s otherwise."""
    from transformers.masking_utils import sdpa_mask

    return None if attention_mask is None else sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def _register() -> None:
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface

        AttentionInterface.register(NAME, packed_sdpa)
        AttentionMaskInterface.register(NAME, _mask)
        _registered = True


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def enable(model, max_seq_len: int) -> str:
    """Switch a model on "sdpa" to per-example attention for packed rows; says what it did and why."""
    base = _base(model)
    current = getattr(base.config, "_attn_implementation", None)
    if current != "sdpa":
        return f"packed attention: {current} (handles packed rows itself or is not sdpa)"
    window = getattr(base.config, "sliding_window", None)
    if window and window < max_seq_len:
        return f"packed attention: sdpa with a block-diagonal mask (sliding window {window} < max_seq_len)"
    _register()
    if not _same_as_separate(model):
        base.set_attn_implementation("sdpa")
        return "packed attention: sdpa with a block-diagonal mask (per-example check failed on this model)"
    return "packed attention: one SDPA call per example (no cross-example or padding compute)"


def disable(model) -> None:
    base = _base(model)
    if getattr(base.config, "_attn_implementation", None) == NAME:
        base.set_attn_implementation("sdpa")


def _same_as_separate(model) -> bool:
    """Two short examples packed in one row under NAME give the logits each gives alone under "sdpa"."""
    import torch

    with torch.no_grad():
        return _compare_packed_with_separate(model, torch)


def _compare_packed_with_separate(model, torch) -> bool:
    base = _base(model)
    device = next(p.device for p in model.parameters())
    vocab = base.config.vocab_size
    first, second = torch.arange(3, 8) % vocab, torch.arange(11, 18) % vocab
    was_training = model.training
    model.eval()
    try:
        alone = [model(input_ids=ids[None].to(device), use_cache=False).logits.float() for ids in (first, second)]
        base.set_attn_implementation(NAME)
        row = torch.cat([first, second])[None].to(device)
        positions = torch.cat([torch.arange(len(first)), torch.arange(len(second))])[None].to(device)
        packed = model(input_ids=row, position_ids=positions, use_cache=False).logits.float()
    finally:
        model.train(was_training)
    expected = torch.cat(alone, dim=1)
    return bool(((packed - expected).norm() / expected.norm().clamp_min(1e-6)) < 1e-2)
