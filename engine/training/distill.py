"""Knowledge distillation: the model being tuned (the student, any method) learns from a teacher.

loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels), both summed over
the trained tokens only (labels != -100) and divided by the trained tokens of the batch, as the
plain loss is. p_T = softmax(logits / T). The teacher is a local folder, a Hub id or an earlier run
folder (its result, merged where the method allows); it runs without gradients in its own dtype
(and its own quantisation when its folder is quantised). Teacher and student must share the
tokenizer: checked before anything is loaded for training.

Distillation needs the student's logits, so the fused chunked loss (engine/training/fused_loss.py) is off while
it is on; student and teacher logits of a batch are held at once (engine/estimate/memory.py counts them).
"""
from __future__ import annotations

from pathlib import Path

from engine.core.runs import is_run_folder, result_dir
from engine.data.masking import IGNORE_INDEX


def teacher_tokenizer_source(teacher: str) -> str:
    if is_run_folder(teacher):
        return str(result_dir(Path(teacher)))
    return teacher


def check_tokenizers(student: str, teacher: str, trust_remote_code: bool = False) -> None:
    """Raise ValueError with a clear message when the teacher's tokenizer differs from the student's."""
    from engine.core.models import load_tokenizer

    source = teacher_tokenizer_source(teacher)
    try:
        t_tok = load_tokenizer(source, trust_remote_code)
    except Exception as err:
        raise ValueError(f"distill.teacher: cannot load a tokenizer from {teacher!r} ({err}); give a local model "
                         "folder, a Hub id or a finished run folder") from None
    s_vocab, t_vocab = load_tokenizer(student, trust_remote_code).get_vocab(), t_tok.get_vocab()
    if s_vocab != t_vocab:
        differ = len(set(s_vocab.items()) ^ set(t_vocab.items()))
        raise ValueError(
            f"distill.teacher: {teacher} uses another tokenizer than the student {student} "
            f"({len(t_vocab)} vs {len(s_vocab)} tokens, {differ} entries differ). Distillation compares the two "
            "models' probabilities token by token, so they must share the vocabulary: pick a teacher from the "
            "same model family (e.g. a larger SmolLM2 for a SmolLM2 student)")


def load_teacher(cfg, precision: str = "fp32", log=print):
    """The teacher model, in eval mode with no gradients, in its own dtype (runs: the training precision)."""
    import torch

    from engine.core.precision import compute_dtype

    teacher = cfg.distill.teacher
    if is_run_folder(teacher):
        from engine.inference.loading import load_result

        dtype = compute_dtype(precision) if precision != "fp32" else "fp32"
        model, _, note = load_result(Path(teacher), merge=True, dtype=dtype)
        log(f"distillation teacher: run {Path(teacher).name} ({note}, {dtype})")
    else:
        from transformers import AutoModelForCausalLM

        from engine.core.models import prepare_model, require_safetensors

        path = prepare_model(teacher, log=log)
        if Path(path).is_dir():
            require_safetensors(Path(path))
        kwargs = {"dtype": "auto", "trust_remote_code": cfg.trust_remote_code, "use_safetensors": True}
        if torch.cuda.is_available():
            kwargs["device_map"] = {"": torch.cuda.current_device()}
        model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
        log(f"distillation teacher: {teacher} ({model.dtype})")
    model.eval()
    model.requires_grad_(False)
    return model


def distill_terms(student_logits, teacher_logits, labels, temperature: float):
    """(summed KL(teacher_T || student_T), summed CE on labels, trained tokens) over the trained positions."""
    import torch
    import torch.nn.functional as F

    student_logits = student_logits[:, -labels.shape[1]:]  # prompt-learning methods prepend virtual positions
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    s = student_logits[:, :-1][keep].float()
    t = teacher_logits[:, :-1][keep].float()
    vocab = min(s.shape[-1], t.shape[-1])  # embeddings may be padded beyond the shared tokenizer
    s, t = s[:, :vocab], t[:, :vocab]
    ce = F.cross_entropy(s, targets[keep], reduction="sum")
    log_s = torch.log_softmax(s / temperature, dim=-1)
    log_t = torch.log_softmax(t / temperature, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum()
    return kl, ce, keep.sum()


class Distiller:
    def __init__(self, teacher, alpha: float, temperature: float):
        self.teacher, self.alpha, self.temperature = teacher, alpha, temperature

    def teacher_logits(self, inputs):
        import torch

        device = inputs["input_ids"].device
        if not getattr(self.teacher, "hf_device_map", None) and next(self.teacher.parameters()).device != device:
            self.teacher.to(device)
        keys = ("input_ids", "attention_mask", "position_ids")
        with torch.no_grad():
            return self.teacher(**{k: inputs[k] for k in keys if k in inputs}, use_cache=False).logits

    def loss(self, model, inputs, num_items):
        """(loss before the multi-process scaling, {"task_loss", "distill_kl"}) for one micro-batch."""
        labels = inputs["labels"]
        outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
        kl, ce, count = distill_terms(outputs.logits, self.teacher_logits(inputs), labels, self.temperature)
        denominator = num_items if num_items is not None else count.clamp(min=1)
        if hasattr(denominator, "to"):
            denominator = denominator.to(kl.device)
        kl, ce = kl / denominator, ce / denominator
        loss = self.alpha * self.temperature ** 2 * kl + (1 - self.alpha) * ce
        return loss, {"task_loss": ce.detach(), "distill_kl": kl.detach()}


def build(cfg, precision: str, log=print, check: bool = True) -> Distiller | None:
    if not cfg.distill.teacher.strip():
        return None
    if check:
        check_tokenizers(cfg.model, cfg.distill.teacher, cfg.trust_remote_code)
    return Distiller(load_teacher(cfg, precision, log), cfg.distill.alpha, cfg.distill.temperature)
