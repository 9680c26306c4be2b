"""The trainer process: `python -m engine train RUN/config.yaml`.

Recipe, in named steps (`_train`): set up (check the run, load and encode the data as the objective
declares, plan memory, load the model and apply the method, build the objective's trainer) -> train (a
transformers Trainer or TRL's: checkpoints, resume, accumulation, DDP come from it) -> save the result and
the final status. It talks to the UI only through its run folder.
"""
from __future__ import annotations

import fcntl
import os
import resource
import signal
import sys
import time
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path

from engine.core import describe, optimizers, runlog, runs
from engine.core import structure as st
from engine.core.config import ConfigError, RunConfig
from engine.core.device import cpu_native_half
from engine.core.errors import UserError
from engine.core.jobs import RunState
from engine.core.messages import as_dict
from engine.core.objectives import for_config
from engine.core.precision import compute_dtype, cpu_bf16_native, is_pure, on_this_machine
from engine.core.runlog import log
from engine.core.structure import Structure
from engine.core.workspace import subdir
from engine.methods import METHODS
from engine.training import base_reference, cpu_fsdp, dtypes, failures, packing
from engine.training.divergence import DivergenceWatch
from engine.training.hf_trainer import uses_packing
from engine.training.loss_terms import PARTS, LossTerms
from engine.training.memory_plan import checkpoint_if_tight, launch_estimate, plan_memory  # noqa: F401
from engine.training.setup import TrainingSetup, resolve


@contextmanager
def device_slot(run_dir: Path):
    """One training job per device: later runs wait here, shown as queued, until the slot is free."""
    lock_path = subdir("locks") / "train-device.lock"
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            runs.update_status(run_dir, state=RunState.QUEUED, pid=os.getpid())
            log("another training job holds the device; queued until it ends")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def slow_half_precision_warning(precision: str) -> str | None:
    """bf16/fp16 on a CPU without native half-precision matmuls (AVX512-BF16/FP16 or AMX) falls back to
    slow kernels: on an AVX2-only AMD EPYC, torch 2.13 ran a 1024^3 bf16 matmul at 0.9 GFLOP/s against
    142 in fp32. The same CPU facts decide `precision: auto` (engine/core/precision.py)."""
    import torch

    dtype = compute_dtype(precision)
    if dtype not in ("bf16", "fp16") or torch.cuda.is_available():
        return None
    if cpu_bf16_native() if dtype == "bf16" else cpu_native_half("fp16"):
        return None
    capability = torch.backends.cpu.get_cpu_capability()
    return (f"WARNING: precision {precision} on this CPU (vector unit {capability}, no native {dtype} matrix "
            "products) runs them far slower than fp32; set train.precision to fp32 or auto unless you mean to "
            "measure it")


def rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def peak_memory_bytes(baseline_rss: int) -> int:
    """GPU: allocator peak + CUDA context. CPU: peak resident memory above the start baseline."""
    import torch

    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        context = max(0, total - free - torch.cuda.memory_reserved())
        return torch.cuda.max_memory_allocated() + context
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline_rss


