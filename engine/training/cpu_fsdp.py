"""FSDP on CPU processes: `train.distributed: fsdp` with `num_processes > 1` and no GPU.

accelerate applies FSDP only to GPU-like devices: with `--use_fsdp` on CPU processes (gloo) its state stays
MULTI_CPU and the model is wrapped in plain DDP, every process holding every weight, gradient and optimizer state
(accelerate/state.py; seen here: the DDP reducer's warning in a run that asked for FSDP). So on CPU the trainer
shards the model itself with torch's FSDP2 (`fully_shard`, one unit per decoder layer and one for the rest, over a
gloo device mesh of all processes) before its optimizer is built (the loss then goes through the model's
forward, not the chunked loss), tells accelerate to leave the model as it is,
and gathers the full weights on every process when training ends, so the result is saved, evaluated and served
like any other. Gradients are averaged over the processes (reduce-scatter), as DDP does: the same global batch
gives the same losses as one process (tests/test_sharding_launch.py, bench/results/fsdp_cpu.md).

Written by hand because neither accelerate nor transformers' Trainer offers FSDP on CPU. Scope: methods that train
the model's own weights (full, freeze, bitfit, ...: `Method.trains_base_weights`), where sharding pays most (full
fine-tuning keeps 16 bytes per parameter), saving the result at the end only (no checkpoints during the run, so no
Stop/Resume); adapters and save_steps > 0 are refused before the run (launcher.launch_problems).
"""
from __future__ import annotations

import os


def wanted(cfg) -> bool:
    """This process is one of several CPU processes of a run that asked for FSDP."""
    if cfg.train.distributed != "fsdp" or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return False
    import torch

    return not torch.cuda.is_available()


def configure(cfg, log) -> None:
    """Before the run is estimated and built: the chunked loss calls the decoder and reads lm_head's weight
    directly, past the root unit's hooks that gather its sharded weights, so a sharded model computes its loss
    through its own forward (the estimate then counts full logits)."""
    if wanted(cfg) and cfg.train.fused_loss:
        cfg.train.fused_loss = False
        log("FSDP on CPU processes: the loss goes through the model's forward (fused loss off)")


def shard(cfg, model, log):
    """`model` sharded over the processes (FSDP2 units: each decoder layer, then the root), or `model` itself
    when this run does not shard on CPU. Call before the optimizer is built: sharding replaces the parameters."""
    if not wanted(cfg):
        return model
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    layer_classes = set(getattr(model, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in layer_classes]
    for layer in layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    local = sum(p.to_local().numel() for p in model.parameters())
    total = sum(p.numel() for p in model.parameters())
    log(f"FSDP on {dist.get_world_size()} CPU processes (gloo): {len(layers)} decoder layers + the rest sharded; "
        f"this process holds {local:,} of {total:,} parameters")
    return model


def is_sharded(model) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def attach(trainer) -> None:
    """For a sharded model: accelerate leaves it as it is (no DDP around FSDP), and at the end of training every
    process gathers the full weights into a plain model that replaces it (for saving, evaluation, export)."""
    if not is_sharded(trainer.model):
        return
    from torch.distributed.fsdp import FSDPModule
    from transformers import TrainerCallback

    trainer.accelerator.prepare_model = lambda model, *args, **kwargs: model

    # A forward without gradients (the packed-attention check before training, an evaluation) leaves the root
    # unit's weights gathered: FSDP2 reshards the root only after a backward. An optimizer built then would hold
    # the gathered copies of the root's weights (embeddings, final norm), which never get gradients: seen as
    # those weights never changing and the losses drifting from one process's. So the model is resharded before
    # the optimizer is built and before every step (a no-op for units already sharded).
    def reshard():
        for module in trainer.model.modules():
            if isinstance(module, FSDPModule):
                module.reshard()

    build_optimizer = trainer.create_optimizer

    def create_optimizer(*args, **kwargs):
        reshard()
        return build_optimizer(*args, **kwargs)

    trainer.create_optimizer = create_optimizer

    class ShardedSteps(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            reshard()

        def on_train_end(self, args, state, control, **kwargs):
            trainer.model = trainer.model_wrapped = gathered(trainer.model)

    trainer.add_callback(ShardedSteps())


def gathered(model):
    """A plain (unsharded) copy of a sharded model with its full weights, on every process (a collective)."""
    from torch import nn
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.fsdp import FSDPModule

    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
    plain_class = next(c for c in type(model).__mro__ if issubclass(c, nn.Module) and not issubclass(c, FSDPModule))
    replica = plain_class(model.config)  # buffers (rotary frequencies) built as usual; weights loaded below
    replica.load_state_dict(full)
    replica.tie_weights()
    replica.generation_config = model.generation_config
    replica.train(model.training)
    for name, param in replica.named_parameters():
        param.requires_grad_(name in trainable)
    return replica
