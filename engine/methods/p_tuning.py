"""P-tuning (Liu et al., 2021): virtual-token embeddings produced by a small prompt encoder (an MLP
or a bidirectional LSTM) during training, which makes them easier to optimise than prompt tuning."""
from __future__ import annotations

from engine.core.registry import Param
from engine.core.structure import Structure
from engine.methods import prompt_learning as pl
from engine.methods.base import METHODS, Method

PARAMS = (
    pl.num_tokens_param(20),
    Param("encoder", str, "MLP", "Prompt encoder: MLP (recommended) or LSTM.", choices=("MLP", "LSTM")),
    Param("encoder_hidden_size", int, 128, "Hidden width of the prompt encoder.", min=1),
    Param("encoder_num_layers", int, 2, "LSTM layers (the MLP always has 3 linear layers).", min=1, max=8),
    Param("encoder_dropout", float, 0.0, "Dropout inside the LSTM encoder.", min=0.0, max=0.9),
)


def apply(model, params: dict, structure: Structure):
    from peft import PromptEncoderConfig

    return pl.apply_config(model, PromptEncoderConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=params["num_virtual_tokens"],
        encoder_reparameterization_type=params["encoder"], encoder_hidden_size=params["encoder_hidden_size"],
        encoder_num_layers=params["encoder_num_layers"], encoder_dropout=params["encoder_dropout"],
    ))


def count_trainable(structure: Structure, params: dict) -> int:
    h, e, n = structure.prompt_width, params["encoder_hidden_size"], params["num_virtual_tokens"]
    total = n * h  # the virtual-token embedding
    if params["encoder"] == "MLP":
        return total + (h * e + e) + (e * e + e) + (e * h + h)
    for layer in range(params["encoder_num_layers"]):  # bidirectional LSTM, then a 2-layer MLP head
        width = h if layer == 0 else 2 * e
        total += 2 * (4 * e * (width + e) + 8 * e)
    return total + (2 * e * 2 * e + 2 * e) + (2 * e * h + h)


METHODS.register("p_tuning", Method(
    key="p_tuning", title="P-tuning",
    summary="Virtual tokens produced by a small MLP/LSTM prompt encoder; steadier to train than prompt "
            "tuning. The encoder is only needed while training.",
    params=PARAMS, apply=apply, count_trainable=count_trainable, problems=pl.position_problems,
    not_mergeable_reason=pl.NOT_MERGEABLE, virtual_tokens=pl.virtual_tokens, prepends_input_tokens=True,
    train_defaults={"learning_rate": 0.01},
))
