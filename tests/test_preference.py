"""Preference training: pairwise/unpaired data (formats, errors, masking, preview), the objectives' losses
against TRL's definitions computed by hand, refusals with reasons, and a real DPO run of the tiny model
(metrics, stop and resume, trackers, data from a `datasets` folder)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.core import runs
from engine.data import DataError, load_examples
from engine.data.formats import Example

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ROOT / "presets" / "data" / "polite_pairs.jsonl"
UNPAIRED = ROOT / "presets" / "data" / "polite_unpaired.jsonl"


def write_lines(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from engine.core.models import load_tokenizer

    return load_tokenizer(tiny_model)


# ---- data: detection, validation with file/line/field ------------------------------------------------------
def test_pairwise_and_unpaired_files_are_detected_in_every_shape(tmp_path):
    assert load_examples(PAIRS).format == "pairwise" and load_examples(PAIRS).count == 48
    assert load_examples(UNPAIRED).format == "unpaired"
    shapes = write_lines(tmp_path / "shapes.jsonl", [
        {"prompt": "Hi", "chosen": "Hello!", "rejected": "What."},  # text
        {"prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}],
         "chosen": [{"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "assistant", "content": "No."}]},
        {"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],  # implicit prompt
         "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}]},
        {"instruction": "Greet me", "input": "politely", "chosen": "Hello!", "rejected": "Hey."},  # alpaca-style
    ])
    examples = load_examples(shapes).examples
    assert [e.kind for e in examples] == ["pairwise"] * 4
    assert examples[1].messages[0] == {"role": "system", "content": "Be kind."} and examples[1].rejected == "No."
    assert examples[2].messages == [{"role": "user", "content": "Hi"}] and examples[2].rejected == "Go away."
    assert examples[3].messages[-1]["content"] == "Greet me\n\npolitely"
    labels = write_lines(tmp_path / "labels.jsonl", [{"prompt": "a", "completion": "b", "label": v}
                                                     for v in (True, 0, "false", "yes", 1.0)])
    assert [e.label for e in load_examples(labels).examples] == [True, False, False, True, True]


@pytest.mark.parametrize("bad, where, field, words", [
    ({"prompt": "Hi", "chosen": "Hello"}, "line 2", "rejected", "missing"),
    ({"prompt": "Hi", "chosen": "Same", "rejected": "Same"}, "line 2", "rejected", "the same as chosen"),
    ({"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}], "chosen": "a",
      "rejected": "b"}, "line 2", "prompt[1]", "ends with a 'assistant' turn"),
    ({"prompt": "Hi", "chosen": 3, "rejected": "b"}, "line 2", "chosen", "expected text or a list of messages"),
    ({"chosen": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "x"}],
      "rejected": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "y"}]}, "line 2", "rejected",
     "differs from chosen's"),
])
def test_bad_pairs_name_the_file_line_and_field(tmp_path, bad, where, field, words):
    path = write_lines(tmp_path / "pairs.jsonl", [{"prompt": "Ok", "chosen": "Good", "rejected": "Bad"}, bad])
    with pytest.raises(DataError) as caught:
        load_examples(path)
    text = str(caught.value)
    assert text.startswith("pairs.jsonl, ") and where in text and f"field '{field}'" in text and words in text


def test_a_bad_kto_label_names_its_line(tmp_path):
    path = write_lines(tmp_path / "kto.jsonl", [{"prompt": "a", "completion": "b", "label": True},
                                                {"prompt": "a", "completion": "b", "label": "maybe"}])
    with pytest.raises(DataError, match=r"kto.jsonl, line 2, field 'label': expected true or false, got 'maybe'"):
        load_examples(path)


# ---- masking: the preview is what trains -----------------------------------------------------------------------
def test_pair_encoding_uses_the_masking_rules_and_the_preview_shows_exactly_the_trained_tokens(tokenizer):
    from engine.data.masking import IGNORE_INDEX, encode
    from engine.data.pairwise import encode_preference, preference_previews

    for example in load_examples(PAIRS).examples[:6]:
        encoded = encode_preference(tokenizer, example, 256)
        previews = preference_previews(tokenizer, example, encoded)
        for answer, ids, units in zip((example.chosen, example.rejected), encoded.answers, previews):
            # the instruction-data masking of prompt + this answer (last assistant turn) trains the same tokens
            answered = example.messages + [{"role": "assistant", "content": answer}]
            sft = encode(tokenizer, Example("x", messages=answered),
                         "last_assistant", 256)
            assert [t for t, label in zip(sft.input_ids, sft.labels) if label != IGNORE_INDEX] == ids
            assert sft.input_ids[:len(encoded.prompt_ids)] == encoded.prompt_ids
            trained = "".join(u["token"] for u in units if u["trained"])
            assert trained == tokenizer.decode(ids) and trained.startswith(answer) and "<|im_end|>" in trained
            assert "".join(u["token"] for u in units if not u["trained"]) == tokenizer.decode(encoded.prompt_ids)


def test_a_prompt_longer_than_max_seq_len_is_dropped_and_answers_are_cut(tokenizer):
    from engine.data.masking import Dropped
    from engine.data.pairwise import encode_preference

    example = load_examples(PAIRS).examples[0]
    full = encode_preference(tokenizer, example, 512)
    assert isinstance(encode_preference(tokenizer, example, len(full.prompt_ids)), Dropped)
    cut = encode_preference(tokenizer, example, len(full.prompt_ids) + 3)
    assert cut.chosen_ids == full.chosen_ids[:3] and cut.rejected_ids == full.rejected_ids[:3]


def test_data_inspect_reports_pairs_with_chosen_and_rejected_previews(tiny_model, workspace):
    result = subprocess.run([sys.executable, "-m", "engine", "data", "inspect", str(PAIRS), "--model", tiny_model,
                             "--limit", "2", "--max-seq-len", "256"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["kind"] == "pairwise" and report["stats"]["examples"] == 48
    first = report["previews"][0]
    chosen = "".join(t["token"] for t in first["tokens"] if t["trained"])
    rejected = "".join(t["token"] for t in first["rejected_tokens"] if t["trained"])
    assert chosen.startswith("Happy to help!") and rejected.startswith("Ugh,")
    # the Data tab shows the rejected answer beside the chosen one for pairwise data only
    from ui import data_tab

    tokens, caption, update = data_tab.show_example(1, report)
    assert update["visible"] is True and [t for t, tag in update["value"] if tag][0] == "U"
    assert "chosen" in caption and "rejected" in caption


# ---- the losses, by hand, against TRL's trainers -----------------------------------------------------------------
def _pairs(tokenizer, count=2):
    from engine.data.pairwise import encode_preference

    return [encode_preference(tokenizer, e, 128) for e in load_examples(PAIRS).examples[:count]]


def _logps(model, prompt, answer):
    """Sum and count of log p(answer token | everything before), from the model's full logits."""
    import torch

    ids = torch.tensor([prompt + answer])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1:-1].float()
    return float(torch.log_softmax(logits, -1).gather(1, torch.tensor(answer)[:, None]).sum()), len(answer)


