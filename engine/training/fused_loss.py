"""Memory-light causal-LM loss: never materialise the logits of the whole batch.

Liger Kernel's fused linear cross-entropy does this on CUDA (used when installed); there is no
maintained CPU equivalent, so this is written by hand: the projection to the vocabulary and
the cross-entropy run chunk by chunk, with the gradients computed in the same pass. Peak extra
memory is one chunk of logits instead of tokens x vocabulary floats.
"""
from __future__ import annotations

import torch

from engine.data.masking import IGNORE_INDEX


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Loss and its gradients in one pass over the chunks (as Liger Kernel does on CUDA).

    The loss is the last operation, so the gradients with respect to the hidden states and the
    weight can be computed in forward, chunk by chunk, and only scaled in backward: the same two
    matrix products per chunk as an unfused loss, without keeping any logits.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_size: int, matmul_dtype: torch.dtype):
        """hidden (N, H), weight (V, H), targets (N,) with IGNORE_INDEX -> summed loss (scalar)."""
        need_hidden, need_weight = hidden.requires_grad, weight.requires_grad
        total = hidden.new_zeros((), dtype=torch.float32)
        grad_hidden = torch.zeros_like(hidden) if need_hidden else None
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_weight else None
        w = weight.to(matmul_dtype)
        with torch.autocast(hidden.device.type, enabled=False):
            for start in range(0, hidden.shape[0], chunk_size):
                part = hidden[start:start + chunk_size].to(matmul_dtype)
                target = targets[start:start + chunk_size]
                logits = (part @ w.t()).float()
                total += torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="sum")
                if need_hidden or need_weight:
                    grad_logits = _grad_logits(logits, target).to(matmul_dtype)
                    if need_hidden:
                        grad_hidden[start:start + chunk_size] = (grad_logits @ w).to(hidden.dtype)
                    if need_weight:
                        grad_weight += (grad_logits.t() @ part).float()
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype) if need_weight else None)
        return total

    @staticmethod
    def backward(ctx, grad_output):
        grad_hidden, grad_weight = ctx.saved_tensors
        return (grad_hidden * grad_output if grad_hidden is not None else None,
                grad_weight * grad_output if grad_weight is not None else None, None, None, None)


def _grad_logits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d(sum of cross-entropy)/d(logits) = softmax - one_hot, zero on ignored rows."""
    grad = torch.softmax(logits, dim=-1)  # (a fresh tensor: the logits are not modified)
    valid = target != IGNORE_INDEX
    rows = torch.nonzero(valid).squeeze(1)
    grad[rows, target[rows]] -= 1.0
    grad[~valid] = 0.0
    return grad


def chunked_causal_lm_loss(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                           num_items: int | torch.Tensor | None = None, chunk_size: int = 1024) -> torch.Tensor:
    """Next-token cross-entropy of `hidden @ weight.T` against `labels` (B, T), shifted as transformers does.

    Returns the sum divided by `num_items` (the trained tokens of the whole accumulated batch,
    as the Trainer passes it) or by this batch's trained tokens.
    """
    targets = torch.nn.functional.pad(labels, (0, 1), value=IGNORE_INDEX)[:, 1:].reshape(-1)
    flat = hidden.reshape(-1, hidden.shape[-1])
    keep = targets != IGNORE_INDEX  # rows that contribute nothing are skipped entirely
    device = hidden.device.type
    matmul_dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
    total = _ChunkedLinearCrossEntropy.apply(flat[keep], weight, targets[keep], chunk_size, matmul_dtype)
    denominator = num_items if num_items is not None else keep.sum().clamp(min=1)
    if isinstance(denominator, torch.Tensor):
        denominator = denominator.to(total.device)
    return total / denominator


def fused_loss_available(model) -> bool:
    """Only plain decoder + lm_head models without logit post-processing can skip the logits."""
    config = getattr(model, "config", None)
    return (config is not None and getattr(config, "final_logit_softcapping", None) is None
            and hasattr(model, "model") and hasattr(model, "lm_head")
            and getattr(model.lm_head, "bias", None) is None
            and isinstance(model.lm_head, torch.nn.Linear))


def causal_lm(model):
    """The plain *ForCausalLM inside a peft wrapper (adapters are injected in place), or None.

    None for a model wrapped for several processes (DDP, FSDP, DeepSpeed): calling the inner model
    would bypass the wrapper's forward and with it the gradient synchronisation. None as well for a
    torch.compile'd model (train.torch_compile): the inner model is the uncompiled one, so the
    fused path would silently train without compilation (measured: same loss and speed as off).
    """
    if isinstance(model, torch.nn.parallel.DistributedDataParallel) or type(model).__name__ in (
            "FullyShardedDataParallel", "DeepSpeedEngine", "OptimizedModule"):
        return None
    config = getattr(model, "active_peft_config", None)
    if config is not None:
        if getattr(config, "is_prompt_learning", False):
            return None  # virtual tokens are added by peft's own forward
        if getattr(config, "peft_type", None) == "ADALORA":
            return None  # AdaLoRA's orthogonality regulariser is added to the loss by peft's own forward
        model = model.get_base_model()
    return model if fused_loss_available(model) else None


def fused_forward_loss(model, inputs: dict, num_items=None) -> torch.Tensor | None:
    """Run the decoder and the chunked loss; None when this model needs the plain path."""
    inner = causal_lm(model)
    if inner is None:
        return None
    hidden = inner.model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                         position_ids=inputs.get("position_ids"), use_cache=False).last_hidden_state
    return chunked_causal_lm_loss(hidden, inner.lm_head.weight, inputs["labels"], num_items)


# ---- the token loss every other place measures (evaluation, forgetting, the Fisher of EWC) ----------------
def shifted_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed next-token cross-entropy over the trained positions, their count) from full logits.

    `logits` may hold extra leading positions (the virtual tokens prompt methods prepend): the last
    labels.shape[1] positions are the ones the labels describe."""
    logits = logits[:, -labels.shape[1]:][:, :-1].float()
    targets = labels[:, 1:]
    total = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                              ignore_index=IGNORE_INDEX, reduction="sum")
    return total, (targets != IGNORE_INDEX).sum()


def token_loss(model, input_ids: torch.Tensor, labels: torch.Tensor,
               attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed next-token loss over trained tokens, their count): the chunked loss on trained positions
    only where the model allows, else through the logits."""
    summed = fused_forward_loss(model, {"input_ids": input_ids, "attention_mask": attention_mask,
                                        "labels": labels}, num_items=1)
    if summed is not None:
        return summed, (labels[:, 1:] != IGNORE_INDEX).sum()
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    return shifted_token_loss(logits, labels)
