"""Peak memory of transformers' unfused causal-LM loss, in bytes per logit, by dtype (CPU).

    python bench/loss_memory.py            # prints one line per dtype

The prompt-family methods (prompt tuning, P-tuning, prefix tuning) train through peft's forward, so
their loss is transformers' ForCausalLMLoss over the full logits; the memory estimate counts it as
T x V x (p + 12) bytes (engine/estimate/components.logits_and_loss). This measures it: logits of
2,048 positions x 49,152 (the default model's vocabulary) from a small matmul in the given dtype, the
loss, and its backward, in a fresh process per dtype; the peak RSS above the moment before the logits
exist, divided by the number of logits. glibc is told to mmap every block above 64 KiB so freed
tensors leave RSS at once and the peak is that of the live tensors.
"""
from __future__ import annotations

import os
import subprocess
import sys

POSITIONS, VOCAB, HIDDEN = 2048, 49152, 64

CHILD = f"""
import resource, sys, torch
from transformers.loss.loss_utils import ForCausalLMLoss
dtype = {{"fp32": torch.float32, "bf16": torch.bfloat16}}[sys.argv[1]]
torch.manual_seed(0)
hidden = torch.randn(1, {POSITIONS}, {HIDDEN}, dtype=dtype, requires_grad=True)
weight = torch.randn({VOCAB}, {HIDDEN}, dtype=dtype) * 0.02
labels = torch.randint(0, {VOCAB}, (1, {POSITIONS}))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
logits = hidden @ weight.t()  # as lm_head: logits in the model's dtype, kept by the model output
loss = ForCausalLMLoss(logits, labels, {VOCAB})
loss.backward()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
print(f"{{sys.argv[1]}}: peak {{peak / 2**20:.0f}} MiB = {{peak / ({POSITIONS} * {VOCAB}):.2f}} bytes per logit")
"""


def main() -> None:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    for dtype in ("fp32", "bf16"):
        out = subprocess.run([sys.executable, "-c", CHILD, dtype], env=env, capture_output=True, text=True, check=True)
        print(out.stdout.strip())


if __name__ == "__main__":
    main()