def _lora_model(tiny_model):
    from engine.core.describe import structure_of
    from engine.core.models import load_model
    from engine.methods import METHODS

    method = METHODS.get("lora")
    params = {**method.defaults(), "r": 4, "alpha": 8}
    return method.apply(load_model(tiny_model), params, structure_of(tiny_model)), method


def _as_if_trained(model, seed=1):
    """Move the trained adapter away from where it started (and from TRL's frozen "ref" copy of it)."""
    import torch

    torch.manual_seed(seed)
    for name, param in model.named_parameters():
        if "lora_B" in name and ".ref." not in name:
            param.data.normal_(0, 0.3)


def _trainer(objective_key, tiny_model, tokenizer, tmp_path, **settings):
    from engine.core.config import RunConfig
    from engine.core.objectives import for_config
    from engine.training.preference import trl_arguments
    from engine.training.setup import TrainingSetup

    cfg = RunConfig.from_dict({"model": tiny_model, "train": {"objective": objective_key, "max_seq_len": 128},
                               "preference": settings})
    objective = for_config(cfg)
    model, method = _lora_model(tiny_model)
    config_class, extra = trl_arguments(cfg, objective)
    args = config_class(output_dir=str(tmp_path / objective_key), per_device_train_batch_size=2, report_to="none",
                        use_cpu=True, bf16=False, gradient_checkpointing=False, remove_unused_columns=False, **extra)
    data = SimpleNamespace(train=_pairs(tokenizer), validation=[])
    setup = TrainingSetup(cfg, tmp_path, objective, method, None, "fp32", tokenizer, data, log=lambda *_: None,
                          model=model, args=args)
    trainer = setup.build_trainer()  # the builder the objective declares
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    _as_if_trained(model)
    model.train()
    return trainer, model, float(trainer.compute_loss(model, batch).detach())


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge"])
def test_dpo_loss_matches_the_definition_computed_by_hand(tiny_model, tokenizer, tmp_path, loss_type):
    import math

    beta = 0.5
    from trl.trainer.dpo_trainer import use_adapter

    trainer, model, loss = _trainer("dpo", tiny_model, tokenizer, tmp_path, beta=beta, loss_type=loss_type)
    losses = []
    for pair in _pairs(tokenizer):
        policy = [_logps(model, pair.prompt_ids, a) for a in pair.answers]
        with use_adapter(model, adapter_name="ref"):  # the reference: TRL's frozen copy of the adapter
            reference = [_logps(model, pair.prompt_ids, a) for a in pair.answers]
        (pc, nc), (pr, nr) = policy
        (rc, _), (rr, _) = reference
        delta = (pc - rc) - (pr - rr)
        if loss_type == "sigmoid":
            losses.append(-math.log(1 / (1 + math.exp(-beta * delta))))
        elif loss_type == "hinge":
            losses.append(max(0.0, 1 - beta * delta))
        else:  # IPO on log-ratios averaged over each answer's tokens, as TRL (and the IPO authors) do
            losses.append(((pc - rc) / nc - (pr - rr) / nr - 1 / (2 * beta)) ** 2)
    expected = sum(losses) / len(losses)
    assert abs(expected - math.log(2)) > 1e-3  # the adapter moved the policy: not the trivial log 2
    assert loss == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_dpo_reference_is_the_adapter_as_it_started(tiny_model, tokenizer, tmp_path):
    """TRL's 'ref' adapter is a frozen copy of the trained adapter at the start: no second copy of the model."""
    trainer, model, _ = _trainer("dpo", tiny_model, tokenizer, tmp_path)  # the adapter then moved (_as_if_trained)
    named = dict(model.named_parameters())
    pairs = [(n, n.replace(".default.", ".ref.")) for n in named if ".default." in n and "lora_B" in n]
    assert pairs and all(not named[b].requires_grad and not named[b].any() for a, b in pairs)  # B starts at 0
    assert all(named[a].any() for a, _ in pairs) and trainer.ref_model is None


