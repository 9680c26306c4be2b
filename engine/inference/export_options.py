"""What a merged export may be saved in, declared once for the CLI, the Export tab and the exporter. Pure."""
from __future__ import annotations

# choice -> the torch dtype name it saves in; auto: the dtype the base model is published in
# (engine/inference/export.py), fp32 when that is unknown
DTYPES = {"auto": None, "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
