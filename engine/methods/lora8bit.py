"""LoRA on an 8-bit (LLM.int8) base model: half the weight memory of 16 bits, closer to the
original weights than 4-bit; adapters and norms train in higher precision (see qlora.py)."""
from __future__ import annotations

from engine.methods import lora, qlora
from engine.methods.base import METHODS

METHODS.register("lora8bit", lora.family(
    "lora8bit", "LoRA (8-bit base)",
    "LoRA on an LLM.int8 base model: half the weight memory of 16 bits with less quantisation error "
    "than 4-bit; slower per step than plain LoRA.",
    params=lora.lora_params(inits=("default", "gaussian")), apply=qlora.apply_quantized,
    quantize=lambda params: "8bit",
))