def test_simpo_and_orpo_losses_match_their_definitions(tiny_model, tokenizer, tmp_path):
    import math

    def logsigmoid(x):
        return -math.log1p(math.exp(-x))

    beta, gamma = 2.0, 0.5
    _, model, loss = _trainer("simpo", tiny_model, tokenizer, tmp_path, beta=beta, simpo_gamma=gamma)
    terms = []
    for pair in _pairs(tokenizer):
        (pc, nc), (pr, nr) = [_logps(model, pair.prompt_ids, a) for a in pair.answers]
        terms.append(-logsigmoid(beta * (pc / nc - pr / nr) - gamma))  # length-normalised, target margin gamma
    assert loss == pytest.approx(sum(terms) / len(terms), rel=1e-3, abs=1e-4)

    beta = 0.1
    _, model, loss = _trainer("orpo", tiny_model, tokenizer, tmp_path, beta=beta)
    nll, ratios = [], []
    for pair in _pairs(tokenizer):
        (pc, nc), (pr, nr) = [_logps(model, pair.prompt_ids, a) for a in pair.answers]
        nll.append(-pc / nc)
        ac, ar = pc / nc, pr / nr  # log-odds from mean token log-probs
        log_odds = (ac - ar) - (math.log1p(-math.exp(ac)) - math.log1p(-math.exp(ar)))
        ratios.append(beta * logsigmoid(log_odds))
    expected = sum(nll) / len(nll) - sum(ratios) / len(ratios)
    assert loss == pytest.approx(expected, rel=2e-3)