def build_callback(run_dir: Path, baseline_rss: int, is_main: bool):
    from transformers import TrainerCallback

    class RunFolderCallback(TrainerCallback):
        """Writes metrics.jsonl and status.json; honours the STOP file and SIGTERM.

        A stop ends training after the current optimizer step and saves a full Trainer checkpoint there
        (weights or adapter, optimizer, scheduler, RNG, data position), so Resume continues at the next step.
        """

        def __init__(self):
            self.started = time.time()
            self.last_time, self.last_tokens = self.started, None
            self.stop_requested = False
            self.best_eval = None  # the lowest eval loss so far (status.json best_eval_loss)
            self.step = None  # the last optimizer step ended (a failure's status names it)
            self.estimate = {}  # estimate_bytes made at launch (engine/estimate/memory.py), written on every row
            self.metric_keys = ()  # the objective's own metrics (engine/core/objectives.py), recorded beside loss
            self.metric_prefixes = ()  # ... and those whose names start so (GRPO's rewards/<name>/mean)
            # says once, in status.json and train.log, when the loss runs away (None: the objective's loss is no
            # likelihood whose rise means divergence)
            self.divergence = DivergenceWatch()

        def stop_is_requested(self) -> bool:
            return self.stop_requested or (run_dir / runs.STOP_FILE).exists()

        def on_train_begin(self, args, state, control, **kwargs):
            self.last_tokens = state.num_input_tokens_seen
            if is_main:
                runs.update_status(run_dir, state=RunState.RUNNING, max_steps=state.max_steps, step=state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            self.step = state.global_step
            # TUNELOOM_FAULT hooks (engine/training/failures.py); no-op unless set
            failures.at_step(state.global_step, self.stop_is_requested)
            if _any_process(self.stop_is_requested(), args.device):
                self.stop_requested = True
                control.should_training_stop = True
                control.should_save = True  # the Trainer saves checkpoint-<step> before it leaves the loop
            return control

        def _watch(self, step: int, logs: dict, learning_rate: float) -> None:
            """`learning_rate`: the configured peak (the logged one is where the schedule has brought it)."""
            warning = self.divergence.see(step, logs["loss"], logs.get("grad_norm"), learning_rate) \
                if self.divergence is not None else None
            if warning is not None:
                runs.update_status(run_dir, diverging={**as_dict(warning), "step": step})
                log(f"WARNING: {warning}")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not is_main or not logs:
                return
            now = time.time()
            row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                   "elapsed_s": round(now - self.started, 3)}
            if "loss" in logs:
                tokens = state.num_input_tokens_seen
                row.update(loss=logs["loss"], learning_rate=logs.get("learning_rate"),
                           grad_norm=logs.get("grad_norm"), tokens_seen=tokens,
                           tokens_per_second=round((tokens - self.last_tokens) / max(now - self.last_time, 1e-9), 2))
                self.last_time, self.last_tokens = now, tokens
                self._watch(state.global_step, logs, args.learning_rate)
            if "eval_loss" in logs:
                row["eval_loss"] = logs["eval_loss"]
                self.best_eval = logs["eval_loss"] if self.best_eval is None else min(self.best_eval, logs["eval_loss"])
            row.update({k: logs[k] for k in PARTS if k in logs})  # task_loss, ewc_penalty, distill_kl
            # the objective's own metrics (rewards/margins, accuracies, logps; engine/core/objectives.py)
            row.update({k: logs[k] for name in self.metric_keys for k in (name, f"eval_{name}") if k in logs})
            row.update({k: v for k, v in logs.items() if self.metric_prefixes
                        and k.removeprefix("eval_").startswith(self.metric_prefixes)})
            if "loss" not in row and "eval_loss" not in row:
                return
            row["peak_memory_bytes"] = peak_memory_bytes(baseline_rss)
            row.update(self.estimate)
            runs.append_metrics(run_dir, row)
            runs.update_status(run_dir, step=state.global_step, max_steps=state.max_steps,
                               elapsed_s=row["elapsed_s"], best_eval_loss=self.best_eval)

    return RunFolderCallback()


