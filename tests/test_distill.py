"""Knowledge distillation on the tiny model: a student (LoRA on the random tiny model) learns a
differently-seeded tiny teacher; its KL to the teacher falls. Tokenizers are checked up front."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.core import runs

ROOT = Path(__file__).resolve().parent.parent


def train(tiny_model, preset, *extra):
    from engine.core.config import RunConfig
    from engine.training.launcher import create_run
    from engine.training.recipe import run

    cfg = RunConfig.load(ROOT / "presets" / preset, [
        f"model={tiny_model}", "train.max_seq_len=128", "train.save_steps=0", "train.eval_steps=0",
        "data.validation_split=0", "train.warmup_steps=0", "method.dropout=0.0", "train.scheduler=constant", *extra])
    run_dir = create_run(cfg)
    run(run_dir / "config.yaml")
    assert runs.read_status(run_dir)["state"] == "done"
    return run_dir


def test_distill_terms_match_their_definitions():
    import torch

    from engine.training.distill import distill_terms

    torch.manual_seed(0)
    student, teacher = torch.randn(2, 5, 11), torch.randn(2, 5, 11)
    labels = torch.tensor([[-100, -100, 3, 4, 5], [-100, 1, 2, -100, -100]])
    kl, ce, count = distill_terms(student, teacher, labels, temperature=2.0)
    keep = labels[:, 1:] != -100
    s, t = student[:, :-1][keep], teacher[:, :-1][keep]
    expected_kl = torch.nn.functional.kl_div(torch.log_softmax(s / 2, -1), torch.log_softmax(t / 2, -1),
                                             reduction="sum", log_target=True)
    assert int(count) == 5
    assert float(kl) == pytest.approx(float(expected_kl), rel=1e-5)
    assert float(ce) == pytest.approx(float(torch.nn.functional.cross_entropy(s, labels[:, 1:][keep],
                                                                              reduction="sum")), rel=1e-5)
    same, _, _ = distill_terms(student, student, labels, temperature=3.0)
    assert float(same) == pytest.approx(0.0, abs=1e-5)


def test_students_kl_to_the_teacher_falls(tiny_model, workspace):
    # the teacher: the tiny model trained briefly on the identity data (an earlier run, used as a run folder)
    teacher = train(tiny_model, "quickstart.yaml", "train.max_steps=30", "train.learning_rate=1e-2", "name=teacher")
    run_dir = train(tiny_model, "distill.yaml", f"distill.teacher={teacher}", "distill.alpha=1.0",
                    "distill.temperature=1.0", "train.max_steps=20", "train.learning_rate=1e-2")
    rows = [r for r in runs.read_metrics(run_dir) if "loss" in r]
    assert all({"distill_kl", "task_loss"} <= set(r) for r in rows)
    first, last = rows[0]["distill_kl"], sum(r["distill_kl"] for r in rows[-3:]) / 3
    print(f"\nKL(teacher || student) per trained token: first step {first:.4f}, last 3 steps {last:.4f}")
    assert last < 0.8 * first
    assert rows[0]["loss"] == pytest.approx(rows[0]["distill_kl"], rel=1e-4)  # alpha 1, T 1: loss is the KL
    assert "distillation teacher" in (run_dir / "train.log").read_text()


def test_a_teacher_with_another_tokenizer_is_refused_up_front(tiny_model, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    from engine.training.distill import check_tokenizers

    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    tokenizer = AutoTokenizer.from_pretrained(other)
    tokenizer.add_tokens(["<tuneloom_extra_token>"])
    tokenizer.save_pretrained(other)
    with pytest.raises(ValueError, match="another tokenizer"):
        check_tokenizers(tiny_model, str(other))
    check_tokenizers(tiny_model, tiny_model)  # the same tokenizer passes
