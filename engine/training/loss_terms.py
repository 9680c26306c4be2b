"""The terms added to the supervised loss: distillation and the EWC penalty.

TuneloomTrainer.compute_loss hands each training micro-batch to `LossTerms.loss`, and its `log`
adds the parts (`task_loss`, `ewc_penalty`, `distill_kl`) beside `loss`. The parts are recorded in
the same units as the Trainer's logged loss (after its gradient-accumulation and multi-process
scaling), so `loss` = `task_loss` + `ewc_penalty` (without distillation) on every logged row.
"""
from __future__ import annotations

PARTS = ("task_loss", "ewc_penalty", "distill_kl")


def _loss_is_scaled_for_ga(trainer, num_items) -> bool:
    """Mirrors transformers.Trainer.training_step: True when it will NOT divide the loss by the accumulation."""
    if getattr(trainer, "loss_is_scaled_for_ga", None) is not None:
        return trainer.loss_is_scaled_for_ga
    return bool((trainer.model_accepts_loss_kwargs and num_items is not None) or trainer.compute_loss_func is not None)


def _world_scale(trainer, num_items) -> int:
    """transformers multiplies a token-normalised loss by the process count (gradients are averaged)."""
    if (trainer.args.average_tokens_across_devices and trainer.model_accepts_loss_kwargs
            and num_items is not None):
        return trainer.accelerator.num_processes
    return 1


class LossTerms:
    def __init__(self, ewc=None, distiller=None):
        self.ewc, self.distiller = ewc, distiller
        self.sums: dict = {}
        self.last_step = None  # global step when the parts started accumulating

    def __bool__(self) -> bool:
        return self.ewc is not None or self.distiller is not None

    def loss(self, trainer, model, inputs, num_items, task_loss):
        """The micro-batch loss; `task_loss(model, inputs, num_items)` is the Trainer's plain (or fused) loss."""
        if self.last_step is None:
            self.last_step = trainer.state.global_step
        if self.distiller is not None:
            loss, parts = self.distiller.loss(model, inputs, num_items)
            scale = _world_scale(trainer, num_items)
            loss = loss * scale
            parts = {k: v * scale for k, v in parts.items()}
        else:
            loss = task_loss(model, inputs, num_items)
            parts = {"task_loss": loss.detach()}
        accumulation = trainer.current_gradient_accumulation_steps if hasattr(
            trainer, "current_gradient_accumulation_steps") else trainer.args.gradient_accumulation_steps
        scaled = _loss_is_scaled_for_ga(trainer, num_items)
        if self.ewc is not None:
            # the penalty depends on the weights only: 1/accumulation of it per micro-batch sums to one penalty
            penalty = self.ewc.penalty(trainer.model)
            loss = loss + (penalty / accumulation if scaled else penalty)
            parts["ewc_penalty"] = (penalty / accumulation if scaled else penalty).detach()
        divisor = 1 if scaled else accumulation  # what the Trainer will still divide by
        for key, value in parts.items():
            self.sums[key] = self.sums.get(key, 0.0) + value.float() / divisor
        return loss

    def add_to_logs(self, trainer, logs: dict) -> None:
        """Mean per optimizer step since the last log, averaged over processes like the Trainer's loss."""
        if "loss" not in logs or not self.sums:
            return
        import torch

        steps = max(1, trainer.state.global_step - (self.last_step or 0))
        self.last_step = trainer.state.global_step
        keys = sorted(self.sums)
        values = torch.stack([torch.as_tensor(self.sums[k], dtype=torch.float32).reshape(()).to(trainer.args.device)
                              for k in keys])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(values)
            values /= torch.distributed.get_world_size()
        logs.update({k: float(v) / steps for k, v in zip(keys, values.tolist())})
        self.sums = {}