def _any_process(flag: bool, device) -> bool:
    """True on every process when it is True on any: all processes stop at the same step."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    import torch

    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def training_arguments(cfg: RunConfig, run_dir: Path, precision: str, has_validation: bool, cls=None, **extra):
    """transformers.TrainingArguments for the run, or `cls` (a TRL config, a subclass) with its `extra` settings."""
    from transformers import TrainingArguments

    from engine.training.trackers import report_to

    t = cfg.train
    optimizer = optimizers.get(t.optimizer)
    return (cls or TrainingArguments)(
        output_dir=str(run_dir / "checkpoints"),
        max_steps=t.max_steps if t.max_steps > 0 else -1, num_train_epochs=t.epochs,
        per_device_train_batch_size=t.batch_size, per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation,
        learning_rate=t.learning_rate, warmup_steps=t.warmup_steps, lr_scheduler_type=t.scheduler,
        weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm, optim=optimizer.hf_name,
        optim_args=optimizer.hf_args,
        bf16=precision == "bf16", fp16=precision == "fp16",
        gradient_checkpointing=t.gradient_checkpointing, torch_compile=t.torch_compile,
        gradient_checkpointing_kwargs={"use_reentrant": False} if t.gradient_checkpointing else None,
        logging_steps=t.logging_steps, logging_first_step=True,
        eval_strategy="steps" if has_validation and t.eval_steps > 0 else "no",
        eval_steps=t.eval_steps or None,
        save_strategy="steps" if t.save_steps > 0 else "no", save_steps=t.save_steps or 500,
        save_total_limit=t.save_total_limit,
        seed=t.seed, data_seed=t.seed, report_to=report_to(cfg, run_dir), disable_tqdm=True,
        run_name=run_dir.name,
        include_num_input_tokens_seen="non_padding", remove_unused_columns=False,
        dataloader_num_workers=0, use_cpu=not _cuda_available(), **extra,
    )


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def save_result(model, tokenizer, run_dir: Path, method=None) -> Path:
    """Adapter methods save their adapter (peft's, or the method's own `save_adapter`);
    full-weight methods save the model."""
    own = method is not None and method.save_adapter is not None
    target = run_dir / ("adapter" if own or hasattr(model, "peft_config") else "model")
    tmp = target.with_name(target.name + ".partial")
    if own:
        method.save_adapter(model, tmp)
    else:
        model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    if target.exists():
        import shutil

        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def run(config_path: Path, resume: bool = False) -> Path:
    config_path = Path(config_path).resolve()
    run_dir = config_path.parent
    cfg = RunConfig.load(config_path)
    describe.IN_PROCESS = True  # the trainer imports torch: it reads model structures itself
    is_main = int(os.environ.get("RANK", "0")) == 0
    baseline_rss = rss_bytes()
    if is_main and not os.environ.get("TUNELOOM_STDOUT_IS_LOG"):
        runlog.copy_to(run_dir)
    if is_main:
        (run_dir / runs.STOP_FILE).unlink(missing_ok=True)
        # the status says what is true now: a resumed run is no longer stopped early nor finished
        runs.update_status(run_dir, state=RunState.RUNNING, pid=os.getpid(), error=None, failure=None,
                           started_at=time.time(), world_size=int(os.environ.get("WORLD_SIZE", "1")),
                           stopped_early=False, finished_at=None)
    callback = build_callback(run_dir, baseline_rss, is_main)
    signal.signal(signal.SIGTERM, lambda *_: setattr(callback, "stop_requested", True))
    try:
        with device_slot(run_dir) if is_main and "WORLD_SIZE" not in os.environ else _nothing():
            result = _train(cfg, run_dir, callback, resume, is_main)
    except BaseException as err:  # record every failure in the run folder, then re-raise
        if is_main:
            # out of memory / disk full / other: a readable error plus advice (engine/training/failures.py)
            runs.update_status(run_dir, state=RunState.FAILED, finished_at=time.time(),
                               **failures.explain(err, cfg, callback.step, run_dir,
                                                 "cuda" if _cuda_available() else "cpu"))
            # a setting found wrong once the data is known, a reward that failed: its message, not a traceback
            log(f"training failed: {err}" if isinstance(err, UserError) else
                "training failed:\n" + traceback.format_exc())
        raise
    return result


@contextmanager
def _nothing():
    yield


def _train(cfg: RunConfig, run_dir: Path, callback, resume: bool, is_main: bool) -> Path:
    """setup -> train -> save (torchtune's shape): each step below is one short function."""
    setup = set_up(cfg, run_dir, callback, is_main)
    stopped = train(setup, callback, resume)
    return save(setup, stopped)


# ---- setup ------------------------------------------------------------------------------------------------------
def set_up(cfg: RunConfig, run_dir: Path, callback, is_main: bool) -> TrainingSetup:
    method, structure, precision = check_run(cfg)
    setup = load_data(cfg, run_dir, method, structure, precision, is_main)
    plan_memory(setup, callback)
    load_weights(setup)
    report_model(setup)
    build_trainer(setup, callback)
    return setup


def check_run(cfg: RunConfig):
    """The method against the model (again: the config may have been edited since the pre-run checks), the
    warnings the settings deserve, the seed. -> (method, structure, precision)"""
    import torch

    from engine.core.models import prepare_model

    method = METHODS.get(cfg.method.name)
    cpu_fsdp.configure(cfg, log)  # FSDP over CPU processes: the loss goes through the model's forward
    if cfg.trust_remote_code:
        log(f"WARNING: trust_remote_code is on: Python files shipped with {cfg.model} will run in this process. "
            "Only do this for models whose code you have read or trust.")
    prepare_model(cfg.model, log=log)
    structure = describe.obtain(cfg.model, cfg.trust_remote_code)
    problems = method.check(cfg.method.params, cfg.train, structure)
    if problems:
        raise ConfigError(problems, "config")
    # a 4-bit layer whose gradients would silently be wrong must fail the run instead
    # (engine/core/models.keep_training_layout prevents the cause)
    warnings.filterwarnings("error", message=".*autograd kernel was not registered.*")
    precision = on_this_machine(cfg.train.precision)
    slow = slow_half_precision_warning(precision)
    if slow:
        log(slow)
    torch.manual_seed(cfg.train.seed)
    return method, structure, precision


def load_data(cfg: RunConfig, run_dir: Path, method, structure: Structure, precision: str,
              is_main: bool) -> TrainingSetup:
    """The tokenizer and the data, read and encoded as the objective declares (its data kind)."""
    from engine.core.models import load_tokenizer

    log(f"loading tokenizer and data from {cfg.data.train}")
    tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code, cfg.data.template)
    if cfg.distill.teacher.strip():
        from engine.training.distill import check_tokenizers

        check_tokenizers(cfg.model, cfg.distill.teacher, cfg.trust_remote_code)  # before anything big is loaded
    objective = for_config(cfg)
    data = resolve(objective.data)(cfg.data, tokenizer, cfg.train.max_seq_len, cfg.train.seed, objective)
    stats = data.stats()
    log(f"data: {stats['train_examples']} train / {stats['validation_examples']} validation examples, "
        f"{stats['trained_tokens']} trained tokens; dropped {stats['dropped'] or 'none'}")
    if method.needs_steps:  # now the number of steps is exact (training for epochs): check before loading
        from engine.training.preflight import planned_steps

        world = int(os.environ.get("WORLD_SIZE", "1"))
        problems = method.check(cfg.method.params, cfg.train, structure,
                                planned_steps(cfg.train, -(-len(data.train) // world)))
        if problems:
            raise ConfigError(problems, "config")
    return TrainingSetup(cfg, run_dir, objective, method, structure, precision, tokenizer, data, is_main, log)


def load_weights(setup: TrainingSetup) -> None:
    """The model (or an earlier run's result, continual learning) with the method applied."""
    from engine.core.models import cast_parameters, load_model

    cfg, method, precision = setup.cfg, setup.method, setup.precision
    log(f"loading {cfg.model} ({precision})")
    if cfg.train.start_from:
        from engine.training import continual

        model = continual.load_start(cfg, method, precision, setup.structure,
                                     setup.run_dir if setup.is_main else None, log)
    else:
        model = load_model(cfg.model, method.quantize(cfg.method.params), method.load_dtype(precision),
                           cfg.trust_remote_code, quant_options=method.quantize_options(cfg.method.params),
                           head=setup.objective.model_head)
        model = method.apply(model, cfg.method.params, setup.structure)
    if is_pure(precision):
        cast_parameters(model, compute_dtype(precision))  # peft creates adapters in fp32; pure means none stay
    if cfg.train.gradient_checkpointing and hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()
    setup.model = model


def report_model(setup: TrainingSetup) -> None:
    """What trains: parameter counts (against the estimate's), the adapted modules, the method's notes."""
    cfg, method, structure, model = setup.cfg, setup.method, setup.structure, setup.model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    counted = method.count_trainable(structure, cfg.method.params)
    log(f"method {method.key}: {trainable:,} trainable of {total:,} parameters ({100 * trainable / total:.3f}%); "
        f"the estimate counts {counted:,}")
    adapted = st.summarise(method.adapted(structure, cfg.method.params), structure.layers_prefix)
    listed = "; ".join(adapted[:24]) or "no module (virtual tokens only)"
    more = f"; ... {len(adapted) - 24} more" if len(adapted) > 24 else ""
    log(f"{'trained' if method.trains_base_weights else 'adapted'}: {listed}{more}")
    for note in method.notes(structure, cfg.method.params):
        log(f"note: {note}")
    if setup.is_main:
        runs.update_status(setup.run_dir, trainable_params=trainable, total_params=total, data=setup.data.stats(),
                           precision=setup.precision, adapted=adapted)


def build_trainer(setup: TrainingSetup, callback) -> None:
    """The objective's trainer (its declared builder, TRL config and settings), with the method's optimizer and
    callbacks, the run-folder callback and the loss terms (EWC anchor, distillation teacher) where they apply."""
    from engine.training import continual, distill

    cfg, objective, method = setup.cfg, setup.objective, setup.method
    # FSDP over CPU processes (accelerate shards only on GPUs)
    model = setup.model = cpu_fsdp.shard(cfg, setup.model, log)
    trl_config = resolve(objective.trl_config) if objective.trl_config else None
    setup.args = training_arguments(cfg, setup.run_dir, setup.precision, bool(setup.data.validation),
                                    cls=trl_config, **objective.settings(cfg))
    callback.metric_keys, callback.metric_prefixes = objective.metrics, objective.metric_prefixes
    if not objective.loss_rises_when_diverging:
        callback.divergence = None
    if objective.supervised:
        # EWC anchor (before training: the loaded weights are the earlier run's) and distillation teacher
        setup.loss_terms = LossTerms(continual.ewc_anchor(cfg, model, setup.tokenizer, log, setup.is_main),
                                     distill.build(cfg, setup.precision, log, check=False))
        log(f"packing {'on' if uses_packing(cfg, method) else 'off'}; fused loss "
            f"{'on' if cfg.train.fused_loss else 'off'}")
    else:
        log(f"objective {objective.key}: {objective.title}; packing and the fused loss do not apply "
            "(TRL pads each batch and computes its own loss)")
    # a method's own optimizer (LoRA+ groups, layerwise unfreezing) and callbacks (schedules), when it has them
    optimizer = method.optimizer(model, cfg.method.params, setup.args, setup.structure) if method.optimizer else None
    setup.optimizers = (optimizer, None)
    dtype_report = dtypes.build_callback(setup.run_dir, setup.is_main)  # status.json `dtypes`: what trains in which
    setup.callbacks = [callback, dtype_report,
                       *(method.callbacks(model, cfg.method.params, setup.structure) if method.callbacks else [])]
    setup.build_trainer()
    if objective.supervised and uses_packing(cfg, method):
        log(packing.enable(model, cfg.train.max_seq_len))


# ---- train ------------------------------------------------------------------------------------------------------
def train(setup: TrainingSetup, callback, resume: bool) -> bool:
    """Train (from the last checkpoint when resuming), then the final evaluation. -> True when stopped early."""
    checkpoint = resume_point(setup.run_dir, callback, setup.is_main) if resume else None
    if checkpoint is None:
        base_reference.measure(setup, log)  # the base's eval loss: the line this run has to get below
    trainer = setup.trainer
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    stopped = callback.stop_requested
    # the final eval loss, unless the last step was just evaluated (the same history on every process)
    evaluated = [entry.get("step") for entry in trainer.state.log_history if "eval_loss" in entry]
    if setup.data.validation and not stopped and trainer.state.global_step not in evaluated[-1:]:
        trainer.evaluate()
    return stopped


# ---- save -------------------------------------------------------------------------------------------------------
def save(setup: TrainingSetup, stopped: bool) -> Path:
    """The result (adapter or model), the Fisher information where EWC is on, the final status."""
    from engine.training import continual
    from engine.training.preference import drop_reference_adapter

    trainer, run_dir = setup.trainer, setup.run_dir
    packing.disable(trainer.model)  # what is saved and served uses the stock implementations
    drop_reference_adapter(trainer.model)  # TRL's frozen "ref" adapter, where the objective added one
    if not setup.is_main:
        return run_dir
    result = save_result(trainer.model, setup.tokenizer, run_dir, setup.method)
    if setup.loss_terms is not None:  # RUN/fisher.safetensors if EWC is on
        continual.finish(setup.cfg, trainer.model, setup.data, run_dir, setup.loss_terms.ewc, log)
    rows = runs.read_metrics(run_dir)
    losses = [r["loss"] for r in rows if "loss" in r]
    evals = [r["eval_loss"] for r in rows if "eval_loss" in r]
    worse = base_reference.verdict(evals[-1] if evals else None, runs.read_status(run_dir).get("base_eval_loss"),
                                   setup.cfg.train.learning_rate,
                                   losses if setup.method.logged_loss_is_token_loss else None)
    if worse is not None:
        log(f"WARNING: {worse['message']}")
    runs.update_status(run_dir, state=RunState.DONE, stopped_early=stopped, finished_at=time.time(),
                       step=trainer.state.global_step, final_loss=losses[-1] if losses else None,
                       final_eval_loss=evals[-1] if evals else None, best_eval_loss=runs.best_eval_loss(rows),
                       result=str(result), worse_than_base=worse)
    (run_dir / runs.STOP_FILE).unlink(missing_ok=True)
    log(f"{'stopped' if stopped else 'finished'} at step {trainer.state.global_step}; saved {result}")
    return run_dir


def resume_point(run_dir: Path, callback, is_main: bool) -> Path:
    """The checkpoint a resumed run continues from. Rows logged after it (the steps a stop or a kill lost)
    leave metrics.jsonl, so every step is there once; the status counts from the checkpoint's step."""
    checkpoint = runs.last_checkpoint(run_dir)
    if checkpoint is None:
        raise ValueError(runs.resume_refusal(run_dir, {}) or f"{run_dir.name} has no checkpoint to resume from")
    step = int(checkpoint.name.rsplit("-", 1)[-1])
    if is_main:
        dropped = runs.keep_metrics_through(run_dir, step)
        kept = runs.read_metrics(run_dir)
        callback.best_eval = runs.best_eval_loss(kept)
        runs.update_status(run_dir, step=step, resumed_from=step, final_loss=None, final_eval_loss=None,
                           best_eval_loss=callback.best_eval)
        superseded = f"; {dropped} metrics rows after it superseded" if dropped else ""
        log(f"resuming from {checkpoint} (step {step}){superseded}")
    return checkpoint


def main(argv: list[str]) -> int:
    config = Path(argv[0])
    resume = "--resume" in argv
    run(config, resume=resume)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