# ---- what cannot combine, with the reason --------------------------------------------------------------------------
@pytest.mark.parametrize("raw, words", [
    ({"train": {"objective": "dpo"}, "distill": {"teacher": "x"}}, "distill.teacher: distillation adds a KL term"),
    ({"train": {"objective": "dpo", "ewc_lambda": 10.0}}, "train.ewc_lambda"),
    ({"train": {"objective": "orpo"}, "method": {"name": "prompt_tuning"}},
     "prompt_tuning cannot train with train.objective orpo: their virtual tokens"),
    ({"train": {"objective": "dpo"}, "method": {"name": "adalora"}}, "adalora cannot train with train.objective dpo"),
    ({"train": {"objective": "ppo"}}, "train.objective: 'ppo' is not one of sft, dpo, orpo, simpo, kto"),
])
def test_refused_combinations_say_why(raw, words):
    from engine.core.config import ConfigError, RunConfig

    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict(raw)
    assert any(words in p for p in caught.value.problems), caught.value.problems


def test_data_of_the_wrong_kind_is_refused_before_the_run(tiny_model, workspace):
    from engine.core.config import RunConfig
    from engine.training.preflight import objective_problems

    sft_on_pairs = RunConfig.from_dict({"model": tiny_model, "data": {"train": str(PAIRS)}})
    assert "train.objective: polite_pairs.jsonl holds pairwise preference data; train it with a preference " \
        "objective" in objective_problems(sft_on_pairs)[0]
    dpo_on_instructions = RunConfig.from_dict({"model": tiny_model, "train": {"objective": "dpo"}})
    assert "dpo trains on preference pairs" in objective_problems(dpo_on_instructions)[0]
    kto_on_pairs = RunConfig.from_dict({"model": tiny_model, "data": {"train": str(PAIRS)},
                                        "train": {"objective": "kto"}})
    assert "for pairs use dpo, orpo or simpo" in objective_problems(kto_on_pairs)[0]
    assert objective_problems(RunConfig.from_dict({"model": tiny_model, "data": {"train": str(UNPAIRED)},
                                                   "train": {"objective": "kto"}})) == []


# ---- a real DPO run: metrics, stop/resume, trackers, data from a datasets folder ------------------------------------
def cli(*args, home, timeout=600):
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def dpo_run(tiny_model, tmp_path_factory):
    """DPO on the polite pairs, read from a save_to_disk folder (split 'train'), logging to TensorBoard and
    MLflow; stopped at step 3 and resumed to 8."""
    import datasets

    from engine.core.config import RunConfig
    from engine.training import launcher

    home = tmp_path_factory.mktemp("home")
    os.environ["TUNELOOM_HOME"] = str(home)
    rows = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    folder = home / "pairs_dataset"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:40]),
                          "test": datasets.Dataset.from_list(rows[40:])}).save_to_disk(str(folder))
    cfg = RunConfig.load(ROOT / "presets" / "dpo.yaml", [
        f"model={tiny_model}", f"data.train={folder}", "data.split=train", "train.max_steps=8", "train.save_steps=1",
        "train.eval_steps=4", "train.batch_size=2", "train.max_seq_len=128", "train.learning_rate=5e-3",
        "train.warmup_steps=0", "train.report_to=tensorboard,mlflow", "name=dpo-test"])
    try:
        run_dir = launcher.start(cfg)
        deadline = time.time() + 400
        while time.time() < deadline and not any(r.get("step", 0) >= 3 for r in runs.read_metrics(run_dir)):
            assert runs.read_status(run_dir).get("state") != "failed", runs.log_tail(run_dir, 40)
            time.sleep(0.3)
        launcher.stop(run_dir)
        while time.time() < deadline and runs.read_status(run_dir).get("state") not in ("done", "failed"):
            time.sleep(0.3)
        stopped = runs.read_status(run_dir)
        launcher.resume(run_dir)
        while time.time() < deadline + 300 and runs.read_status(run_dir).get("state") not in ("done", "failed"):
            time.sleep(0.5)
    finally:
        os.environ.pop("TUNELOOM_HOME", None)
    return run_dir, stopped, home


