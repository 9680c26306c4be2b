"""One optimizer registry (engine/core/optimizers.py) feeds the schema, the trainer, the estimate and the
pre-run disk check: its state bytes must be what the real optimizer allocates after one step."""
from __future__ import annotations

import pytest

from engine.core import optimizers
from engine.core.config import RunConfig

ROWS, COLS = 512, 256  # a weight matrix large enough for bitsandbytes' 8-bit states (>= 4096 values)
# State bytes per fp32 parameter, written from each optimizer's definition (not read from the registry):
# AdamW keeps two fp32 moments; SGD with momentum one fp32 buffer; Adagrad its `sum`; RMSprop `square_avg`;
# bitsandbytes' 8-bit AdamW two 1-byte states plus one fp32 absmax per 256-value block for each.
DEFINED_STATE_BYTES = {"adamw": 2 * 4, "sgd": 4, "adagrad": 4, "rmsprop": 4,
                       "adamw_8bit": 2 * (1 + 4 / 256), "paged_adamw_8bit": 2 * (1 + 4 / 256)}
# Adafactor factors its second moment into a row and a column vector per matrix (no first moment by default)
ADAFACTOR_STATE = (ROWS + COLS) * 4


def state_bytes_after_one_step(key: str) -> tuple[int, int]:
    """(bytes of optimizer state, trainable parameters) after one step of the optimizer the trainer builds."""
    import torch
    from transformers import Trainer, TrainingArguments

    entry = optimizers.get(key)
    torch.manual_seed(0)
    model = torch.nn.Linear(COLS, ROWS, bias=False)
    args = TrainingArguments(output_dir="unused", optim=entry.hf_name, optim_args=entry.hf_args, use_cpu=True,
                             report_to="none", learning_rate=1e-3)
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    optimizer = cls(model.parameters(), **kwargs)
    model(torch.randn(4, COLS)).pow(2).mean().backward()
    optimizer.step()
    tensors = [v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)]
    # scalar bookkeeping (step counters) is not state that grows with the model
    return sum(t.numel() * t.element_size() for t in tensors if t.numel() > 1), model.weight.numel()


def test_every_registered_optimizer_has_a_definition_here():
    assert set(optimizers.OPTIMIZERS) == set(DEFINED_STATE_BYTES) | {"adafactor"}


@pytest.mark.parametrize("key", sorted(optimizers.OPTIMIZERS))
def test_estimate_counts_what_the_optimizer_allocates(key):
    measured, params = state_bytes_after_one_step(key)
    counted = params * optimizers.state_bytes(key, 4)  # fp32 parameters
    if key == "adafactor":
        # rows + columns per matrix. The estimate keeps 1/8 of the parameters, the conservative end for small
        # adapter matrices: never below what Adafactor allocates
        assert measured == ADAFACTOR_STATE and measured <= counted, (measured, counted)
    else:
        assert measured == pytest.approx(params * DEFINED_STATE_BYTES[key], rel=0.02), (key, measured)
        assert counted == pytest.approx(params * DEFINED_STATE_BYTES[key], rel=1e-9), (key, counted)


def test_sgd_has_momentum_everywhere():
    """Plain SGD trains poorly: the trainer's SGD has momentum 0.9, hence one buffer per parameter."""
    from transformers import Trainer, TrainingArguments

    entry = optimizers.get("sgd")
    args = TrainingArguments(output_dir="unused", optim=entry.hf_name, optim_args=entry.hf_args, use_cpu=True,
                             report_to="none")
    _, kwargs = Trainer.get_optimizer_cls_and_kwargs(args)
    assert kwargs["momentum"] == 0.9


def test_schema_accepts_exactly_the_registered_optimizers():
    for key in optimizers.OPTIMIZERS:
        assert RunConfig.from_dict({"train": {"optimizer": key}}).train.optimizer == key
    with pytest.raises(ValueError, match="sgd_momentum"):
        RunConfig.from_dict({"train": {"optimizer": "sgd_momentum"}})
