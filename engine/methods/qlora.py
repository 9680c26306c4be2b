"""QLoRA (Dettmers et al., 2023): LoRA on a base model stored in 4 bits (NF4 or FP4, optionally with
double quantisation); the adapters and the norms train in higher precision. Use it when the
base model does not fit in memory at 16 bits. Everything LoRA-specific comes from lora.py."""
from __future__ import annotations

from engine.core.registry import Param
from engine.core.structure import Structure
from engine.methods import lora
from engine.methods.base import METHODS

PARAMS = lora.lora_params(inits=("default", "gaussian")) + (
    Param("quant_type", str, "nf4", "4-bit data type: nf4 (normal float, best for normally distributed weights) "
          "or fp4.", choices=("nf4", "fp4")),
    Param("double_quant", bool, True, "Quantise the quantisation constants too (saves ~0.4 bit per weight)."),
    Param("compute_dtype", str, "auto", "Dtype the 4-bit weights are de-quantised to for each matmul: auto "
          "(bf16 on a GPU that has it, else fp32), bf16, fp16 or fp32.", choices=("auto", "bf16", "fp16", "fp32")),
)


def compute_dtype(params: dict) -> str:
    from engine.core.precision import on_this_machine

    return on_this_machine(params["compute_dtype"])  # auto: the run's own rule


def apply_quantized(model, params: dict, structure: Structure):
    """peft's k-bit preparation (norms and other small weights in fp32), then LoRA."""
    from peft import prepare_model_for_kbit_training

    # gradient checkpointing is the run's choice (train.gradient_checkpointing), not forced here
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return lora.apply(model, params, structure)


METHODS.register("qlora", lora.family(
    "qlora", "QLoRA (4-bit base)",
    "LoRA on a 4-bit (NF4) base model: about a quarter of the weight memory, a little slower per step; "
    "for models that do not fit at 16 bits.",
    params=PARAMS, apply=apply_quantized, quantize=lambda params: "4bit",
    quantize_options=lambda params: {"quant_type": params["quant_type"], "double_quant": params["double_quant"],
                                     "compute_dtype": compute_dtype(params)},
))