def test_dpo_run_stops_resumes_and_records_its_own_metrics(dpo_run):
    run_dir, stopped, _ = dpo_run
    assert stopped["state"] == "done" and stopped["stopped_early"] and 3 <= stopped["step"] < 8
    status = runs.read_status(run_dir)
    assert status["state"] == "done" and status["step"] == 8 and not status["stopped_early"], runs.log_tail(run_dir, 40)
    rows = runs.read_metrics(run_dir)
    train = [r for r in rows if "loss" in r]
    assert {r["step"] for r in train} >= set(range(1, 9))
    assert all({"rewards/margins", "rewards/accuracies", "rewards/chosen", "logps/rejected"} <= set(r) for r in train)
    evals = [r for r in rows if "eval_loss" in r]
    assert evals and all("eval_rewards/margins" in r and "eval_rewards/accuracies" in r for r in evals)
    assert evals[-1]["eval_rewards/margins"] > 0 and evals[-1]["eval_loss"] < 0.6931  # it learned the preference
    assert status["data"]["train_examples"] + status["data"]["validation_examples"] == 40  # the 'train' split
    log = (run_dir / "train.log").read_text()
    assert "resuming from" in log and "reference = the base weights with a frozen copy of the lora adapter" in log
    adapter = run_dir / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "ref").exists()
    # the UI plots them
    from ui import follow

    frame = follow.metric_frame(rows, follow.REWARD_SERIES)
    assert {"reward margin", "eval reward accuracy"} <= set(frame["series"])


def test_trackers_hold_the_logged_scalars(dpo_run):
    run_dir, _, _ = dpo_run
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "train/loss" in tags and "train/rewards/margins" in tags and "eval/rewards/accuracies" in tags
    logged = {e.step: e.value for e in events.Scalars("train/loss")}
    expected = {r["step"]: r["loss"] for r in runs.read_metrics(run_dir) if "loss" in r}
    assert set(logged) >= {8} and logged[8] == pytest.approx(expected[8], rel=1e-5)
    # MLflow's local file store: mlruns/<experiment>/<run>/metrics/<name> holds "timestamp value step" lines
    metric_files = list((run_dir / "mlruns").glob("*/*/metrics/loss"))
    assert metric_files, list((run_dir / "mlruns").rglob("*"))[:20]
    steps = {int(line.split()[2]): float(line.split()[1]) for f in metric_files for line in f.read_text().splitlines()}
    assert steps[8] == pytest.approx(expected[8], rel=1e-5)
    assert any((run_dir / "mlruns").glob("*/*/metrics/rewards/margins"))


def test_a_missing_tracker_is_reported_before_the_run(tiny_model, workspace):
    from engine.core.config import RunConfig
    from engine.training.preflight import objective_problems

    cfg = RunConfig.from_dict({"model": tiny_model, "train": {"report_to": "wandb"}})
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        assert "train.report_to: wandb is not installed here" in objective_problems(cfg)[0]
    else:
        assert objective_problems(cfg) == []
